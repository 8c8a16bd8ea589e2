import ArgumentParser

@main
struct PDServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pdserve",
        abstract: "An LLM serving engine with prefill/decode disaggregation.",
        subcommands: [UpCommand.self, ServeCommand.self, RouterCommand.self, GenerateCommand.self, TokenizeCommand.self, BenchCommand.self, TraceCommand.self]
    )
}
