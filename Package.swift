// swift-tools-version: 6.1
import PackageDescription

// Hot loops are SIMD code: without a target CPU, `SIMD16<Float>` FMAs become
// libm calls. haswell (= x86-64-v3: AVX2, FMA, F16C) is portable across current x86 servers
// and as fast as AVX-512 for the memory-bound kernels.
let targetCPU: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
// Only the kernels' loops drop bounds, overflow and precondition checks in
// release builds; everything that parses what peers and clients send (Server,
// Disaggregation, Engine, Tokenization, ...) keeps them. Serving speed is the
// same either way (docs/benchmarks/safe-build.md).
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release)),
    .unsafeFlags(["-target-cpu", "haswell"], .when(configuration: .debug)),
]

let package = Package(
    name: "PDServe",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pdserve", targets: ["pdserve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // HTTPRequestPart/HTTPResponsePart for the connection-limit handler (Hummingbird's own pipeline types).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.0"),
        // HMAC-SHA256 for the PD channels' shared key (--disaggregation-auth-key).
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // The Prometheus registry and text format behind /metrics.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Distributed traces (--otlp-traces-endpoint): OTLP/HTTP only, so gRPC's packages are not built.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.2"),
        // gzip for the profiler's Chrome traces (zlib through NIO byte buffers).
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "KernelsC",
            cSettings: [.unsafeFlags(["-O3", "-march=x86-64-v3"])],
            linkerSettings: [.linkedLibrary("openblas")]
        ),
        .target(name: "Kernels", dependencies: ["KernelsC"], swiftSettings: kernelSettings),
        // NIXL's C API, loaded with dlopen at run time (the wheel ships no header).
        .target(name: "NIXLShim", cSettings: [.unsafeFlags(["-O2"])]),
        // Mooncake's transfer engine through the C++ methods its wheel exports, loaded with dlopen at run time.
        .target(name: "MooncakeShim", cxxSettings: [.unsafeFlags(["-O2", "-std=c++17"])]),
        // Byte-exact JSON: keys and strings exactly as sent (tokenizer files, request bodies).
        .target(name: "ByteExactJSON"),
        .target(name: "Tokenization", dependencies: ["ByteExactJSON"], swiftSettings: targetCPU),
        .target(name: "ChatTemplates", dependencies: ["ByteExactJSON"]),
        // /start_profile's recorder and Chrome trace files.
        .target(name: "Profiling", dependencies: [
            .product(name: "CompressNIO", package: "compress-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Models", dependencies: ["Kernels", "Tokenization", "ByteExactJSON", "Profiling"], swiftSettings: targetCPU),
        // Constrained decoding: regex / JSON schema → byte automaton → token masks.
        .target(name: "Grammar", dependencies: ["ByteExactJSON"], swiftSettings: targetCPU),
        .target(name: "Engine", dependencies: ["Models", "Kernels", "Tokenization", "Profiling", "Grammar"], swiftSettings: targetCPU),
        .target(
            name: "Server",
            dependencies: [
                "Engine", "Models", "Tokenization", "ChatTemplates", "ByteExactJSON", "Profiling", "Grammar",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: targetCPU
        ),
        .target(
            name: "Disaggregation",
            dependencies: [
                "Engine", "Kernels", "Models", "NIXLShim", "MooncakeShim", "ByteExactJSON", "Profiling",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: targetCPU
        ),
        .target(
            name: "Bench",
            dependencies: [
                "Disaggregation", "Kernels", "Tokenization",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: targetCPU
        ),
        .target(
            name: "Router",
            dependencies: [
                "Server", "ByteExactJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "pdserve",
            dependencies: [
                "Engine", "Models", "Tokenization", "Server", "Disaggregation", "Bench", "Router", "ByteExactJSON", "ChatTemplates", "Profiling",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: targetCPU
        ),
        // Helpers shared by test targets: fixture discovery and engine drivers.
        .target(name: "EngineTesting", dependencies: ["Engine", "Models", "Kernels", "Profiling", "Tokenization"], path: "Tests/EngineTesting"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"], swiftSettings: targetCPU),
        .testTarget(name: "ByteExactJSONTests", dependencies: ["ByteExactJSON"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "ByteExactJSON"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Engine", "EngineTesting"], swiftSettings: targetCPU),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Models", "EngineTesting", "Grammar"], swiftSettings: targetCPU),
        .testTarget(name: "GrammarTests", dependencies: ["Grammar", "ByteExactJSON"]),
        .testTarget(name: "ChatTemplatesTests", dependencies: ["ChatTemplates"]),
        .testTarget(name: "DisaggregationTests", dependencies: [
            "Disaggregation", "Engine", "EngineTesting", "Models", "Profiling", "Tokenization",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: targetCPU),
        .testTarget(name: "BenchTests", dependencies: ["Bench"]),
        .testTarget(name: "RouterTests", dependencies: ["Router", .product(name: "Hummingbird", package: "hummingbird")]),
        .testTarget(name: "ProfilingTests", dependencies: ["Profiling"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "ByteExactJSON", "ChatTemplates"]),
    ]
)
