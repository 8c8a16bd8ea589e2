import ByteExactJSON
import Engine
import Foundation
import Grammar

/// The fields that constrain an output, read into one `GrammarSpec` and
/// compiled for the engine: SGLang's `regex` and `json_schema` (in
/// `sampling_params`; on OpenAI bodies at the top, as SGLang accepts them),
/// vLLM's `guided_json`, `guided_regex` and `guided_choice`, and OpenAI's
/// `response_format`. At most one per request, as in SGLang.
enum ConstraintFields {
    /// In SGLang's `sampling_params`.
    static let native: Set<String> = ["regex", "json_schema"]
    /// On OpenAI completions and chat bodies.
    static let openAI: Set<String> = native.union(["response_format", "guided_json", "guided_regex", "guided_choice"])

    /// The constraint `body` asks for among `fields`, with the field that asked.
    static func spec(_ body: JSONBody, fields: Set<String>) throws(APIError) -> (field: String, spec: GrammarSpec)? {
        var found: [(field: String, spec: GrammarSpec)] = []
        for field in fields.sorted() where body.has(field) {
            if let spec = try read(field, body) { found.append((field, spec)) }
        }
        guard found.count <= 1 else {
            throw .invalid("Give at most one constraint; got '\(body.path)\(found[0].field)' and '\(body.path)\(found[1].field)'.", param: body.path + found[1].field)
        }
        return found.first
    }

    /// Compiles `spec` for the engine's vocabulary; a constraint it cannot
    /// compile is a 400 naming `param`.
    static func compile(_ spec: (field: String, spec: GrammarSpec)?, engine: Engine) throws(APIError) -> Grammar? {
        guard let (param, spec) = spec else { return nil }
        do {
            return try engine.compile(spec)
        } catch {
            throw .invalid("'\(param)': \(error.message).", param: param)
        }
    }

    /// Compiles `spec` onto every input.
    static func apply(_ spec: (field: String, spec: GrammarSpec)?, engine: Engine, to inputs: inout [GenerateInput]) throws(APIError) {
        guard let grammar = try compile(spec, engine: engine) else { return }
        for i in inputs.indices { inputs[i].grammar = grammar }
    }

    private static func read(_ field: String, _ body: JSONBody) throws(APIError) -> GrammarSpec? {
        let param = body.path + field
        switch field {
        case "regex", "guided_regex":
            return try body.string(field).map(GrammarSpec.regex)
        case "json_schema", "guided_json":
            return .jsonSchema(try schema(body.ordered?[field], param: param))
        case "guided_choice":
            guard let choices = try body.array(field) as? [String] else { throw .invalid("'\(param)' must be a list of strings.", param: param) }
            return .choice(choices)
        default:
            return try responseFormat(try body.object(field)!)
        }
    }

    /// A schema sent as an object, or (SGLang's form) as JSON text.
    static func schema(_ value: JSONValue?, param: String) throws(APIError) -> JSONValue {
        switch value {
        case .string(let text)?:
            do { return try JSONParser.parse(Data(text.utf8)) } catch {
                throw .invalid("'\(param)' is not valid JSON: \(error.description).", param: param)
            }
        case let schema? where schema.objectMembers != nil || schema.boolValue != nil:
            return schema
        default:
            throw .invalid("'\(param)' must be a JSON schema (an object, or its JSON text).", param: param)
        }
    }

    /// OpenAI's `response_format`: `text`, `json_object`, or `json_schema` with `{name, schema, strict, description}`.
    private static func responseFormat(_ format: JSONBody) throws(APIError) -> GrammarSpec? {
        let param = format.path + "type"
        switch try format.string("type") {
        case "text"?:
            return nil
        case "json_object"?:
            try format.rejectUnknown(allowed: ["type"])
            return .jsonObject
        case "json_schema"?:
            try format.rejectUnknown(allowed: ["type", "json_schema"])
            guard let inner = try format.object("json_schema") else {
                throw .invalid("'\(format.path)json_schema' is required with type json_schema.", param: format.path + "json_schema")
            }
            try inner.rejectUnknown(allowed: ["name", "schema", "strict", "description"])
            // OpenAI's schema is optional: without one, any JSON value.
            guard let schema = inner.ordered?["schema"], !schema.isNull else { return .jsonSchema(.bool(true)) }
            return .jsonSchema(try Self.schema(schema, param: inner.path + "schema"))
        case "structural_tag"?:
            throw .invalid("'\(param)' structural_tag is not supported by this server (json_object and json_schema are).", param: param)
        case let other:
            throw .invalid("'\(param)' must be text, json_object or json_schema, got \(other.map { "'\($0)'" } ?? "none").", param: param)
        }
    }
}
