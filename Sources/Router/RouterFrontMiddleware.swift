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
        let response = await FrontDoor.answer(request, context: context, apiKey: apiKey, next: next)
        metrics.request(route: metrics.route(request.uri.path), status: Int(response.status.code),
                        seconds: (ContinuousClock.now - started).inSeconds)
        return response
    }
}
