import ByteExactJSON
import Foundation

/// A Hugging Face `tokenizer.json` tokenizer (BPE models: byte-level like GPT-2, Llama 3,
/// Qwen, or SentencePiece-style with byte fallback like Llama 2, Mistral).
///
/// Immutable after init, so one instance can be shared by every request thread. The only
/// mutable state, the BPE word cache, is behind a lock.
public final class Tokenizer: @unchecked Sendable {
    let model: BPEModel
    let addedVocabulary: AddedVocabulary
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?

    /// Added token by id.
    private let addedById: [Int: AddedToken]
    /// Token text by id, added tokens overriding the model vocabulary.
    private let tokensById: [String?]
    /// The string handed to the decoder for each added token (see `init`).
    private let addedDecodeForm: [Int: String]
    /// Whether the decoder has a ByteLevel step (all bytes decoded lossily together) and a
    /// ByteFallback step (each run of `<0xNN>` tokens judged as one unit); read per streamed token.
    private let decoderHasByteLevel: Bool
    private let decoderHasByteFallback: Bool
    private let addedByContent: [TokenKey: Int]

    /// Number of ids: the largest id (model or added) plus one.
    public let vocabSize: Int
    /// The BOS token id named by tokenizer_config.json, if any.
    public let bosTokenId: Int?
    /// The EOS token id(s) named by tokenizer_config.json (may be empty).
    public let eosTokenIds: [Int]
    /// The chat template: `chat_template.jinja` beside the tokenizer if present, else
    /// tokenizer_config.json's `chat_template`.
    public let chatTemplate: String?
    /// tokenizer_config.json's `add_bos_token`, when stated. Informational: `encode` follows
    /// tokenizer.json's post-processor, which is what the reference library does.
    public let addBosToken: Bool?
    /// All added tokens (special or not), in file order.
    public var addedTokens: [AddedToken] { addedVocabulary.tokens }

    /// Loads tokenizer.json (+ tokenizer_config.json and chat_template.jinja if present)
    /// from a model folder.
    public convenience init(directory: URL) throws {
        let tokenizerURL = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerURL.path),
              let data = try? Data(contentsOf: tokenizerURL) else {
            throw TokenizerError.fileNotFound(path: tokenizerURL.path)
        }
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let configData = FileManager.default.fileExists(atPath: configURL.path) ? try? Data(contentsOf: configURL) : nil
        let templateURL = directory.appendingPathComponent("chat_template.jinja")
        let template = FileManager.default.fileExists(atPath: templateURL.path)
            ? (try? Data(contentsOf: templateURL)).map { String(decoding: $0, as: UTF8.self) } : nil
        try self.init(tokenizerJSON: data, tokenizerConfigJSON: configData, chatTemplateFile: template,
                      tokenizerFile: tokenizerURL.path, configFile: configURL.path)
    }

    /// Builds a tokenizer from the contents of tokenizer.json and (optionally) tokenizer_config.json.
    public convenience init(tokenizerJSON: Data, tokenizerConfigJSON: Data?) throws {
        try self.init(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON, chatTemplateFile: nil,
                      tokenizerFile: "tokenizer.json", configFile: "tokenizer_config.json")
    }

    init(tokenizerJSON: Data, tokenizerConfigJSON: Data?, chatTemplateFile: String?,
         tokenizerFile: String, configFile: String) throws(TokenizerError) {
        let root: JSONValue
        do {
            root = try JSONParser.parse(tokenizerJSON)
        } catch {
            throw TokenizerError.invalidJSON(file: tokenizerFile, detail: error.description)
        }
        guard root.objectMembers != nil else {
            throw TokenizerError.invalidJSON(file: tokenizerFile, detail: "top level is not an object")
        }
        guard let modelJSON = root["model"], modelJSON.objectMembers != nil else {
            throw TokenizerError.missingField(file: tokenizerFile, component: "tokenizer", field: "model")
        }
        // Old files omit the model type; a merges list means BPE.
        let modelType = modelJSON["type"]?.stringValue ?? (modelJSON["merges"] != nil ? "BPE" : "unknown")
        guard modelType == "BPE" else {
            throw TokenizerError.unsupported(file: tokenizerFile, component: "model", type: modelType)
        }
        model = try BPEModel(json: modelJSON, file: tokenizerFile)
        normalizer = try Normalizer.make(json: root["normalizer"], file: tokenizerFile)
        preTokenizer = try PreTokenizer.make(json: root["pre_tokenizer"], file: tokenizerFile)
        postProcessor = try PostProcessor.make(json: root["post_processor"], file: tokenizerFile)
        decoder = try TokenDecoder.make(json: root["decoder"], file: tokenizerFile)

        var added: [AddedToken] = []
        for item in root["added_tokens"]?.arrayValue ?? [] {
            added.append(try AddedToken(json: item, file: tokenizerFile))
        }
        addedVocabulary = AddedVocabulary(tokens: added, normalizer: normalizer)

        var byId: [Int: AddedToken] = [:]
        var byContent: [TokenKey: Int] = [:]
        var decodeForm: [Int: String] = [:]
        decoderHasByteLevel = decoder?.containsByteLevel ?? false
        decoderHasByteFallback = decoder?.containsByteFallback ?? false
        for t in added {
            byId[t.id] = t
            byContent[TokenKey(t.content)] = t.id
            // The reference byte-encodes non-special, non-normalized added tokens before a
            // ByteLevel decoder sees them, so e.g. "é" in such a token is not read as byte 0xE9.
            decodeForm[t.id] = decoderHasByteLevel && !t.special && !t.normalized ? ByteLevelMapping.encode(t.content) : t.content
        }
        addedById = byId
        addedByContent = byContent
        addedDecodeForm = decodeForm

        let size = max(model.idToToken.count, (added.map(\.id).max() ?? -1) + 1)
        var tokens = model.idToToken + [String?](repeating: nil, count: size - model.idToToken.count)
        for t in added { tokens[t.id] = t.content }
        tokensById = tokens
        vocabSize = size

        var config = TokenizerConfig()
        if let tokenizerConfigJSON {
            let json: JSONValue
            do {
                json = try JSONParser.parse(tokenizerConfigJSON)
            } catch {
                throw TokenizerError.invalidJSON(file: configFile, detail: error.description)
            }
            config = try TokenizerConfig(json: json, file: configFile)
        }
        let modelVocab = model.vocab
        func lookup(_ token: String) -> Int? { byContent[TokenKey(token)] ?? modelVocab[TokenKey(token)] }
        bosTokenId = config.bosToken.flatMap(lookup)
        eosTokenIds = config.eosTokens.compactMap(lookup)
        chatTemplate = chatTemplateFile ?? config.chatTemplate
        addBosToken = config.addBosToken
    }

    // MARK: - Encoding

    /// Encodes `text` to token ids. With `addSpecialTokens`, the post-processor's template
    /// (e.g. a leading BOS) is applied.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        for segment in addedVocabulary.split(text, normalizer: normalizer) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let piece):
                let words = preTokenizer?.preTokenize([piece]) ?? [piece]
                for word in words { model.tokenize(word.text, into: &ids) }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    // MARK: - Decoding

    /// Decodes ids to text. Unknown ids are ignored; with `skipSpecialTokens`, added tokens
    /// marked special are left out.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        decode(ids[...], skipSpecialTokens: skipSpecialTokens, atStart: true)
    }

    /// Decodes a window of ids; `atStart: false` keeps the leading space that the decoder
    /// would strip from the first word of a whole text (see `TokenDecoder.decode`).
    func decode(_ ids: ArraySlice<Int>, skipSpecialTokens: Bool, atStart: Bool) -> String {
        let tokens = ids.compactMap { decoderInput(for: $0, skipSpecialTokens: skipSpecialTokens) }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens, atStart: atStart)
    }

    /// The token string `decode` hands to the decoder for `id`; nil for an unknown id or a
    /// special token being skipped.
    private func decoderInput(for id: Int, skipSpecialTokens: Bool) -> String? {
        if let added = addedById[id] {
            if skipSpecialTokens && added.special { return nil }
            return addedDecodeForm[id] ?? added.content
        }
        guard id >= 0, id < model.idToToken.count else { return nil }
        return model.idToToken[id]
    }

    /// Whether `decode` would hand `id` to the decoder (a known id not being skipped).
    func contributesToDecode(_ id: Int, skipSpecialTokens: Bool) -> Bool {
        decoderInput(for: id, skipSpecialTokens: skipSpecialTokens) != nil
    }

    /// The bytes of the run of byte-fallback tokens the text of `ids` ends in (nil when it
    /// does not end in one, or the decoder has no ByteFallback step). The decoder judges a
    /// run as a whole, so a later byte can still turn all of it into U+FFFDs.
    func trailingByteRun(_ ids: ArraySlice<Int>, skipSpecialTokens: Bool) -> [UInt8]? {
        guard decoderHasByteFallback else { return nil }
        var run: [UInt8] = []
        for id in ids.reversed() {
            guard let token = decoderInput(for: id, skipSpecialTokens: skipSpecialTokens) else { continue }
            guard let byte = TokenDecoder.byteValue(token) else { break }
            run.append(byte)
        }
        return run.isEmpty ? nil : run.reversed()
    }

    /// Whether the text of `ids` ends with the first bytes of a character whose other bytes
    /// may still come in later tokens (ByteLevel decoders, which decode all bytes lossily).
    func endsInIncompleteCharacter(_ ids: ArraySlice<Int>, skipSpecialTokens: Bool) -> Bool {
        guard decoderHasByteLevel else { return false }
        var tail: [UInt8] = []
        for id in ids.reversed() where tail.count < 4 {
            guard let token = decoderInput(for: id, skipSpecialTokens: skipSpecialTokens) else { continue }
            var bytes: [UInt8] = []
            ByteLevelMapping.appendBytes(of: token, to: &bytes)
            tail.insert(contentsOf: bytes, at: 0)
        }
        return !tail.isEmpty && UTF8Prefix.endsInIncompleteSequence(tail)
    }

    // MARK: - Vocabulary

    /// The UTF-8 bytes `id` adds to a text it is in the middle of (a constrained
    /// sampler walks these through its automaton); nil for special tokens and
    /// unknown ids. A byte-level or byte-fallback token may be part of a character.
    public func textBytes(of id: Int) -> [UInt8]? {
        guard !isSpecial(id), let token = decoderInput(for: id, skipSpecialTokens: true) else { return nil }
        if decoderHasByteLevel {
            var bytes: [UInt8] = []
            ByteLevelMapping.appendBytes(of: token, to: &bytes)
            return bytes
        }
        if decoderHasByteFallback, let byte = TokenDecoder.byteValue(token) { return [byte] }
        guard let decoder else { return Array(token.utf8) }
        return Array(decoder.decode([token], atStart: false).utf8)
    }

    /// The token string of `id` (added tokens included), or nil for an unknown id.
    public func token(forId id: Int) -> String? {
        guard id >= 0, id < tokensById.count else { return nil }
        return tokensById[id]
    }

    /// The id of an exact token string (added tokens first), or nil.
    public func id(forToken token: String) -> Int? {
        addedByContent[TokenKey(token)] ?? model.vocab[TokenKey(token)]
    }

    /// Whether `id` is an added token marked special (BOS, EOS, chat markers, …).
    public func isSpecial(_ id: Int) -> Bool {
        addedById[id]?.special ?? false
    }
}
