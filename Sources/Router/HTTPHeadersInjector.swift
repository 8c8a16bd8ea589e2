import Instrumentation
import NIOHTTP1

/// Writes a span's context (`traceparent`, `tracestate`) into the headers
/// of a request PDServe sends (AsyncHTTPClient's header type).
struct HTTPHeadersInjector: Injector {
    init() {}
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: key, value: value)
    }
}
