/// What one `/start_profile` asked for, checked (SGLang's body fields).
public struct ProfileSettings: Sendable, Equatable {
    /// Where the trace files go.
    public var outputDirectory: String
    /// Names the files of this session (SGLang: the start time by default).
    public var profileID: String
    /// Put in front of every file name.
    public var prefix: String
    /// Recording begins at this engine step (counted since start-up), or at once.
    public var startStep: Int?
    /// Recording ends by itself after this many steps, or at `/stop_profile`.
    public var numSteps: Int?
    /// Also write one trace of every rank together (`merged-<id>.trace.json.gz`).
    public var mergeProfiles: Bool
    public var activities: [String]

    /// The activities an engine without a GPU can honour: "GPU" is accepted
    /// (bench_serving asks for it by default) and records nothing.
    public static let knownActivities: Set<String> = ["CPU", "GPU"]

    public init(outputDirectory: String, profileID: String, prefix: String = "", startStep: Int? = nil, numSteps: Int? = nil,
                mergeProfiles: Bool = false, activities: [String] = ["CPU", "GPU"]) {
        self.outputDirectory = outputDirectory
        self.profileID = profileID
        self.prefix = prefix
        self.startStep = startStep
        self.numSteps = numSteps
        self.mergeProfiles = mergeProfiles
        self.activities = activities
    }

    /// The trace file of `rank`, named as SGLang names its own.
    public func fileName(rank: Int) -> String {
        (prefix.isEmpty ? "" : prefix + "-") + "\(profileID)-TP-\(rank).trace.json.gz"
    }

    public var mergedFileName: String { (prefix.isEmpty ? "" : prefix + "-") + "merged-\(profileID).trace.json.gz" }
}

/// Why a profiling request was refused.
public struct ProfilerError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case invalid, conflict, io }
    public let kind: Kind
    public let description: String
    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
