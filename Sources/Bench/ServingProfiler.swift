import AsyncHTTPClient
import Foundation
import NIOCore

/// `bench serving --profile`: starts the profiler of each instance before
/// the measured run and stops it after, as sglang.bench_serving does (the
/// base URL, or with --pd-separated the prefill or the decode workers).
public struct ServingProfiler: Sendable {
    /// A worker to profile: its label ("Prefill-0") and base URL.
    public struct Target: Sendable {
        public let label: String
        public let url: String
        public init(label: String, url: String) {
            self.label = label
            self.url = url.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        }
    }

    public let targets: [Target]
    /// The `/start_profile` body: activities, and num_steps / output_dir when given.
    private nonisolated(unsafe) let body: [String: Any]

    public init(targets: [Target], activities: [String], numSteps: Int?, outputDirectory: String?) {
        self.targets = targets
        var body: [String: Any] = ["activities": activities]
        if let numSteps { body["num_steps"] = numSteps }
        if let outputDirectory { body["output_dir"] = outputDirectory }
        self.body = body
    }

    /// The workers of sglang.bench_serving's --profile-prefill-url / --profile-decode-url.
    public static func targets(prefill: [String], decode: [String]) -> [Target] {
        prefill.enumerated().map { Target(label: "Prefill-\($0.offset)", url: $0.element) }
            + decode.enumerated().map { Target(label: "Decode-\($0.offset)", url: $0.element) }
    }

    /// Starts every target's profiler; a target that does not start is logged, and the run goes on (as in SGLang).
    public func start(log: @Sendable (String) -> Void) async {
        await call("/start_profile", body: body, log: log) { label, url, _ in "Profiler started for \(label) worker at \(url)" }
    }

    /// Stops every target's profiler; the log names the trace files each wrote.
    public func stop(log: @Sendable (String) -> Void) async {
        await call("/stop_profile", body: [:], log: log) { label, url, answer in
            let traces = (answer?["traces"] as? [String]).map { ": " + $0.joined(separator: ", ") } ?? ""
            return "Profiler stopped for \(label) worker at \(url)\(traces)"
        }
    }

    private func call(_ path: String, body: [String: Any], log: @Sendable (String) -> Void,
                      success: (String, String, [String: Any]?) -> String) async {
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        for target in targets {
            do {
                var request = HTTPClientRequest(url: target.url + path)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
                // Stopping writes the trace: give it time.
                let response = try await http.execute(request, timeout: .seconds(300))
                let text = try await response.body.collect(upTo: 1 << 20)
                guard response.status == .ok else {
                    throw ServingBenchmarkError.server("\(response.status.code): \(String(buffer: text).prefix(300))")
                }
                log(success(target.label, target.url, try? JSONSerialization.jsonObject(with: Data(buffer: text)) as? [String: Any]))
            } catch {
                log("Failed to \(path.dropFirst().replacingOccurrences(of: "_profile", with: "")) profiler for \(target.label) worker at \(target.url): \(error)")
            }
        }
        try? await http.shutdown()
    }
}
