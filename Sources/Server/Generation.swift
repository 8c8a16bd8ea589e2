import Engine

/// Everything one request produced, accumulated from its updates.
struct Generation: Sendable {
    var tokens: [Int] = []
    var text = ""
    var logprobs: [TokenLogprob] = []
    var inputLogprobs: [TokenLogprob?] = []
    var finish: FinishReason?
    var promptTokens = 0
    var completionTokens = 0
    var cachedTokens = 0
    var phases: RequestPhases?

    mutating func absorb(_ update: RequestUpdate) {
        tokens += update.newTokens
        text += update.textDelta
        logprobs += update.newLogprobs
        if !update.inputLogprobs.isEmpty { inputLogprobs = update.inputLogprobs }
        finish = update.finish ?? finish
        promptTokens = update.promptTokenCount
        completionTokens = update.completionTokenCount
        cachedTokens = update.cachedTokenCount
        phases = update.phases ?? phases
    }
}
