import Hummingbird

/// Hummingbird's `TracingMiddleware` on the inference routes only: a
/// router's health and load probes every second would otherwise each be a
/// trace of their own, burying the requests operators look for.
public struct InferenceTracingMiddleware<Context: RequestContext>: RouterMiddleware {
    public static var inferencePaths: Set<String> { ["/generate", "/v1/completions", "/v1/chat/completions"] }
    private let tracing = TracingMiddleware<Context>()

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Self.inferencePaths.contains(request.uri.path) else { return try await next(request, context) }
        return try await tracing.handle(request, context: context, next: next)
    }
}
