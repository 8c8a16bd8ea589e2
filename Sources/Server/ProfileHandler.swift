import Engine
import Foundation
import Hummingbird
import Profiling

/// SGLang's `/start_profile` and `/stop_profile`: a Chrome trace of the
/// engine's steps (batch, layers, kernels, sampling), its requests and, on
/// PD instances, the rooms' phases and KV transfers.
struct ProfileHandler {
    let profiler: Profiler
    let configuration: ServerConfiguration
    /// Where traces go without `output_dir` (PDSERVE_PROFILER_DIR, then SGLANG_TORCH_PROFILER_DIR, then /tmp).
    let defaultDirectory: String

    static let fields: Set<String> = [
        "output_dir", "start_step", "num_steps", "activities", "with_stack", "record_shapes", "profile_by_stage",
        "profile_stages", "merge_profiles", "profile_prefix", "profile_id",
    ]

    init(profiler: Profiler, configuration: ServerConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.profiler = profiler
        self.configuration = configuration
        defaultDirectory = environment["PDSERVE_PROFILER_DIR"] ?? environment["SGLANG_TORCH_PROFILER_DIR"] ?? "/tmp"
    }

    func start(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let settings = try Self.settings(try await body(of: request), defaultDirectory: defaultDirectory)
        do {
            try profiler.start(settings)
        } catch {
            throw Self.apiError(error)
        }
        var answer: [String: Any] = ["message": "Start profiling.", "profile_id": settings.profileID, "output_dir": settings.outputDirectory,
                                     "trace": (settings.outputDirectory as NSString).appendingPathComponent(settings.fileName(rank: 0))]
        if settings.activities.contains("GPU") { answer["note"] = "this engine runs on the CPU: 'GPU' records nothing" }
        return JSON.response(answer)
    }

    func stop(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let profiler = self.profiler
        // Compressing the trace takes a while: off the event loop.
        let result = await Task.detached { () -> Result<[String], ProfilerError> in
            do throws(ProfilerError) { return .success(try profiler.stop()) } catch { return .failure(error) }
        }.value
        switch result {
        case .success(let paths):
            return JSON.response(["message": "Stop profiling.", "traces": paths])
        case .failure(let error):
            throw Self.apiError(error)
        }
    }

    /// The body, if any: bench_serving always sends one, curl users often none.
    private func body(of request: Request) async throws -> JSONBody {
        let buffer = try await configuration.httpLimits.body(of: request, limit: 1 << 16)
        guard buffer.readableBytes > 0 else { return JSONBody(fields: [:]) }
        return try JSONBody(data: Data(buffer.readableBytesView))
    }

    static func settings(_ body: JSONBody, defaultDirectory: String, now: Date = Date()) throws(APIError) -> ProfileSettings {
        try body.rejectUnknown(allowed: fields)
        var activities = ["CPU", "GPU"]
        if let listed = try body.array("activities") {
            guard let names = listed as? [String] else { throw .invalid("'activities' must be an array of strings.", param: "activities") }
            activities = names
        }
        if let unknown = activities.first(where: { !ProfileSettings.knownActivities.contains($0) }) {
            throw .invalid("activity '\(unknown)' cannot be recorded here: this engine records CPU spans ('CPU'; 'GPU' is accepted and records nothing).",
                           param: "activities")
        }
        if try body.bool("profile_by_stage") == true {
            throw .invalid("'profile_by_stage' is not supported: one trace holds every step, each named 'step (extend)' or 'step (decode)'.",
                           param: "profile_by_stage")
        }
        if let stages = try body.strings("profile_stages"), !stages.isEmpty {
            throw .invalid("'profile_stages' is not supported (it goes with profile_by_stage).", param: "profile_stages")
        }
        if try body.bool("with_stack") == true {
            throw .invalid("'with_stack' cannot be honoured: the engine is compiled code and its spans carry no call stacks.", param: "with_stack")
        }
        // Shapes (tokens per step and per kernel) are always in the spans' arguments.
        _ = try body.bool("record_shapes")
        let startStep = try body.int("start_step", in: RequestBounds.steps)
        let numSteps = try body.int("num_steps", in: RequestBounds.steps)
        if let numSteps, numSteps < 1 { throw .invalid("'num_steps' must be 1 or more.", param: "num_steps") }
        let id = try body.string("profile_id") ?? String(now.timeIntervalSince1970)
        let prefix = try body.string("profile_prefix") ?? ""
        for (name, value) in [("profile_id", id), ("profile_prefix", prefix)] where value.contains("/") || value.hasPrefix(".") {
            throw .invalid("'\(name)' names a file: it cannot contain '/' or start with '.'.", param: name)
        }
        let directory = (try body.string("output_dir")).map { ($0 as NSString).expandingTildeInPath } ?? defaultDirectory
        return ProfileSettings(outputDirectory: directory, profileID: id, prefix: prefix, startStep: startStep, numSteps: numSteps,
                               mergeProfiles: try body.bool("merge_profiles") ?? false, activities: activities)
    }

    static func apiError(_ error: ProfilerError) -> APIError {
        switch error.kind {
        case .invalid: .invalid(error.description)
        case .conflict: APIError(.conflict, type: "conflict", error.description)
        case .io: .internal(error.description)
        }
    }
}
