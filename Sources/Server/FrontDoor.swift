import Hummingbird

/// What every PDServe HTTP service does before and after its routes: the
/// API key check (every path but the health probes) and turning whatever a handler
/// throws into the JSON error clients and routers expect.
public enum FrontDoor {
    /// What orchestrators probe without credentials.
    static let probePaths: Set<String> = ["/health", "/liveness", "/readiness"]

    public static func answer<Context: RequestContext>(
        _ request: Request, context: Context, apiKey: String?,
        next: (Request, Context) async throws -> Response
    ) async -> Response {
        if let apiKey, !probePaths.contains(request.uri.path), request.headers[.authorization] != "Bearer \(apiKey)" {
            return APIError.unauthorized.response
        }
        do {
            return try await next(request, context)
        } catch let error as APIError {
            context.logger.info("request refused", metadata: ["status": "\(error.status.code)", "type": "\(error.type)", "error": "\(error.message)"])
            return error.response
        } catch let error as HTTPError where error.status == .notFound {
            return APIError.notFound(path: request.uri.path).response
        } catch let error as HTTPError {
            return APIError(error.status, type: "invalid_request_error", error.body ?? "\(error.status)").response
        } catch let error as HTTPResponseError {
            return APIError(error.status, type: "invalid_request_error", "\(error)").response
        } catch is CancellationError {
            return APIError(.init(code: 499), type: "cancelled", "The request was cancelled.").response
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return APIError.internal("\(error)").response
        }
    }
}
