extension TemplateValue {
    /// The value as Python's `json.dumps(value, ensure_ascii=False)` writes it
    /// (what `tojson` writes, and what SGLang puts in a tool call's `arguments`).
    public var pythonJSONText: String {
        var dumper = JSONDumper()
        // Values built from JSON hold nothing the dumper refuses (no undefined, no callables).
        return (try? dumper.dump(RuntimeValue(self))) ?? "null"
    }
}
