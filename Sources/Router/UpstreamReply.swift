import AsyncHTTPClient
import ByteExactJSON
import Foundation
import NIOCore

/// A worker's complete answer to a call whose body was read in full.
struct UpstreamReply: Sendable {
    let status: Int
    let contentType: String?
    /// The worker's `Retry-After`, passed back to the client with the reply.
    var retryAfter: String?
    let body: ByteBuffer

    init(status: Int, contentType: String?, retryAfter: String? = nil, body: ByteBuffer) {
        self.status = status
        self.contentType = contentType
        self.retryAfter = retryAfter
        self.body = body
    }

    /// The reply whose head is `response` and whose body was read as `body`.
    init(_ response: HTTPClientResponse, body: ByteBuffer) {
        self.init(status: Int(response.status.code), contentType: response.headers.first(name: "content-type"),
                  retryAfter: response.headers.first(name: "retry-after"), body: body)
    }

    var isServerError: Bool { status >= 500 }
    var isSuccess: Bool { (200..<300).contains(status) }

    /// The worker is healthy but full: it says so with 429, or with 503 and a
    /// `Retry-After` (what PDServe's admission answers). Such a reply never
    /// counts against the worker's circuit; the request may try another worker.
    var isOverload: Bool { Self.isOverload(status: status, retryAfter: retryAfter) }

    static func isOverload(status: Int, retryAfter: String?) -> Bool {
        status == 429 || (status == 503 && retryAfter != nil)
    }

    /// The body with the same head.
    func replacingBody(_ body: ByteBuffer) -> UpstreamReply {
        UpstreamReply(status: status, contentType: contentType, retryAfter: retryAfter, body: body)
    }

    /// The body parsed as JSON, if it is JSON.
    var json: Any? {
        JSONParser.foundationObject(from: Data(body.readableBytesView))
    }

    var text: String { String(buffer: body) }
}
