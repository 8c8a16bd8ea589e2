import Testing
@testable import Router

/// Worker URLs and sglang-router's `--prefill URL [PORT|none]` grouping.
@Suite struct WorkerSpecTests {
    @Test func normalisesURLs() throws {
        let spec = try WorkerSpec(url: "http://127.0.0.1:30001/", role: .decode)
        #expect(spec.url == "http://127.0.0.1:30001")
        #expect(spec.host == "127.0.0.1")
        #expect(try WorkerSpec(url: "localhost:8000", role: .regular).url == "http://localhost:8000")
    }

    @Test func refusesBadURLs() {
        for bad in ["http://", "ftp://h:1", "http://h:1/path", "http://host"] {
            #expect(throws: RouterSetupError.self) { try WorkerSpec(url: bad, role: .regular) }
        }
        #expect(throws: RouterSetupError.self) { try WorkerSpec(url: "http://h:1", role: .decode, bootstrapPort: 8998) }
    }

    @Test func prefillArgumentsGroupPortsWithTheirURL() throws {
        let specs = try PrefillArguments.parse(["http://a:1", "9000", "http://b:2", "none", "http://c:3"])
        #expect(specs.map(\.url) == ["http://a:1", "http://b:2", "http://c:3"])
        #expect(specs.map(\.bootstrapPort) == [9000, nil, nil])
        #expect(specs[0].bootstrapHealthURL == "http://a:9000/health")
        #expect(specs[1].bootstrapHealthURL == "http://b:8998/health")
    }

    @Test func prefillPortWithoutURLIsRefused() {
        #expect(throws: RouterSetupError.self) { try PrefillArguments.parse(["9000"]) }
        #expect(throws: RouterSetupError.self) { try PrefillArguments.parse(["http://a:1", "9000", "9001"]) }
    }
}
