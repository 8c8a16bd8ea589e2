import ByteExactJSON
import Foundation
import Hummingbird
import NIOCore
import Server

/// `POST /generate`, `/v1/completions`, `/v1/chat/completions`: read the
/// body once, then hand it to the plain or the PD forwarder.
struct InferenceEndpoint: Sendable {
    let core: RouterCore

    func handle(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let limit = core.configuration.maxPayloadBytes
        let buffer = try await core.configuration.httpLimits.body(of: request, limit: limit)
        let route = request.uri.path
        let pd = core.configuration.pdDisaggregation
        // Plain mode only reads the body when a policy wants the prompt; PD mode always, to add fields.
        let document = pd || core.needsRoutingKey ? try? JSONParser.parse(Data(buffer.readableBytesView)) : nil
        let key = core.needsRoutingKey ? (document?.foundationObject as? [String: Any]).map(RoutingKey.of) ?? "" : ""
        if pd {
            // The bootstrap fields go into the body, so it must parse here: say why it does not.
            let document = try document ?? RequestDocument.parse(Data(buffer.readableBytesView))
            let plan = try PDRequestPlan(route: route, document: document)
            let routed = RoutedRequest(route: route, method: .POST, query: request.uri.query,
                                       headers: RouterCore.forwardable(request.headers, contentType: "application/json"), body: nil, routingKey: key)
            return try await PDForwarder(core: core).forward(routed, plan: plan)
        }
        // Plain mode sends the client's bytes unchanged; a bad body gets the worker's own 400.
        let routed = RoutedRequest(route: route, method: .POST, query: request.uri.query,
                                   headers: RouterCore.forwardable(request.headers, contentType: nil), body: buffer, routingKey: key)
        return try await PlainForwarder(core: core).forward(routed)
    }
}
