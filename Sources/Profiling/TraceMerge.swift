import Foundation

/// Lays several traces on one timeline: each keeps its own process track,
/// times are shifted by the difference of their `baseTimeNanoseconds` (so
/// traces from different hosts align by wall clock), and every PD room's
/// async track is made global, so a room's prefill spans and its decode
/// spans share one track keyed by `bootstrap_room`.
public enum TraceMerge {
    /// The category of spans keyed by a PD room (`bootstrap_room`).
    public static let roomCategory = "room"

    public static func merge(_ documents: [[String: Any]]) -> [String: Any] {
        let bases = documents.map { ($0["baseTimeNanoseconds"] as? NSNumber)?.int64Value ?? 0 }
        let earliest = bases.min() ?? 0
        var usedPIDs = Set<Int>()
        var merged: [[String: Any]] = []
        var sources: [Any] = []
        for (index, document) in documents.enumerated() {
            let events = document["traceEvents"] as? [[String: Any]] ?? []
            let shift = Double(bases[index] - earliest) / 1e3
            // Two traces from processes that happened to share a pid still get a track each.
            let firstPID = events.lazy.compactMap { ($0["pid"] as? NSNumber)?.intValue }.first ?? index
            var pid = firstPID
            while usedPIDs.contains(pid) { pid += 1 << 22 }
            usedPIDs.insert(pid)
            for var event in events {
                event["pid"] = pid
                if let ts = (event["ts"] as? NSNumber)?.doubleValue { event["ts"] = ts + shift }
                if event["cat"] as? String == roomCategory, let id = event["id"] {
                    event["id"] = nil
                    event["id2"] = ["global": id]
                }
                merged.append(event)
            }
            sources.append(document["otherData"] ?? [:])
        }
        return ["traceEvents": merged, "displayTimeUnit": "ms", "baseTimeNanoseconds": earliest, "otherData": ["merged_from": sources]]
    }
}
