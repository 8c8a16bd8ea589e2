import Foundation
import Hummingbird

/// Server-sent events as OpenAI and SGLang stream them: `data: <json>\n\n`
/// per event, `data: [DONE]\n\n` at the end. An error after the 200 head is
/// sent as one more data event carrying the JSON error, never as a status.
enum SSE {
    static func response(
        _ produce: @escaping @Sendable (_ send: @escaping @Sendable (Any) async throws -> Void) async throws -> Void
    ) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "keep-alive"],
            body: ResponseBody { writer in
                // The writer is inout and not Sendable; events go through a local stream.
                let (events, sink) = AsyncStream<[UInt8]>.makeStream()
                let producer = Task {
                    do {
                        try await produce { object in sink.yield(Array("data: ".utf8) + JSON.encode(object) + Array("\n\n".utf8)) }
                    } catch let error as APIError {
                        sink.yield(Array("data: ".utf8) + JSON.encode(error.body) + Array("\n\n".utf8))
                    } catch is CancellationError {
                    } catch {
                        let failure = APIError.internal("\(error)")
                        sink.yield(Array("data: ".utf8) + JSON.encode(failure.body) + Array("\n\n".utf8))
                    }
                    sink.yield(Array("data: [DONE]\n\n".utf8))
                    sink.finish()
                }
                do {
                    for await chunk in events {
                        try await writer.write(ByteBuffer(bytes: chunk))
                    }
                } catch {
                    // The client went away: stop producing (which aborts the requests).
                    producer.cancel()
                    throw error
                }
                try await writer.finish(nil)
            }
        )
    }
}
