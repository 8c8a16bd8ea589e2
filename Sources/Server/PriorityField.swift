import Engine

/// SGLang's request `priority` (top level, on /generate and the OpenAI
/// routes alike): every input of the request gets it. The engine refuses it
/// unless the server runs with `--enable-priority-scheduling`.
enum PriorityField {
    static let name = "priority"

    static func apply(_ body: JSONBody, to inputs: inout [GenerateInput]) throws(APIError) {
        guard let priority = try body.int(name, in: RequestBounds.priority) else { return }
        for i in inputs.indices { inputs[i].priority = priority }
    }
}
