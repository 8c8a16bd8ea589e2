import Prometheus

/// Metrics made from a full name and a help text, labelled or not:
/// swift-prometheus's descriptor joins its parts with `_`, and names here
/// are already whole (`sglang:num_running_reqs`, `pdserve_router:retries_total`).
extension PrometheusCollectorRegistry {
    private func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    public func counter(_ name: String, help: String, labels: [(String, String)] = []) -> Counter {
        labels.isEmpty ? makeCounter(descriptor: descriptor(name, help)) : makeCounter(descriptor: descriptor(name, help), labels: labels)
    }

    public func gauge(_ name: String, help: String, labels: [(String, String)] = []) -> Gauge {
        labels.isEmpty ? makeGauge(descriptor: descriptor(name, help)) : makeGauge(descriptor: descriptor(name, help), labels: labels)
    }

    public func histogram(_ name: String, help: String, buckets: [Double], labels: [(String, String)] = []) -> ValueHistogram {
        labels.isEmpty
            ? makeValueHistogram(descriptor: descriptor(name, help), buckets: buckets)
            : makeValueHistogram(descriptor: descriptor(name, help), labels: labels, buckets: buckets)
    }
}
