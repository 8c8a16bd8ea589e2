import ByteExactJSON
import Foundation

/// What a client asked the output to be: SGLang's `regex` and `json_schema`
/// sampling parameters, OpenAI's `response_format`.
public enum GrammarSpec: Sendable, Hashable {
    /// The whole output matches this regular expression.
    case regex(String)
    /// The output is one JSON text valid for this schema (its compact JSON text).
    case jsonSchema(String)
    /// The output is one JSON object (`response_format: {"type": "json_object"}`).
    case jsonObject
    /// The output is exactly one of these texts (vLLM's `guided_choice`).
    case choice([String])

    /// A schema given as JSON; its text (keys in order) names it.
    public static func jsonSchema(_ schema: JSONValue) -> GrammarSpec { .jsonSchema(schema.compactText) }

    /// The language of the outputs.
    func node() throws(GrammarError) -> RegexNode {
        switch self {
        case .regex(let pattern):
            return try RegexParser.parse(pattern)
        case .jsonSchema(let text):
            let schema: JSONValue
            do { schema = try JSONParser.parse(Data(text.utf8)) } catch { throw GrammarError("json_schema is not valid JSON: \(error.description)") }
            return try JSONSchemaTranslator.translate(schema)
        case .jsonObject:
            return JSONSchemaTranslator.anyObject(depth: JSONSchemaTranslator.anyValueDepth, values: nil)
        case .choice(let texts):
            guard !texts.isEmpty else { throw GrammarError("guided_choice needs at least one choice") }
            return .choice(texts.map(RegexNode.literal))
        }
    }

    public var description: String {
        switch self {
        case .regex(let pattern): "regex \(pattern)"
        case .jsonSchema(let text): "json_schema \(text)"
        case .jsonObject: "json_object"
        case .choice(let texts): "choice \(texts)"
        }
    }
}
