/// Streams text out of a growing id sequence without ever emitting a broken UTF-8 sequence
/// or text that a later token would change.
///
/// It decodes a short window of recent ids (the approach of text-generation-inference):
/// `prefixOffset..<readOffset` is text already emitted, `readOffset...` is pending. When the
/// window's text grows and nothing at its end can still change (no incomplete character, no
/// open run of byte-fallback tokens that may still become valid), the growth is emitted and
/// the window slides forward. The concatenation of all `append` results and `finish()`
/// equals `tokenizer.decode(allIds)`.
public struct IncrementalDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var ids: [Int] = []
    private var prefixOffset = 0
    private var readOffset = 0
    /// Whether any id before `prefixOffset` reached the decoder. Until one has, the window
    /// is the start of the text, where decoders drop the leading space of the first word.
    private var hasVisibleTokenBeforePrefix = false

    /// Text already emitted from `ids[readOffset...]`: only while an invalid run of byte
    /// tokens is still open (its U+FFFDs are final, but the window cannot slide into a run).
    private var emittedPending = ""

    /// All text emitted so far.
    public private(set) var text = ""

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id; returns the newly finalized text (may be "").
    public mutating func append(_ id: Int) -> String {
        ids.append(id)
        let (prefixText, windowText) = decodeWindow()
        let known = prefixText + emittedPending
        guard windowText.utf8.count > known.utf8.count else { return "" }
        if let run = tokenizer.trailingByteRun(ids[readOffset...], skipSpecialTokens: skipSpecialTokens) {
            // The ByteFallback decoder judges a run of byte tokens as one unit: one invalid
            // byte turns every byte of it into U+FFFD, even bytes that already formed
            // characters. While the run can still become valid UTF-8 none of it is final;
            // once it cannot, its U+FFFDs are, but the window stays at the run's start.
            guard !UTF8Prefix.canBecomeValid(run) else { return "" }
            return emit(Self.suffix(of: windowText, after: known), slide: false)
        }
        // The first bytes of a character decode as U+FFFD until the rest arrives (or turns
        // out never to): wait. Invalid bytes before them are final U+FFFDs already.
        if tokenizer.endsInIncompleteCharacter(ids[readOffset...], skipSpecialTokens: skipSpecialTokens) { return "" }
        return emit(Self.suffix(of: windowText, after: known), slide: true)
    }

    /// Flushes whatever is pending, even an incomplete character (as U+FFFD).
    public mutating func finish() -> String {
        guard readOffset < ids.count else { return "" }
        let (prefixText, windowText) = decodeWindow()
        return emit(Self.suffix(of: windowText, after: prefixText + emittedPending), slide: true)
    }

    /// The text of the ids before `readOffset` (already emitted) and of the whole window.
    private func decodeWindow() -> (prefix: String, window: String) {
        let atStart = !hasVisibleTokenBeforePrefix
        return (tokenizer.decode(ids[prefixOffset..<readOffset], skipSpecialTokens: skipSpecialTokens, atStart: atStart),
                tokenizer.decode(ids[prefixOffset...], skipSpecialTokens: skipSpecialTokens, atStart: atStart))
    }

    private mutating func emit(_ delta: String, slide: Bool) -> String {
        text += delta
        if slide {
            advance(to: ids.count)
            emittedPending = ""
        } else {
            emittedPending += delta
        }
        return delta
    }

    private mutating func advance(to end: Int) {
        if !hasVisibleTokenBeforePrefix {
            hasVisibleTokenBeforePrefix = ids[prefixOffset..<readOffset].contains {
                tokenizer.contributesToDecode($0, skipSpecialTokens: skipSpecialTokens)
            }
        }
        prefixOffset = readOffset
        readOffset = end
    }

    /// The part of `text` after `prefix`. Decoding is prefix-stable for the supported
    /// decoders; should a decoder ever rewrite earlier text, fall back to the part after the
    /// longest common scalar prefix rather than emit garbage.
    private static func suffix(of text: String, after prefix: String) -> String {
        if text.utf8.starts(with: prefix.utf8) {
            let start = text.utf8.index(text.utf8.startIndex, offsetBy: prefix.utf8.count)
            return String(Substring(text.unicodeScalars[start...]))
        }
        var a = text.unicodeScalars.startIndex
        var b = prefix.unicodeScalars.startIndex
        while a != text.unicodeScalars.endIndex, b != prefix.unicodeScalars.endIndex,
              text.unicodeScalars[a] == prefix.unicodeScalars[b] {
            a = text.unicodeScalars.index(after: a)
            b = prefix.unicodeScalars.index(after: b)
        }
        return String(Substring(text.unicodeScalars[a...]))
    }
}
