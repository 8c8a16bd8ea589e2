import ByteExactJSON
import Foundation
@testable import Tokenization

/// Builds small hand-made tokenizers for unit tests. Expected values in the tests were
/// obtained by loading the same JSON into the Python `tokenizers` library (0.23).
enum TestTokenizers {
    static func bpeModel(vocab: [String], merges: [Any] = [], unk: String? = nil, fuseUnk: Bool = false,
                         byteFallback: Bool = false, ignoreMerges: Bool = false,
                         continuingSubwordPrefix: String? = nil, endOfWordSuffix: String? = nil) -> [String: Any] {
        var ids: [String: Int] = [:]
        for (i, t) in vocab.enumerated() { ids[t] = i }
        return [
            "type": "BPE", "dropout": NSNull(), "unk_token": unk ?? NSNull(),
            "continuing_subword_prefix": continuingSubwordPrefix ?? NSNull(),
            "end_of_word_suffix": endOfWordSuffix ?? NSNull(),
            "fuse_unk": fuseUnk, "byte_fallback": byteFallback, "ignore_merges": ignoreMerges,
            "vocab": ids, "merges": merges,
        ]
    }

    static func json(model: Any, normalizer: Any? = nil, preTokenizer: Any? = nil, postProcessor: Any? = nil,
                     decoder: Any? = nil, addedTokens: [[String: Any]] = []) -> Data {
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": addedTokens,
            "normalizer": normalizer ?? NSNull(), "pre_tokenizer": preTokenizer ?? NSNull(),
            "post_processor": postProcessor ?? NSNull(), "decoder": decoder ?? NSNull(), "model": model,
        ]
        return try! JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }

    static func make(model: Any, normalizer: Any? = nil, preTokenizer: Any? = nil, postProcessor: Any? = nil,
                     decoder: Any? = nil, addedTokens: [[String: Any]] = [], config: String? = nil) throws -> Tokenizer {
        try Tokenizer(tokenizerJSON: json(model: model, normalizer: normalizer, preTokenizer: preTokenizer,
                                          postProcessor: postProcessor, decoder: decoder, addedTokens: addedTokens),
                      tokenizerConfigJSON: config.map { Data($0.utf8) })
    }

    static func addedToken(_ id: Int, _ content: String, special: Bool = true, lstrip: Bool = false, rstrip: Bool = false,
                           singleWord: Bool = false, normalized: Bool = false) -> [String: Any] {
        ["id": id, "content": content, "special": special, "lstrip": lstrip, "rstrip": rstrip,
         "single_word": singleWord, "normalized": normalized]
    }

    static var whitespaceSplit: [String: Any] { ["type": "WhitespaceSplit"] }

    /// Parses a JSON snippet into the internal representation.
    static func parse(_ text: String) -> JSONValue {
        try! JSONParser.parse(Data(text.utf8))
    }

    /// Runs one pre-tokenizer on `text` and returns the pieces.
    static func preTokenize(_ config: String, _ text: String) throws -> [String] {
        let p = try PreTokenizer.make(json: parse(config), file: "test")!
        return p.preTokenize([PreToken(text: text, isAtInputStart: true)]).map(\.text)
    }

    static func normalize(_ config: String, _ text: String) throws -> String {
        try Normalizer.make(json: parse(config), file: "test")!.normalize(text)
    }

    static func decode(_ config: String, _ tokens: [String]) throws -> String {
        try TokenDecoder.make(json: parse(config), file: "test")!.decode(tokens)
    }
}
