import Foundation
import Tokenization

/// One reference case from tests/fixtures/tokenizers/<name>/cases.json, produced by the
/// Python `tokenizers` library (see tests/reference/make_fixtures.py): `decoded` is the
/// decode of `ids_without_special` keeping special tokens, `decoded_skip_special` the decode
/// of `ids_with_special` skipping them.
struct FixtureCase: Decodable {
    let text: String
    let ids_with_special: [Int]
    let ids_without_special: [Int]
    let decoded: String
    let decoded_skip_special: String

    /// The fixture tokenizers shipped in the repository.
    static let tokenizerNames = ["llama3", "qwen2", "gpt2", "llama2", "mistral"]

    /// tests/fixtures/tokenizers, located from this file so tests run from any directory.
    static let fixturesRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TokenizationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("tests/fixtures/tokenizers")

    static func directory(_ name: String) -> URL {
        fixturesRoot.appendingPathComponent(name)
    }

    static func load(_ name: String) throws -> [FixtureCase] {
        let data = try Data(contentsOf: directory(name).appendingPathComponent("cases.json"))
        return try JSONDecoder().decode([FixtureCase].self, from: data)
    }
}

/// Byte-exact string comparison: Swift's `==` treats canonically equivalent strings
/// ("é" vs "e\u{301}") as equal, which would hide normalization bugs.
func sameBytes(_ a: String, _ b: String) -> Bool {
    a.utf8.elementsEqual(b.utf8)
}

/// Tokenizers are loaded once per name and shared by the tests.
enum FixtureTokenizers {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: Tokenization.Tokenizer] = [:]

    static func get(_ name: String) throws -> Tokenization.Tokenizer {
        lock.lock()
        defer { lock.unlock() }
        if let t = cache[name] { return t }
        let t = try Tokenization.Tokenizer(directory: FixtureCase.directory(name))
        cache[name] = t
        return t
    }
}
