import ArgumentParser
import Foundation
import Profiling

/// `pdserve trace`: tools for the traces `/start_profile` writes.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Work with the Chrome traces /start_profile writes.",
        subcommands: [TraceMergeCommand.self]
    )
}

/// Puts the traces of several instances (a prefill's and a decode's) on one
/// timeline, one PD request followed across both by its `bootstrap_room`.
struct TraceMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge traces of several instances into one, PD rooms keyed by bootstrap_room.",
        discussion: """
            Each input keeps its own process track. Times are aligned by each trace's \
            baseTimeNanoseconds (the Unix time of its monotonic clock's zero), so traces \
            from different hosts line up as well as their clocks agree. Every span of a PD \
            room (category "room": the prefill's and decode's room phases and requests) \
            gets a global id, so a room is one track across instances. Open the result in \
            https://ui.perfetto.dev or chrome://tracing.
            """
    )

    @Argument(help: "Trace files (.trace.json.gz or .json) to merge.")
    var traces: [String]

    @Option(name: .shortAndLong, help: "Where to write the merged trace (.trace.json.gz).")
    var output: String

    func validate() throws {
        guard traces.count >= 1 else { throw ValidationError("give at least one trace file") }
    }

    func run() throws {
        var documents: [[String: Any]] = []
        for path in traces {
            do {
                documents.append(try ChromeTraceFile.read(path))
            } catch {
                throw ValidationError("cannot read \(path): \(error)")
            }
        }
        let merged = TraceMerge.merge(documents)
        try ChromeTraceFile.write(merged, to: output)
        let events = (merged["traceEvents"] as? [Any])?.count ?? 0
        print("merged \(traces.count) traces (\(events) events) into \(output)")
    }
}
