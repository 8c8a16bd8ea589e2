import ByteExactJSON
import Foundation
import NIOCore

/// A worker's complete answer to a call whose body was read in full.
struct UpstreamReply: Sendable {
    let status: Int
    let contentType: String?
    let body: ByteBuffer

    var isServerError: Bool { status >= 500 }
    var isSuccess: Bool { (200..<300).contains(status) }

    /// The body parsed as JSON, if it is JSON.
    var json: Any? {
        JSONParser.foundationObject(from: Data(body.readableBytesView))
    }

    var text: String { String(buffer: body) }
}
