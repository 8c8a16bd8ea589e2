import ArgumentParser

@main
struct PDServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pdserve",
        abstract: "An LLM serving engine with prefill/decode disaggregation.",
        subcommands: [GenerateCommand.self, BenchCommand.self]
    )
}
