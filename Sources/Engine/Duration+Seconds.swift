extension Duration {
    /// The duration in seconds, as Prometheus and SGLang's JSON report it.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
