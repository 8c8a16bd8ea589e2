import Foundation
import Hummingbird
import Logging

/// The instance's front door (`FrontDoor`: API key, JSON errors) plus
/// request counts by path and status.
struct ServerMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let apiKey: String?
    let metrics: ServerMetrics
    /// Paths counted under their own label; others are "other" so scans cannot blow up cardinality.
    let knownPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = knownPaths.contains(request.uri.path) ? request.uri.path : "other"
        let response = await FrontDoor.answer(request, context: context, apiKey: apiKey, next: next)
        metrics.http(path: path, status: Int(response.status.code))
        return response
    }
}
