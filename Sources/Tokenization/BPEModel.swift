import ByteExactJSON
/// The `BPE` model of tokenizer.json: turns one pre-token into token ids by starting from
/// single characters and applying merges, lowest rank first.
final class BPEModel: @unchecked Sendable {
    /// Token → id, byte-exact.
    let vocab: [TokenKey: Int]
    /// id → token, for the model vocabulary only (nil where the vocabulary has a hole).
    let idToToken: [String?]

    private struct Merge {
        let rank: Int32
        let newId: Int32
    }

    /// (left id, right id) packed into one integer → the merge that joins them.
    private let merges: [UInt64: Merge]
    /// id of each single-scalar token, so the common case needs no string building.
    private let singleScalarIds: [UInt32: Int32]
    /// id of `<0xNN>` for each byte, or -1 (byte fallback).
    private let byteTokenIds: [Int32]
    private let unkTokenId: Int?
    private let fuseUnk: Bool
    private let byteFallback: Bool
    private let ignoreMerges: Bool
    private let continuingSubwordPrefix: String?
    private let endOfWordSuffix: String?
    private let cache = BPEWordCache(capacity: 100_000)

    /// Ids index dense arrays; real vocabularies stay far below this, and the bound keeps a
    /// corrupt file from requesting an enormous allocation.
    static let maxTokenId = 1 << 24
    /// Longer words are not cached: without a pre-tokenizer (Llama 2 style) a whole
    /// paragraph is one word and would only bloat the cache.
    private static let maxCachedWordBytes = 256

    init(json: JSONValue, file: String) throws(TokenizerError) {
        let component = "BPE model"
        guard let vocabJSON = json["vocab"]?.objectMembers else {
            throw TokenizerError.missingField(file: file, component: component, field: "vocab")
        }
        var vocab: [TokenKey: Int] = [:]
        vocab.reserveCapacity(vocabJSON.keys.count)
        var maxId = -1
        for (token, value) in zip(vocabJSON.keys, vocabJSON.values) {
            guard let id = value.intValue, (0..<Self.maxTokenId).contains(id) else {
                throw TokenizerError.invalidValue(file: file, component: component, detail: "vocab entry '\(token)' has no valid id")
            }
            vocab[TokenKey(token)] = id
            maxId = max(maxId, id)
        }
        var idToToken = [String?](repeating: nil, count: maxId + 1)
        for (token, value) in zip(vocabJSON.keys, vocabJSON.values) { idToToken[value.intValue!] = token }

        func optionalString(_ key: String) -> String? {
            guard let v = json[key], let s = v.stringValue, !s.isEmpty else { return nil }
            return s
        }
        continuingSubwordPrefix = optionalString("continuing_subword_prefix")
        endOfWordSuffix = optionalString("end_of_word_suffix")
        fuseUnk = json["fuse_unk"]?.boolValue ?? false
        byteFallback = json["byte_fallback"]?.boolValue ?? false
        ignoreMerges = json["ignore_merges"]?.boolValue ?? false
        if let unk = optionalString("unk_token") {
            // The reference fails at encode time when unk_token is not in the vocabulary; we
            // simply drop unknown characters then.
            unkTokenId = vocab[TokenKey(unk)]
        } else {
            unkTokenId = nil
        }

        var singles: [UInt32: Int32] = [:]
        for (token, id) in vocab {
            var it = token.string.unicodeScalars.makeIterator()
            if let first = it.next(), it.next() == nil { singles[first.value] = Int32(id) }
        }
        singleScalarIds = singles

        var bytes = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            let name = "<0x" + String(b, radix: 16, uppercase: true).leftPadded(to: 2) + ">"
            if let id = vocab[TokenKey(name)] { bytes[b] = Int32(id) }
        }
        byteTokenIds = bytes

        guard let mergesJSON = json["merges"]?.arrayValue else {
            throw TokenizerError.missingField(file: file, component: component, field: "merges")
        }
        let prefixLength = continuingSubwordPrefix?.unicodeScalars.count ?? 0
        var merges: [UInt64: Merge] = [:]
        merges.reserveCapacity(mergesJSON.count)
        for (rank, entry) in mergesJSON.enumerated() {
            let left: String, right: String
            if let line = entry.stringValue {
                // Legacy "a b" form: tokens cannot contain spaces here, so one space separates
                // them. Split on the byte, not with `split(separator:)`, which works on
                // grapheme clusters and would not see a space followed by a combining mark.
                let bytes = Array(line.utf8)
                let spaces = bytes.indices.filter { bytes[$0] == 0x20 }
                guard spaces.count == 1, let space = spaces.first else {
                    throw TokenizerError.invalidValue(file: file, component: component, detail: "merge #\(rank) '\(line)' is not two tokens")
                }
                left = String(decoding: bytes[..<space], as: UTF8.self)
                right = String(decoding: bytes[(space + 1)...], as: UTF8.self)
            } else if let pair = entry.arrayValue, pair.count == 2, let l = pair[0].stringValue, let r = pair[1].stringValue {
                left = l
                right = r
            } else {
                throw TokenizerError.invalidValue(file: file, component: component, detail: "merge #\(rank) is neither \"a b\" nor [\"a\", \"b\"]")
            }
            // Scalar-wise prefix test: `hasPrefix` compares grapheme clusters.
            let rightPart = prefixLength > 0 && right.unicodeScalars.starts(with: continuingSubwordPrefix!.unicodeScalars)
                ? String(Substring(right.unicodeScalars.dropFirst(prefixLength))) : right
            guard let l = vocab[TokenKey(left)], let r = vocab[TokenKey(right)],
                  let n = vocab[TokenKey(left + rightPart)] else {
                throw TokenizerError.invalidValue(file: file, component: component,
                                                  detail: "merge #\(rank) ('\(left)', '\(right)') uses a token missing from the vocabulary")
            }
            let key = UInt64(UInt32(l)) << 32 | UInt64(UInt32(r))
            // Keep the first (best-ranked) merge if a pair is listed twice.
            if merges[key] == nil { merges[key] = Merge(rank: Int32(rank), newId: Int32(n)) }
        }
        self.merges = merges
        self.vocab = vocab
        self.idToToken = idToToken
    }

    /// Appends the ids of one pre-token to `ids`.
    func tokenize(_ word: String, into ids: inout [Int]) {
        if word.isEmpty { return }
        let key = TokenKey(word)
        // Llama 3: a pre-token that is itself a vocabulary entry is emitted whole, even if
        // the merges would not rebuild it.
        if ignoreMerges, let id = vocab[key] {
            ids.append(id)
            return
        }
        if let hit = cache.get(key) {
            for id in hit { ids.append(Int(id)) }
            return
        }
        let result = merge(word)
        if word.utf8.count <= Self.maxCachedWordBytes { cache.set(key, result) }
        for id in result { ids.append(Int(id)) }
    }

    /// Splits `word` into initial symbols (characters, byte-fallback tokens, unk).
    private func initialSymbols(_ word: String) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.utf8.count)
        // A pending unknown run: fuse_unk collapses consecutive unknown characters into one.
        var pendingUnk = false
        let plain = continuingSubwordPrefix == nil && endOfWordSuffix == nil
        let scalars = word.unicodeScalars
        var index = scalars.startIndex
        var isFirst = true
        while index != scalars.endIndex {
            let scalar = scalars[index]
            index = scalars.index(after: index)
            let isLast = index == scalars.endIndex
            var found: Int32?
            var text: String?
            if plain {
                found = singleScalarIds[scalar.value]
            } else {
                var s = String(scalar)
                if !isFirst, let prefix = continuingSubwordPrefix { s = prefix + s }
                if isLast, let suffix = endOfWordSuffix { s += suffix }
                found = vocab[TokenKey(s)].map { Int32($0) }
                text = s
            }
            isFirst = false
            if let id = found {
                if pendingUnk, let unk = unkTokenId { symbols.append(Int32(unk)) }
                pendingUnk = false
                symbols.append(id)
                continue
            }
            if byteFallback {
                let bytes = Array((text ?? String(scalar)).utf8)
                if bytes.allSatisfy({ byteTokenIds[Int($0)] >= 0 }) {
                    // As in the reference, a pending unk is not flushed before byte tokens.
                    for b in bytes { symbols.append(byteTokenIds[Int(b)]) }
                    continue
                }
            }
            if let unk = unkTokenId {
                if pendingUnk && !fuseUnk { symbols.append(Int32(unk)) }
                pendingUnk = true
            }
        }
        if pendingUnk, let unk = unkTokenId { symbols.append(Int32(unk)) }
        return symbols
    }

    /// Applies merges to the symbols of `word`: repeatedly the lowest-ranked adjacent pair,
    /// leftmost on ties, using a heap so long words stay O(n log n).
    private func merge(_ word: String) -> [Int32] {
        var ids = initialSymbols(word)
        let n = ids.count
        if n < 2 { return ids }
        var prev = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = Int32(i) - 1 }
            count = n
        }
        var next = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = i + 1 < n ? Int32(i + 1) : -1 }
            count = n
        }
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        @inline(__always) func pairKey(_ a: Int32, _ b: Int32) -> UInt64 {
            UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        }
        for i in 0..<(n - 1) {
            if let m = merges[pairKey(ids[i], ids[i + 1])] {
                heap.push(MergeHeap.Entry(rank: m.rank, position: Int32(i), newId: m.newId))
            }
        }
        while let top = heap.pop() {
            let p = Int(top.position)
            guard alive[p], next[p] >= 0 else { continue }
            let q = Int(next[p])
            // Entries go stale when a neighbour was merged away; re-check the pair.
            guard let m = merges[pairKey(ids[p], ids[q])], m.newId == top.newId else { continue }
            ids[p] = m.newId
            alive[q] = false
            next[p] = next[q]
            if next[q] >= 0 { prev[Int(next[q])] = Int32(p) }
            if prev[p] >= 0 {
                let l = Int(prev[p])
                if let m2 = merges[pairKey(ids[l], ids[p])] {
                    heap.push(MergeHeap.Entry(rank: m2.rank, position: Int32(l), newId: m2.newId))
                }
            }
            if next[p] >= 0 {
                if let m2 = merges[pairKey(ids[p], ids[Int(next[p])])] {
                    heap.push(MergeHeap.Entry(rank: m2.rank, position: Int32(p), newId: m2.newId))
                }
            }
        }
        var result: [Int32] = []
        var i: Int32 = 0
        while i >= 0 {
            result.append(ids[Int(i)])
            i = next[Int(i)]
        }
        return result
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
