/// `--prefill URL [BOOTSTRAP_PORT]` as sglang-router takes it, repeatable.
/// Argument parsers hand the values over flat (`URL 8998 URL none URL`): a
/// number or `none` belongs to the URL before it; a URL alone has no
/// bootstrap port (`bootstrap_port: null`, the prefill's default).
public enum PrefillArguments {
    public static func parse(_ values: [String]) throws(RouterSetupError) -> [WorkerSpec] {
        var pairs: [(url: String, port: Int?, portGiven: Bool)] = []
        for value in values {
            let isNone = value.lowercased() == "none"
            if let port = Int(value) ?? (isNone ? -1 : nil) {
                guard let last = pairs.last, !last.portGiven else {
                    throw RouterSetupError("--prefill \(value): a bootstrap port (or 'none') must follow a prefill URL")
                }
                pairs[pairs.count - 1] = (last.url, isNone ? nil : port, true)
            } else {
                pairs.append((value, nil, false))
            }
        }
        var specs: [WorkerSpec] = []
        for pair in pairs { specs.append(try WorkerSpec(url: pair.url, role: .prefill, bootstrapPort: pair.port)) }
        return specs
    }
}
