/// One piece of input text travelling through normalization and pre-tokenization.
struct PreToken {
    /// The (normalized) text of the piece.
    var text: String
    /// Whether the piece starts at offset 0 of the original input. Metaspace with
    /// `prepend_scheme: "first"` only adds its "▁" to such a piece, so text that follows a
    /// special token at the start of the input gets none.
    var isAtInputStart: Bool

    /// A new piece made of the scalars of `text` in `range`, keeping track of whether it
    /// still begins at the input start.
    func slice(_ range: Range<String.Index>) -> PreToken {
        // Slice through the scalar view: String's own subscript rounds indices down to
        // grapheme boundaries, which would glue "e" to a following combining accent.
        PreToken(text: String(Substring(text.unicodeScalars[range])),
                 isAtInputStart: isAtInputStart && range.lowerBound == text.startIndex)
    }
}
