import Engine
import Foundation
import Tokenization

/// The `logprobs` object of a completions choice: four parallel lists, one
/// entry per token. A prompt token nothing predicts (the first one), or
/// one whose logprob this instance did not compute (a PD decode echoing a
/// prompt its prefill ran), has `null` for its logprob and top logprobs.
struct CompletionLogprobs {
    private var tokens: [String] = []
    private var values: [Any] = []
    private var tops: [Any] = []
    private var offsets: [Int] = []

    /// Entries for `tokens` with their logprobs (nil where unknown); text
    /// offsets count characters from `textOffset`.
    init(tokens ids: [Int], logprobs: [TokenLogprob?], tokenizer: Tokenizer, textOffset: Int) {
        var offset = textOffset
        for (id, lp) in zip(ids, logprobs) {
            let text = tokenizer.decode([id])
            tokens.append(text)
            values.append(lp.map { $0.logprob as Any } ?? NSNull())
            offsets.append(offset)
            offset += text.count
            tops.append(lp.flatMap { lp in
                lp.top.isEmpty ? nil : Dictionary(lp.top.map { (tokenizer.decode([$0.token]), $0.logprob) }, uniquingKeysWith: max)
            } ?? NSNull())
        }
    }

    /// Entries for sampled tokens, which always have their logprobs.
    init(_ logprobs: [TokenLogprob], tokenizer: Tokenizer, textOffset: Int) {
        self.init(tokens: logprobs.map(\.token), logprobs: logprobs, tokenizer: tokenizer, textOffset: textOffset)
    }

    static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.tokens += b.tokens
        sum.values += b.values
        sum.tops += b.tops
        sum.offsets += b.offsets
        return sum
    }

    var json: [String: Any] {
        ["tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets]
    }
}
