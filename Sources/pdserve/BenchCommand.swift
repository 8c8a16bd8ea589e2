import ArgumentParser

/// `pdserve bench …`: the benchmark group. Each measurement is its own
/// subcommand so serving and transfer benchmarks can join it.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks.",
        subcommands: [BenchEngineCommand.self, BenchTransferCommand.self, BenchServingCommand.self, BenchSamplerCommand.self]
    )
}
