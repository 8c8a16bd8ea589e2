import Foundation
import Hummingbird
import Server

/// Checks the API key (every path but `/health`), turns thrown errors into
/// JSON error responses, and counts requests by route, status and time.
struct RouterFrontMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let apiKey: String?
    let metrics: RouterMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response: Response
        if let apiKey, request.uri.path != "/health", request.headers[.authorization] != "Bearer \(apiKey)" {
            response = APIError.unauthorized.response
        } else {
            do {
                response = try await next(request, context)
            } catch let error as APIError {
                context.logger.info("request refused", metadata: ["status": "\(error.status.code)", "error": "\(error.message)"])
                response = error.response
            } catch let error as HTTPError where error.status == .notFound {
                response = APIError.notFound(path: request.uri.path).response
            } catch let error as HTTPError {
                response = APIError(error.status, type: "invalid_request_error", error.body ?? "\(error.status)").response
            } catch is CancellationError {
                response = APIError(.init(code: 499), type: "cancelled", "The request was cancelled.").response
            } catch {
                context.logger.error("request failed", metadata: ["error": "\(error)"])
                response = APIError.internal("\(error)").response
            }
        }
        metrics.request(route: metrics.route(request.uri.path), status: Int(response.status.code),
                        seconds: PDForwarder.seconds(ContinuousClock.now - started))
        return response
    }
}
