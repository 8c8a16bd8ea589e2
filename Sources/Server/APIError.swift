import Engine
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1

/// An error answered as JSON in the shape OpenAI clients and the SGLang
/// router understand: `{"error": {"message", "type", "param", "code"}}`,
/// with `code` the HTTP status.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var type: String
    public var message: String
    public var param: String?
    public var retryAfterSeconds: Int?

    public init(_ status: HTTPResponse.Status, type: String, _ message: String, param: String? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.param = param
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    public static func invalid(_ message: String, param: String? = nil) -> APIError {
        APIError(.badRequest, type: "invalid_request_error", message, param: param)
    }

    public static func modelNotFound(_ name: String, served: String) -> APIError {
        APIError(.notFound, type: "model_not_found", "The model '\(name)' does not exist; this server serves '\(served)'.", param: "model")
    }

    public static let unauthorized = APIError(.unauthorized, type: "authentication_error", "Missing or invalid API key: send 'Authorization: Bearer <key>'.")

    public static func overloaded(_ message: String) -> APIError {
        var error = APIError(.serviceUnavailable, type: "server_overloaded", message)
        error.retryAfterSeconds = 1
        return error
    }

    /// A draining instance refuses new work; a router retries it elsewhere
    /// (an overload answer: 503 with `Retry-After`, so no circuit opens).
    public static var draining: APIError {
        var error = APIError(.serviceUnavailable, type: "server_draining", "The server is draining: it finishes its running requests and takes no new ones.")
        error.retryAfterSeconds = 1
        return error
    }

    /// Why a request body could not be read: too large (413), or the client
    /// went away before sending all of it (said so, not called too large).
    public static func bodyNotRead(_ error: any Error, limit: Int) -> APIError {
        if error is NIOTooManyBytesError {
            return APIError(.contentTooLarge, type: "invalid_request_error", "The request body exceeds \(limit) bytes.")
        }
        if let parse = error as? HTTPParserError, parse != .invalidEOFState {
            // The client is still there (an early end is the one parse error that says it left):
            // what it sent cannot be read, a malformed chunk size say.
            return .invalid("The request body is not valid HTTP/1.1 (\(parse)).", param: nil)
        }
        return APIError(.badRequest, type: "client_disconnected", "The request body was not received in full: \(error).")
    }

    public static func notFound(path: String) -> APIError {
        APIError(.notFound, type: "not_found", "No route for \(path).")
    }

    public static func `internal`(_ message: String) -> APIError {
        APIError(.internalServerError, type: "internal_error", message)
    }

    /// A request the server accepted but could not serve (a PD transfer that
    /// failed, timed out or lost its peer): the server's fault, so a 5xx a
    /// router retries on another pair — 504 when the other half or its KV
    /// never came in time, 502 when the peer broke the exchange.
    public static func failed(_ failure: RequestFailure) -> APIError {
        switch failure.kind {
        case .timeout: APIError(.gatewayTimeout, type: "pd_timeout", failure.message)
        case .transfer: APIError(.badGateway, type: "pd_transfer_failed", failure.message)
        case .peerLost: APIError(.badGateway, type: "pd_peer_lost", failure.message)
        case .invalidPeerData: APIError(.badGateway, type: "pd_invalid_peer_data", failure.message)
        }
    }

    /// The JSON object clients see (also used for mid-stream SSE error events).
    public var body: [String: Any] {
        ["object": "error", "error": ["message": message, "type": type, "param": param ?? NSNull(), "code": Int(status.code)] as [String: Any]]
    }

    public var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSON.encode(body))))
    }
}

/// JSON encoding of `[String: Any]` trees built by the handlers (and the router).
public enum JSON {
    public static func encode(_ object: Any) -> [UInt8] {
        // withoutEscapingSlashes keeps URLs and stop strings readable.
        (try? [UInt8](JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]))) ?? Array(#"{"error":{"message":"unencodable response","type":"internal_error","code":500}}"#.utf8)
    }

    public static func response(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: encode(object))))
    }
}
