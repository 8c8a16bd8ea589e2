/// What a `Split`-style pre-tokenizer does with the pieces its pattern matches.
enum SplitDelimiterBehavior {
    /// Drop matches; keep the text between them.
    case removed
    /// Every match and every gap becomes its own piece.
    case isolated
    /// Each match is glued to the end of the piece before it.
    case mergedWithPrevious
    /// Each match is glued to the start of the piece after it.
    case mergedWithNext
    /// Runs of adjacent matches become one piece (and so do runs of gaps, which only
    /// happen with `invert`).
    case contiguous

    init(name: String?, file: String, component: String) throws(TokenizerError) {
        switch name {
        case "Removed": self = .removed
        case "Isolated": self = .isolated
        case "MergedWithPrevious": self = .mergedWithPrevious
        case "MergedWithNext": self = .mergedWithNext
        case "Contiguous": self = .contiguous
        case nil: throw TokenizerError.missingField(file: file, component: component, field: "behavior")
        case let other?: throw TokenizerError.unsupported(file: file, component: "\(component) behavior", type: other)
        }
    }

    /// Splits `token` around `matches` (sorted, non-overlapping ranges of `token.text`).
    /// With `invert`, the matches are the pieces to keep and the gaps are the delimiters.
    /// Empty pieces are dropped, as the reference implementation does.
    func split(_ token: PreToken, matches: [Range<String.Index>], invert: Bool = false) -> [PreToken] {
        let text = token.text
        if text.isEmpty { return [] }
        // Cover the whole text with alternating (range, isMatch) segments.
        var segments: [(range: Range<String.Index>, isMatch: Bool)] = []
        segments.reserveCapacity(matches.count * 2 + 1)
        var previous = text.startIndex
        for m in matches {
            if previous < m.lowerBound { segments.append((previous..<m.lowerBound, invert)) }
            segments.append((m, !invert))
            previous = m.upperBound
        }
        if previous < text.endIndex { segments.append((previous..<text.endIndex, invert)) }

        var pieces: [Range<String.Index>] = []
        pieces.reserveCapacity(segments.count)
        switch self {
        case .removed:
            for s in segments where !s.isMatch { pieces.append(s.range) }
        case .isolated:
            pieces = segments.map(\.range)
        case .contiguous:
            // Adjacent segments of the same kind fuse; with `invert` that includes runs of
            // delimiters, which are then separate segments.
            var previousWasMatch = false
            for s in segments {
                if s.isMatch == previousWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<s.range.upperBound
                } else {
                    pieces.append(s.range)
                }
                previousWasMatch = s.isMatch
            }
        case .mergedWithPrevious:
            var previousWasMatch = false
            for s in segments {
                if s.isMatch && !previousWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<s.range.upperBound
                } else {
                    pieces.append(s.range)
                }
                previousWasMatch = s.isMatch
            }
        case .mergedWithNext:
            // Mirror image of mergedWithPrevious: walk right to left.
            var previousWasMatch = false
            for s in segments.reversed() {
                if s.isMatch && !previousWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = s.range.lowerBound..<last.upperBound
                } else {
                    pieces.append(s.range)
                }
                previousWasMatch = s.isMatch
            }
            pieces.reverse()
        }
        return pieces.compactMap { $0.isEmpty ? nil : token.slice($0) }
    }
}
