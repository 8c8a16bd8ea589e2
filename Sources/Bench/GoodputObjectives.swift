/// The goodput objectives of a run: one `GoodputSLO` for every class, and
/// optional overrides per workload class (`doc.ttft:4000`), because in a
/// mixed load a 1024-token document cannot be held to a chat's TTFT.
public struct GoodputObjectives: Sendable, Equatable {
    public var shared = GoodputSLO()
    public var perClass: [String: GoodputSLO] = [:]

    public init() {}

    /// Parses `--goodput` items: `KEY:MS` for all classes, `CLASS.KEY:MS` for one.
    public init(parsing items: [String]) throws {
        var sharedItems: [String] = []
        var classItems: [String: [String]] = [:]
        for item in items {
            let key = item.split(separator: ":", maxSplits: 1).first.map(String.init) ?? item
            if let dot = key.firstIndex(of: ".") {
                classItems[String(key[..<dot]), default: []].append(String(item[item.index(after: dot)...]))
            } else {
                sharedItems.append(item)
            }
        }
        shared = try GoodputSLO(parsing: sharedItems)
        for (name, items) in classItems {
            // A class override starts from the shared objectives and replaces the keys it names.
            var slo = shared
            let own = try GoodputSLO(parsing: items)
            if let v = own.ttftMs { slo.ttftMs = v }
            if let v = own.tpotMs { slo.tpotMs = v }
            if let v = own.e2eMs { slo.e2eMs = v }
            perClass[name] = slo
        }
    }

    public var isEmpty: Bool { shared.isEmpty && perClass.values.allSatisfy(\.isEmpty) }

    public func slo(for workloadClass: String) -> GoodputSLO { perClass[workloadClass] ?? shared }

    public func isMet(by outcome: ServingRequestOutcome) -> Bool { slo(for: outcome.workloadClass).isMet(by: outcome) }

    /// `ttft:1000 tpot:100; doc: ttft:5000 tpot:100`, for reports.
    public var description: String {
        var parts: [String] = []
        if !shared.isEmpty { parts.append(shared.description) }
        for name in perClass.keys.sorted() { parts.append("\(name): \(perClass[name]!.description)") }
        return parts.joined(separator: "; ")
    }
}
