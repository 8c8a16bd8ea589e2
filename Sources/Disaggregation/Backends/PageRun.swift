/// `count` consecutive pages starting at `source` on one side and
/// `destination` on the other: one contiguous copy per layer for K and one for V.
public struct PageRun: Sendable, Equatable {
    public var source: Int32
    public var destination: Int32
    public var count: Int

    public init(source: Int32, destination: Int32, count: Int) {
        self.source = source
        self.destination = destination
        self.count = count
    }

    /// Throws unless every run's destination lies inside a pool of `pageCount` pages (`pool` names it in the message).
    public static func checkDestinations(_ runs: [PageRun], within pageCount: Int, pool: String) throws {
        for run in runs where run.destination < 0 || Int(run.destination) + run.count > pageCount {
            throw TransferError("destination pages \(run.destination)..<\(Int(run.destination) + run.count) lie outside \(pool) of \(pageCount) pages")
        }
    }

    /// Pairs `sources[i]` with `destinations[i]` and merges neighbours that
    /// are consecutive on both sides.
    public static func merge(sources: [Int32], destinations: [Int32]) -> [PageRun] {
        precondition(sources.count == destinations.count, "page lists differ in length")
        var runs: [PageRun] = []
        for (s, d) in zip(sources, destinations) {
            if let last = runs.last, last.source + Int32(last.count) == s, last.destination + Int32(last.count) == d {
                runs[runs.count - 1].count += 1
            } else {
                runs.append(PageRun(source: s, destination: d, count: 1))
            }
        }
        return runs
    }
}
