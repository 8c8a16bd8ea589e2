import ByteExactJSON
import Foundation
import HTTPTypes
import Hummingbird
import Kernels
import Logging
import NIOCore

/// What a prefill rank registers and what decode instances look up: where
/// to open the transfer connection and the shape of the KV pool behind it.
public struct PrefillRoute: Sendable, Equatable {
    /// Empty: the rank listens on all interfaces and each lookup is answered
    /// with the address the lookup itself arrived on (see `AdvertisedAddress`).
    public var rankIP: String
    public var rankPort: Int
    public var tpRank = 0, tpSize = 1, dpRank = 0, dpSize = 1, ppRank = 0, ppSize = 1
    public var layout: KVLayout
    public var backend: String

    public init(rankIP: String, rankPort: Int, layout: KVLayout, backend: String) {
        self.rankIP = rankIP
        self.rankPort = rankPort
        self.layout = layout
        self.backend = backend
    }

    var json: [String: Any] {
        var json: [String: Any] = [
            "rank_ip": rankIP, "rank_port": rankPort, "engine_rank": tpRank, "tp_size": tpSize, "dp_rank": dpRank,
            "dp_size": dpSize, "pp_rank": ppRank, "pp_size": ppSize, "page_size": Int(layout.pageSize),
            "kv_dtype": layout.spec.tensors[0].dtype.rawValue, "num_layers": Int(layout.layers),
            "kv_tensors": layout.spec.tensors.map { ["name": $0.name, "elements": $0.elementsPerToken, "dtype": $0.dtype.rawValue] as [String: Any] },
            "model": layout.model, "transfer_backend": backend,
        ]
        // Attention's K/V spec also as one width, as before the spec.
        if let width = layout.spec.keyValueWidth { json["kv_width"] = width }
        return json
    }

    /// `kv_tensors` when given, else K and V of `kv_width` elements of `kv_dtype`.
    private static func tensors(_ json: [String: Any]) -> [KVCacheSpec.Tensor]? {
        func dtype(_ value: Any?) -> DType? { (value as? String).flatMap { DType(rawValue: $0) } }
        if let list = json["kv_tensors"] {
            guard let list = list as? [[String: Any]], (1...KVCacheSpec.maxTensors).contains(list.count) else { return nil }
            var tensors: [KVCacheSpec.Tensor] = []
            for item in list {
                guard let name = item["name"] as? String, !name.isEmpty, let elements = item["elements"].flatMap(JSONScalar.integer),
                      elements > 0, let type = dtype(item["dtype"]) else { return nil }
                tensors.append(.init(name: name, elementsPerToken: elements, dtype: type))
            }
            return tensors
        }
        guard let width = json["kv_width"].flatMap(JSONScalar.integer), width > 0, let type = dtype(json["kv_dtype"]) else { return nil }
        return KVCacheSpec.keyValue(layers: 1, width: width, dtype: type).tensors
    }

    init?(json: [String: Any]) {
        func int(_ key: String) -> Int? { json[key].flatMap(JSONScalar.integer) }
        // Optional fields that are present must be integers too, not fall back to a default.
        for key in ["engine_rank", "tp_rank", "tp_size", "dp_rank", "dp_size", "pp_rank", "pp_size"] where json[key] != nil {
            guard int(key) != nil else { return nil }
        }
        guard let ip = json["rank_ip"] as? String, !ip.isEmpty, let port = int("rank_port"), (1...65535).contains(port),
              let pageSize = int("page_size"), pageSize > 0, let layers = int("num_layers"), layers > 0, let tensors = Self.tensors(json),
              let model = json["model"] as? String, let backend = json["transfer_backend"] as? String else { return nil }
        self.init(rankIP: ip, rankPort: port,
                  layout: KVLayout(pageSize: UInt32(pageSize), spec: KVCacheSpec(layers: layers, tensors: tensors), model: model),
                  backend: backend)
        tpRank = int("engine_rank") ?? int("tp_rank") ?? 0
        tpSize = int("tp_size") ?? 1
        dpRank = int("dp_rank") ?? 0
        dpSize = int("dp_size") ?? 1
        ppRank = int("pp_rank") ?? 0
        ppSize = int("pp_size") ?? 1
        // A rank lies inside its group, and no group is larger than a real deployment's.
        for (rank, size) in [(tpRank, tpSize), (dpRank, dpSize), (ppRank, ppSize)] {
            guard (1...Self.maxGroupSize).contains(size), (0..<size).contains(rank) else { return nil }
        }
    }

    /// Largest tp, dp or pp size a registration may claim.
    static let maxGroupSize = 4096
}


/// The ranks registered with one prefill instance's bootstrap server.
public final class BootstrapRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var ranks: [Int: PrefillRoute] = [:]
    /// Ranks expected before lookups succeed (tp × dp × pp of this instance).
    public let expectedRanks: Int

    public init(expectedRanks: Int = 1) { self.expectedRanks = expectedRanks }

    public func register(_ route: PrefillRoute) {
        lock.withLock { ranks[route.tpRank + route.tpSize * (route.dpRank + route.dpSize * route.ppRank)] = route }
    }

    var all: [PrefillRoute] { lock.withLock { Array(ranks.values) } }
    var isComplete: Bool { lock.withLock { ranks.count >= expectedRanks } }
}

/// The prefill instance's bootstrap HTTP server (`--disaggregation-bootstrap-port`):
/// `PUT /route` registers a rank, `GET /route` tells decode instances where
/// to connect, `GET /health` is their heartbeat target.
public struct BootstrapServer: Sendable {
    public let registry: BootstrapRegistry
    public let host: String
    public let port: Int
    public let logger: Logger
    /// Answers `GET /drained?session=`: whether a lost transfer session's jobs have all run (nil: unknown session).
    public let drained: @Sendable (UInt64) -> Bool?
    /// With a key, registrations must be signed and answers to lookups carrying a nonce are (`BootstrapAuth`).
    public let key: ChannelKey?

    public init(registry: BootstrapRegistry, host: String, port: Int, logger: Logger, key: ChannelKey? = nil,
                drained: @escaping @Sendable (UInt64) -> Bool? = { _ in nil }) {
        self.registry = registry
        self.host = host
        self.port = port
        self.logger = logger
        self.key = key
        self.drained = drained
    }

    /// A JSON answer (signed when the lookup asked with a nonce and there is a key).
    struct Answer {
        var status: HTTPResponse.Status
        var body: Data

        static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Answer {
            Answer(status: status, body: (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8))
        }

        static func failure(_ status: HTTPResponse.Status, _ message: String) -> Answer {
            json(["error": ["message": message, "type": "bootstrap_error", "code": Int(status.code)] as [String: Any]], status: status)
        }

        func response(to request: Request, key: ChannelKey?) -> Response {
            var headers: HTTPFields = [.contentType: "application/json"]
            if let key, let name = HTTPField.Name(BootstrapAuth.nonceHeader), let text = request.headers[name], let nonce = Hex.bytes(text),
               let signature = HTTPField.Name(BootstrapAuth.signatureHeader) {
                let tag = BootstrapAuth.replyTag(key, nonce: nonce, target: request.uri.string, status: Int(status.code), body: Array(body))
                headers[signature] = Hex.text(tag)
            }
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    /// A registration is a few hundred bytes; this bounds what a caller can make the server hold.
    static let maxRegistrationBytes = 1 << 20

    func makeRouter() -> Router<BootstrapRequestContext> {
        let router = Router(context: BootstrapRequestContext.self)
        let registry = self.registry, key = self.key
        router.get("/health") { request, _ in Answer(status: .ok, body: Data("OK".utf8)).response(to: request, key: key) }
        let drained = self.drained
        router.get("/drained") { request, _ -> Response in
            guard let text = request.uri.queryParameters["session"], let session = UInt64(String(text)) else {
                return Answer.failure(.badRequest, "GET /drained needs ?session=<transfer session number>").response(to: request, key: key)
            }
            guard let answer = drained(session) else { return Answer.failure(.notFound, "unknown transfer session \(session)").response(to: request, key: key) }
            return Answer.json(["drained": answer]).response(to: request, key: key)
        }
        router.put("/route") { request, _ -> Response in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: Self.maxRegistrationBytes)
            } catch is NIOTooManyBytesError {
                return Answer.failure(.contentTooLarge, "PUT /route bodies are at most \(Self.maxRegistrationBytes) bytes").response(to: request, key: key)
            } catch {
                return Answer.failure(.badRequest, "PUT /route: the body was not received in full: \(error)").response(to: request, key: key)
            }
            if let key {
                let signature = HTTPField.Name(BootstrapAuth.signatureHeader).flatMap { request.headers[$0] }
                if let refusal = BootstrapAuth.refusal(ofRegistration: signature, body: Array(body.readableBytesView), key: key) {
                    return Answer.failure(.unauthorized, refusal).response(to: request, key: nil)
                }
            }
            guard let object = JSONParser.foundationObject(from: Data(body.readableBytesView)) as? [String: Any] else {
                return Answer.failure(.badRequest, "PUT /route needs a JSON object").response(to: request, key: key)
            }
            guard let route = PrefillRoute(json: object) else {
                return Answer.failure(.badRequest, "PUT /route needs rank_ip, rank_port, page_size, num_layers, kv_tensors (or kv_width and kv_dtype: float32|bfloat16), model and transfer_backend, and ranks inside their sizes (0 <= rank < size <= \(PrefillRoute.maxGroupSize))").response(to: request, key: key)
            }
            registry.register(route)
            return Answer.json(["registered": true]).response(to: request, key: key)
        }
        router.get("/route") { request, context -> Response in
            lookUp(request, context).response(to: request, key: key)
        }
        return router
    }

    /// `GET /route`: the instance's shape, or one rank's address.
    private func lookUp(_ request: Request, _ context: BootstrapRequestContext) -> Answer {
        let query = request.uri.queryParameters
        func rank(_ names: [String]) -> Int? {
            for name in names { if let v = query[Substring(name)] { return Int(String(v)) } }
            return nil
        }
        let tp = rank(["target_tp_rank", "engine_rank"]) ?? -1
        let dp = rank(["target_dp_rank", "target_dp_group"]) ?? -1
        guard registry.isComplete, let first = registry.all.first else {
            return Answer.failure(.serviceUnavailable, "prefill ranks have not all registered yet")
        }
        if tp == -1 && dp == -1 {
            return Answer.json([
                "prefill_tp_size": first.tpSize, "prefill_dp_size": first.dpSize, "prefill_pp_size": first.ppSize,
                "page_size": Int(first.layout.pageSize), "kv_dtype": first.layout.spec.tensors[0].dtype.rawValue,
                "transfer_backend": first.backend, "model": first.layout.model,
            ])
        }
        guard var route = registry.all.first(where: { $0.tpRank == max(tp, 0) && $0.dpRank == max(dp, 0) }) else {
            return Answer.failure(.notFound, "no prefill rank tp=\(tp) dp=\(dp)")
        }
        if route.rankIP.isEmpty {
            guard let local = AdvertisedAddress.perLookup.resolve(localAddress: context.localAddress) else {
                return Answer.failure(.internalServerError, "cannot tell which local address this lookup arrived on")
            }
            route.rankIP = local
        }
        return Answer.json(route.json)
    }

    /// Serves until the surrounding service group shuts down.
    /// `onRunning` gets the port it listens on (useful with port 0).
    public func makeApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(router: makeRouter(), configuration: .init(address: .hostname(host, port: port), serverName: "pdserve-bootstrap"),
                    onServerRunning: { await onRunning($0.localAddress?.port ?? 0) }, logger: logger)
    }
}

/// Hummingbird's basic context plus the local address the request arrived
/// on: the address to advertise to a decode that asked through it.
struct BootstrapRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let localAddress: String?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        localAddress = source.channel.localAddress?.ipAddress
    }
}
