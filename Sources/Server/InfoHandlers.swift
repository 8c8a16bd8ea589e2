import Engine
import Foundation
import Hummingbird

/// Health, model and server information, load, cache flush, abort and
/// metrics: the endpoints routers and operators poll.
struct InfoHandlers: Sendable {
    let service: InferenceService

    var configuration: ServerConfiguration { service.configuration }

    /// 200 while the instance takes requests; 503 once it drains, so routers
    /// polling it stop sending here.
    func health() -> Response {
        service.lifecycle.isDraining ? APIError.draining.response : Response(status: .ok)
    }

    /// `/readiness`: the engine is loaded (it is before the server listens) and the instance is not draining.
    func readiness() -> Response {
        service.lifecycle.isDraining ? APIError.draining.response : JSON.response(["status": "ready"])
    }

    /// `POST /drain`: stop taking requests, finish the admitted ones.
    func drain(context: ServerRequestContext) -> Response {
        if service.lifecycle.drain() {
            context.logger.info("draining: finishing in-flight requests, refusing new ones", metadata: ["in_flight": "\(service.inFlightCount)"])
        }
        return JSON.response(["status": "draining", "in_flight": service.inFlightCount])
    }

    func models() -> Response {
        JSON.response(["object": "list", "data": [modelEntry]])
    }

    /// `GET /v1/models/{id}` (ids may hold slashes, as Hugging Face names do).
    func model(id: String) throws(APIError) -> Response {
        guard id == configuration.servedModelName else { throw APIError.modelNotFound(id, served: configuration.servedModelName) }
        return JSON.response(modelEntry)
    }

    private var modelEntry: [String: Any] {
        ["id": configuration.servedModelName, "object": "model", "created": OpenAIFormat.now, "owned_by": "pdserve",
         "root": configuration.modelPath, "max_model_len": service.engine.contextLength]
    }

    func modelInfo() -> Response {
        let config = service.engine.model.config
        return JSON.response([
            "model_path": configuration.modelPath, "tokenizer_path": configuration.modelPath,
            "served_model_name": configuration.servedModelName, "is_generation": true,
            "architectures": [config.architecture], "tp_size": 1, "dp_size": 1,
            "disaggregation_mode": configuration.disaggregationMode, "context_length": service.engine.contextLength,
        ])
    }

    func serverInfo() async -> Response {
        let s = await service.engine.snapshot()
        let o = service.engine.options
        var info: [String: Any] = [
            "model_path": configuration.modelPath, "served_model_name": configuration.servedModelName,
            "host": configuration.host, "port": configuration.port, "tp_size": 1, "dp_size": 1,
            "disaggregation_mode": configuration.disaggregationMode, "page_size": o.pageSize,
            "max_total_num_tokens": service.engine.kvCapacity, "max_running_requests": o.maxRunningRequests,
            "num_reserved_decode_tokens": o.reservedDecodeTokens,
            "max_queued_requests": configuration.maxQueuedRequests, "chunked_prefill_size": o.chunkedPrefillSize,
            "schedule_policy": o.schedulePolicy.rawValue,
            "context_length": service.engine.contextLength, "kv_cache_dtype": o.kvCacheDType.rawValue,
            "matmul_precision": o.matmulPrecision.rawValue,
            "enable_prefix_cache": o.enablePrefixCache, "threads": o.threads,
            "kv_pool": ["total_pages": s.totalPages, "free_pages": s.freePages, "cached_pages": s.cachedPages,
                        "leased_pages": s.leasedPages, "page_size": s.pageSize],
            "internal_states": [[
                "num_running_reqs": s.running, "num_waiting_reqs": s.waiting, "num_running_tokens": s.runningTokens,
                "num_transferring_reqs": s.parked, "num_inflight_reqs": s.inflight, "num_retracted_reqs": s.retractions,
                "num_preempted_reqs": s.preemptions,
            ]],
            "version": PDServeVersion.string,
        ]
        for (key, value) in configuration.extraInfo { info[key] = value }
        return JSON.response(info)
    }

    func load() async -> Response {
        let s = await service.engine.snapshot()
        return JSON.response([[
            "dp_rank": 0, "num_reqs": s.running + s.waiting, "num_waiting_reqs": s.waiting,
            "num_tokens": s.runningTokens, "num_pages_used": s.totalPages - s.freePages,
        ] as [String: Any]])
    }

    func flushCache() async -> Response {
        await service.engine.flushCache()
        return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "Cache flushed.\n")))
    }

    func abort(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let body = try await RequestReader.json(request, configuration: configuration, limit: 1 << 20)
        let all = try body.bool("abort_all") ?? false
        let rid = try body.string("rid")
        guard all || rid != nil else { throw APIError.invalid("Give 'rid' (the request's id) or 'abort_all': true.", param: "rid") }
        let count = service.abort(name: rid, all: all)
        return JSON.response(["aborted": count])
    }

    /// Generates one real token to prove the engine is alive. A PD half
    /// cannot generate alone, so there it proves the engine thread answers.
    func healthGenerate(context: ServerRequestContext) async -> Response {
        if configuration.disaggregationMode != "null" {
            _ = await service.engine.snapshot()
            return Response(status: .ok)
        }
        var params = SamplingParams()
        params.maxNewTokens = 1
        params.temperature = 0
        params.ignoreEOS = true
        let tokenizer = service.tokenizer
        let prompt = tokenizer.bosTokenId.map { [$0] } ?? Array(tokenizer.encode("ping").prefix(1))
        let input = GenerateInput(id: "health-" + UUID().uuidString, promptTokens: prompt.isEmpty ? [0] : prompt, params: params)
        do {
            let results = try await service.collect([input], channel: nil, logger: context.logger)
            if results.first?.tokens.count == 1 { return Response(status: .ok) }
        } catch {}
        return APIError(.serviceUnavailable, type: "unhealthy", "The engine did not generate a token.").response
    }

    func metrics() async -> Response {
        let text = service.metrics.render(snapshot: await service.engine.snapshot(), connections: service.connections)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The version string reported by /server_info and `--version`.
public enum PDServeVersion {
    public static let string = "0.1.0"
}
