import ArgumentParser

@main
struct PDServe: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pdserve", abstract: "LLM serving engine with prefill/decode disaggregation.")
}
