import Grammar
import Tokenization

/// Turns each sampled token into output: detokenizes incrementally, checks
/// stop tokens, stop strings and the length limit, and holds back the text
/// tail that could still grow into a stop string.
struct OutputProcessor {
    let eosTokens: Set<Int32>

    /// Appends a token (sampled here or by a prefill instance) and decides
    /// whether the request is done (`request.finish`).
    func accept(_ request: Request, token: Int, logprob: TokenLogprob?) -> RequestUpdate {
        request.append(Int32(token))
        var update = Self.update(for: request)
        update.newTokens = [token]
        if request.outputCount == 1 { update.inputLogprobs = request.orderedInputLogprobs }
        if let logprob { update.newLogprobs = [logprob] }

        // Before min_new_tokens only the length limit ends a request (as SGLang's check_finished).
        let mayStop = request.outputCount >= request.params.minNewTokens
        if mayStop && stopTokens(for: request).contains(Int32(token)) {
            // The stop token's own text is not part of the output, unless no_stop_trim keeps it.
            request.finish = .stop(matched: nil)
            if request.params.noStopTrim { request.appendText(request.detokenizer.append(token)) }
            request.appendText(request.detokenizer.finish())
        } else if request.grammar?.advance(token) == false {
            // Only a PD decode can meet this: its prefill sampled the first token.
            request.finish = .failed(RequestFailure(.invalidPeerData, "the first token (\(token)) from the prefill does not fit the request's constraint"))
        } else {
            let delta = request.detokenizer.append(token)
            request.appendText(delta)
            if mayStop, let stop = cutAtStopString(request, newBytes: delta.utf8.count) {
                request.finish = .stop(matched: stop)
            } else if request.outputCount >= request.params.maxNewTokens {
                request.finish = .length
                request.appendText(request.detokenizer.finish())
            } else if request.grammar?.next() == .complete, stopTokens(for: request).isEmpty {
                // Nothing can extend the output and no stop token may end it
                // (ignore_eos): it ends here. Otherwise the next draw is a stop token, as in SGLang.
                request.finish = .stop(matched: nil)
                request.appendText(request.detokenizer.finish())
            }
        }
        update.completionTokenCount = request.outputCount
        return update
    }

    /// The tokens that end `request`: its stop tokens, and EOS unless it ignores EOS.
    func stopTokens(for request: Request) -> Set<Int32> {
        var tokens = Set(request.params.stopTokenIds.map { Int32(truncatingIfNeeded: $0) })
        if !request.params.ignoreEOS { tokens.formUnion(eosTokens) }
        return tokens
    }

    /// What the request's constraint lets the sampler draw next: once the
    /// output is complete, only a stop token. `.stuck` when nothing can follow.
    func allowedTokens(for request: Request) -> Constrained {
        guard let matcher = request.grammar else { return .unconstrained }
        switch matcher.next() {
        case let .tokens(mask, mayEnd):
            return .allowed(AllowedTokens(mask: mask, ends: mayEnd ? stopTokens(for: request) : []))
        case .complete:
            let ends = stopTokens(for: request)
            return ends.isEmpty ? .stuck("the output is complete but the request has no stop token to end it") : .allowed(AllowedTokens(mask: TokenMask(count: 0), ends: ends))
        case .stuck(let why):
            return .stuck(why)
        }
    }

    enum Constrained {
        case unconstrained
        case allowed(AllowedTokens)
        case stuck(String)
    }

    /// The tokens the sampler must not draw for `request`'s next token: its
    /// stop tokens while fewer than `min_new_tokens` are out.
    func heldBack(for request: Request) -> Set<Int32> {
        // A complete constrained output can only end: min_new_tokens cannot hold it open.
        guard request.outputCount < request.params.minNewTokens, request.grammar?.next() != .complete else { return [] }
        return stopTokens(for: request)
    }

    /// If a stop string occurs in the newest text, cuts the text before it
    /// (or after it, with no_stop_trim) and returns it. Only the tail that
    /// overlaps the new bytes is searched.
    private func cutAtStopString(_ request: Request, newBytes: Int) -> String? {
        guard newBytes > 0, !request.params.stopStrings.isEmpty else { return nil }
        let count = request.textBytes.count
        for stop in request.params.stopStrings {
            let s = Array(stop.utf8)
            let first = max(0, count - newBytes - s.count + 1)
            guard count >= s.count, first <= count - s.count else { continue }
            for start in first...(count - s.count) where request.textBytes[start..<start + s.count].elementsEqual(s) {
                request.truncateText(to: request.params.noStopTrim ? start + s.count : start)
                return stop
            }
        }
        return nil
    }

    /// The part of the text that is safe to stream: everything, once
    /// finished; otherwise all but a tail that could still grow into a stop string.
    static func takeText(_ request: Request) -> String {
        let bytes = request.textBytes
        var end = bytes.count
        if request.finish == nil {
            for stop in request.params.stopStrings {
                let s = Array(stop.utf8)
                for length in stride(from: min(s.count - 1, bytes.count), to: 0, by: -1)
                where bytes[(bytes.count - length)...].elementsEqual(s[..<length]) {
                    end = min(end, bytes.count - length)
                    break
                }
            }
        }
        guard end > request.emittedBytes else { return "" }
        let delta = String(decoding: bytes[request.emittedBytes..<end], as: UTF8.self)
        request.emittedBytes = end
        return delta
    }

    static func update(for request: Request) -> RequestUpdate {
        RequestUpdate(id: request.id, promptTokenCount: request.promptCount, completionTokenCount: request.outputCount,
                      cachedTokenCount: request.cachedTokenCount)
    }

    /// The update that reports a request's end, with its last text.
    static func finalUpdate(for request: Request) -> RequestUpdate {
        var update = update(for: request)
        update.finish = request.finish
        update.textDelta = takeText(request)
        return update
    }
}
