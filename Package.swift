// swift-tools-version: 6.0
import PackageDescription

// Hot loops are SIMD code: without a target CPU, `SIMD16<Float>` FMAs become
// libm calls. haswell (= x86-64-v3: AVX2, FMA, F16C) is portable across current x86 servers
// and as fast as AVX-512 for the memory-bound kernels.
let fastMath: [SwiftSetting] = [
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
    ],
    targets: [
        .target(
            name: "KernelsC",
            cSettings: [.unsafeFlags(["-O3", "-march=x86-64-v3"])],
            linkerSettings: [.linkedLibrary("openblas")]
        ),
        .target(name: "Kernels", dependencies: ["KernelsC"], swiftSettings: fastMath),
        .target(name: "Tokenization", swiftSettings: fastMath),
        .target(name: "Models", dependencies: ["Kernels", "Tokenization"], swiftSettings: fastMath),
        .target(name: "Engine", dependencies: ["Models", "Kernels", "Tokenization"], swiftSettings: fastMath),
        .executableTarget(
            name: "pdserve",
            dependencies: [
                "Engine", "Models", "Tokenization",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fastMath
        ),
        // Helpers shared by test targets: fixture discovery and engine drivers.
        .target(name: "EngineTesting", dependencies: ["Engine", "Models", "Tokenization"], path: "Tests/EngineTesting"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"], swiftSettings: fastMath),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Engine", "EngineTesting"], swiftSettings: fastMath),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Models", "EngineTesting"], swiftSettings: fastMath),
        .target(name: "ChatTemplates"),
        .testTarget(name: "ChatTemplatesTests", dependencies: ["ChatTemplates"]),
    ]
)
