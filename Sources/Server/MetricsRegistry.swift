import Foundation

/// Counters, gauges and histograms rendered in the Prometheus text format.
/// Thread-safe; label values are given at update time.
public final class MetricsRegistry: @unchecked Sendable {
    private enum Kind: String { case counter, gauge, histogram }

    private struct Family {
        let name: String
        let help: String
        let kind: Kind
        let buckets: [Double]
        var values: [[String]: Double] = [:]
        var histograms: [[String]: (counts: [UInt64], sum: Double, count: UInt64)] = [:]
        let labelNames: [String]
    }

    private let lock = NSLock()
    private var families: [String: Family] = [:]
    private var order: [String] = []

    public init() {}

    private func register(_ name: String, _ help: String, _ kind: Kind, labels: [String], buckets: [Double] = []) {
        lock.lock()
        defer { lock.unlock() }
        guard families[name] == nil else { return }
        families[name] = Family(name: name, help: help, kind: kind, buckets: buckets.sorted(), labelNames: labels)
        order.append(name)
    }

    public func counter(_ name: String, help: String, labels: [String] = []) { register(name, help, .counter, labels: labels) }
    public func gauge(_ name: String, help: String, labels: [String] = []) { register(name, help, .gauge, labels: labels) }
    public func histogram(_ name: String, help: String, buckets: [Double], labels: [String] = []) {
        register(name, help, .histogram, labels: labels, buckets: buckets)
    }

    public func increment(_ name: String, by amount: Double = 1, labels: [String] = []) {
        lock.lock()
        defer { lock.unlock() }
        families[name]?.values[labels, default: 0] += amount
    }

    public func set(_ name: String, _ value: Double, labels: [String] = []) {
        lock.lock()
        defer { lock.unlock() }
        families[name]?.values[labels] = value
    }

    /// Drops every labelled value of a family (gauges of things that went away, like a removed worker).
    public func reset(_ name: String) {
        lock.lock()
        defer { lock.unlock() }
        families[name]?.values = [:]
        families[name]?.histograms = [:]
    }

    public func observe(_ name: String, _ value: Double, labels: [String] = []) {
        lock.lock()
        defer { lock.unlock() }
        guard let buckets = families[name]?.buckets else { return }
        // Taken out and put back in place: a copy of the family would copy every series on every observation.
        var h = families[name]!.histograms.removeValue(forKey: labels) ?? (Array(repeating: 0, count: buckets.count), 0, 0)
        for (i, bound) in buckets.enumerated() where value <= bound { h.counts[i] += 1 }
        h.sum += value
        h.count += 1
        families[name]!.histograms[labels] = h
    }

    /// The exposition text for `GET /metrics`.
    public func render() -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = ""
        for name in order {
            guard let f = families[name] else { continue }
            out += "# HELP \(name) \(f.help)\n# TYPE \(name) \(f.kind.rawValue)\n"
            func labelText(_ values: [String], extra: String? = nil) -> String {
                var parts = zip(f.labelNames, values).map { "\($0)=\"\(escape($1))\"" }
                if let extra { parts.append(extra) }
                return parts.isEmpty ? "" : "{" + parts.joined(separator: ",") + "}"
            }
            if f.kind == .histogram {
                for (labels, h) in f.histograms.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                    for (i, bound) in f.buckets.enumerated() {
                        out += "\(name)_bucket\(labelText(labels, extra: "le=\"\(format(bound))\"")) \(h.counts[i])\n"
                    }
                    out += "\(name)_bucket\(labelText(labels, extra: "le=\"+Inf\"")) \(h.count)\n"
                    out += "\(name)_sum\(labelText(labels)) \(format(h.sum))\n"
                    out += "\(name)_count\(labelText(labels)) \(h.count)\n"
                }
            } else {
                let values = f.values.isEmpty && f.labelNames.isEmpty ? [[]: 0] : f.values
                for (labels, v) in values.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                    out += "\(name)\(labelText(labels)) \(format(v))\n"
                }
            }
        }
        return out
    }

    private func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
