import Engine
import Tracing

/// One engine request as a span of the current trace (a child of the HTTP
/// request's server span, itself continuing the caller's `traceparent`):
/// named by the instance's role, carrying the token counts, the PD room,
/// the finish reason and every phase the request reports. A no-op span
/// unless `--otlp-traces-endpoint` installed a tracer.
struct InferenceSpan {
    private let span: any Span

    init(input: GenerateInput, name: String, mode: String) {
        let operation = switch mode {
        case "prefill": "pdserve prefill"
        case "decode": "pdserve decode"
        default: "pdserve generate"
        }
        span = startSpan(operation, ofKind: .internal)
        span.updateAttributes { attributes in
            attributes["pdserve.request_id"] = input.id
            attributes["pdserve.rid"] = name
            attributes["pdserve.disaggregation_mode"] = mode
            attributes["gen_ai.usage.input_tokens"] = input.promptTokens.count
            attributes["gen_ai.request.max_tokens"] = input.params.maxNewTokens
            if let room = input.bootstrap?.room { attributes["pdserve.bootstrap_room"] = String(room) }
        }
    }

    /// The request ended with its last update (nil: the stream ended without one).
    func end(_ last: RequestUpdate?) {
        if let last {
            span.updateAttributes { attributes in
                attributes["gen_ai.usage.output_tokens"] = last.completionTokenCount
                if let finish = last.finish { attributes["gen_ai.response.finish_reasons"] = [finish.name] }
                if let phases = last.phases {
                    for (phase, seconds) in phases.seconds { attributes["pdserve.phase.\(phase.rawValue)"] = seconds }
                    if let bytes = phases.transferBytes { attributes["pdserve.kv_transfer_bytes"] = bytes }
                }
            }
            if case .failed(let failure)? = last.finish {
                span.recordError(failure)
                span.setStatus(SpanStatus(code: .error, message: failure.message))
            }
        }
        span.end()
    }

    func end(error: any Error) {
        span.recordError(error)
        span.setStatus(SpanStatus(code: .error, message: "\(error)"))
        span.end()
    }
}
