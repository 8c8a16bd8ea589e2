import Foundation
import Hummingbird
import Logging

/// Turns thrown `APIError`s (and anything else) into JSON error responses,
/// checks the API key, and counts requests by path and status.
struct ServerMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let apiKey: String?
    let metrics: ServerMetrics
    /// Paths counted under their own label; others are "other" so scans cannot blow up cardinality.
    let knownPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = knownPaths.contains(request.uri.path) ? request.uri.path : "other"
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
            } catch let error as HTTPResponseError {
                response = APIError(error.status, type: "invalid_request_error", "\(error)").response
            } catch {
                context.logger.error("request failed", metadata: ["error": "\(error)"])
                response = APIError.internal("\(error)").response
            }
        }
        metrics.http(path: path, status: Int(response.status.code))
        return response
    }
}
