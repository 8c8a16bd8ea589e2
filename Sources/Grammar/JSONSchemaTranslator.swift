import Foundation
import ByteExactJSON

/// Turns a JSON Schema into the regular language of JSON texts that satisfy
/// it, written compactly (at most one space around `:` and `,`). Every text
/// in the language is valid for the schema; where a schema allows more than
/// a regular language can say, the language is the part of it generated
/// here: properties in the schema's order and only the declared ones, free-
/// form values nested at most `anyValueDepth` deep, recursive `$ref`s cut at
/// `maxRefDepth`, `pattern` matched as a whole string without quotes or
/// escapes. A keyword that restricts values in a way this cannot honour is
/// refused by name, never ignored.
struct JSONSchemaTranslator {
    private let root: JSONValue
    private var refDepth: [String: Int] = [:]
    private var refExpansions = 0
    private var nesting = 0

    /// Schemas nest at most this deep (each level is a few stack frames here and in the automaton's compiler).
    static let maxNesting = 64
    static let maxRefDepth = 3
    /// `$ref`s that reference each other can multiply (A uses B twice, B uses
    /// C twice, …): past this many expansions the schema is refused.
    static let maxRefExpansions = 2_000
    static let anyValueDepth = 5
    /// Bounds beyond this are out of what an integer in the output could reach anyway.
    static let boundLimit = 1_000_000_000_000_000

    /// Keywords that only describe: they change nothing.
    static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
        "writeOnly", "$defs", "definitions", "strict", "discriminator", "format_hint",
    ]
    static let supported: Set<String> = annotations.union([
        "type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "nullable",
        "properties", "required", "additionalProperties",
        "items", "minItems", "maxItems", "uniqueItems",
        "minLength", "maxLength", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    ])

    static func translate(_ schema: JSONValue) throws(GrammarError) -> RegexNode {
        var translator = JSONSchemaTranslator(root: schema)
        return try translator.node(schema, path: "#")
    }

    private init(root: JSONValue) { self.root = root }

    static let ws = RegexNode.optional(.literal(" "))
    static let comma = RegexNode.sequence([ws, .literal(","), ws])
    static let colon = RegexNode.sequence([ws, .literal(":"), ws])

    static let stringCharacter: RegexNode = .choice([
        .scalars(ScalarSet.any.subtracting(ScalarSet([0...0x1F, 0x22...0x22, 0x5C...0x5C]))),
        .sequence([.literal("\\"), .oneOf("\"\\/bfnrt")]),
        .sequence([.literal("\\u"), .repetition(.scalars(hexDigit), min: 4, max: 4)]),
    ])
    static let hexDigit = ScalarSet([0x30...0x39, 0x41...0x46, 0x61...0x66])
    static let string = RegexNode.sequence([.literal("\""), .star(stringCharacter), .literal("\"")])
    static let fraction = RegexNode.optional(.sequence([.literal("."), .repetition(IntegerRange.digit, min: 1, max: nil)]))
    static let exponent = RegexNode.optional(.sequence([.oneOf("eE"), .optional(.oneOf("+-")), .repetition(IntegerRange.digit, min: 1, max: nil)]))
    static let integer = IntegerRange.node(lower: nil, upper: nil)
    static let number = RegexNode.sequence([integer, fraction, exponent])
    static let boolean = RegexNode.choice([.literal("true"), .literal("false")])

    /// Any JSON value, containers nested at most `depth` deep.
    static func anyValue(depth: Int) -> RegexNode {
        .choice([string, number, boolean, .literal("null"), anyObject(depth: depth, values: nil), anyArray(depth: depth)])
    }

    static func anyArray(depth: Int) -> RegexNode {
        guard depth > 0 else { return .sequence([.literal("["), ws, .literal("]")]) }
        return .sequence([.literal("["), ws, .list(anyValue(depth: depth - 1), separator: comma, nonEmpty: false), ws, .literal("]")])
    }

    /// An object with any keys whose values are `values` (any value when nil).
    static func anyObject(depth: Int, values: RegexNode?) -> RegexNode {
        guard depth > 0 || values != nil else { return .sequence([.literal("{"), ws, .literal("}")]) }
        let member = RegexNode.sequence([string, colon, values ?? anyValue(depth: depth - 1)])
        return .sequence([.literal("{"), ws, .list(member, separator: comma, nonEmpty: false), ws, .literal("}")])
    }

    private func fail(_ path: String, _ message: String) -> GrammarError {
        GrammarError("json_schema at \(path): \(message)")
    }

    private mutating func node(_ schema: JSONValue, path: String) throws(GrammarError) -> RegexNode {
        nesting += 1
        defer { nesting -= 1 }
        guard nesting <= Self.maxNesting else { throw fail(path, "the schema nests deeper than \(Self.maxNesting) levels") }
        if let b = schema.boolValue { return b ? Self.anyValue(depth: Self.anyValueDepth) : .never }
        guard let (keys, _) = schema.objectMembers else { throw fail(path, "a schema must be an object or a boolean") }
        if let unknown = keys.first(where: { !Self.supported.contains($0) }) {
            throw fail(path, "the keyword '\(unknown)' is not supported (supported: \(Self.supported.subtracting(Self.annotations).sorted().joined(separator: ", ")))")
        }
        var result = try restricted(schema, keys: keys, path: path)
        if schema["nullable"]?.boolValue == true { result = .choice([result, .literal("null")]) }
        return result
    }

    private mutating func restricted(_ schema: JSONValue, keys: [String], path: String) throws(GrammarError) -> RegexNode {
        if let ref = schema["$ref"] {
            guard keys.allSatisfy({ $0 == "$ref" || Self.annotations.contains($0) }) else {
                throw fail(path, "'$ref' next to other constraints is not supported")
            }
            return try reference(ref, path: path)
        }
        if let values = schema["enum"] {
            guard let list = values.arrayValue, !list.isEmpty else { throw fail(path, "'enum' must be a non-empty array") }
            return .choice(list.map { .literal($0.compactText) })
        }
        if let value = schema["const"] { return .literal(value.compactText) }
        for key in ["anyOf", "oneOf"] {
            guard let list = schema[key] else { continue }
            guard let branches = list.arrayValue, !branches.isEmpty else { throw fail(path, "'\(key)' must be a non-empty array") }
            // oneOf as anyOf: exclusivity is not checked (schemas use it for disjoint shapes).
            var nodes: [RegexNode] = []
            for (i, branch) in branches.enumerated() { nodes.append(try node(merged(branch, into: schema, without: key), path: "\(path)/\(key)/\(i)")) }
            return .choice(nodes)
        }
        if let list = schema["allOf"] {
            guard let parts = list.arrayValue, parts.count == 1 else { throw fail(path, "'allOf' with more than one schema is not supported") }
            return try node(merged(parts[0], into: schema, without: "allOf"), path: "\(path)/allOf/0")
        }
        let types: [String]
        if let type = schema["type"] {
            if let one = type.stringValue { types = [one] }
            else if let many = type.arrayValue?.compactMap(\.stringValue), !many.isEmpty, many.count == type.arrayValue?.count { types = many }
            else { throw fail(path, "'type' must be a type name or a list of them") }
        } else if schema["properties"] != nil || schema["additionalProperties"] != nil || schema["required"] != nil {
            types = ["object"]
        } else if schema["items"] != nil || schema["minItems"] != nil || schema["maxItems"] != nil {
            types = ["array"]
        } else if schema["minLength"] != nil || schema["maxLength"] != nil || schema["pattern"] != nil || schema["format"] != nil {
            types = ["string"]
        } else if schema["minimum"] != nil || schema["maximum"] != nil || schema["exclusiveMinimum"] != nil || schema["exclusiveMaximum"] != nil {
            types = ["number"]
        } else {
            return Self.anyValue(depth: Self.anyValueDepth)
        }
        var nodes: [RegexNode] = []
        for type in types { nodes.append(try typed(type, schema, path: path)) }
        return nodes.count == 1 ? nodes[0] : .choice(nodes)
    }

    /// A branch of anyOf/oneOf/allOf with the parent's other keywords (a
    /// parent `type` or `properties` applies to each branch).
    private func merged(_ branch: JSONValue, into parent: JSONValue, without key: String) -> JSONValue {
        guard let (pk, pv) = parent.objectMembers, let (bk, bv) = branch.objectMembers else { return branch }
        var keys = bk, values = bv
        for (k, v) in zip(pk, pv) where k != key && !Self.annotations.contains(k) && !bk.contains(k) {
            keys.append(k)
            values.append(v)
        }
        return .object(keys: keys, values: values)
    }

    private mutating func reference(_ ref: JSONValue, path: String) throws(GrammarError) -> RegexNode {
        guard let pointer = ref.stringValue, pointer == "#" || pointer.hasPrefix("#/") else {
            throw fail(path, "only local '$ref's ('#' or '#/…') are supported")
        }
        var target = root
        for raw in pointer.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) where pointer != "#" {
            let token = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let index = Int(token), let element = target.arrayValue?[safe: index] {
                target = element
            } else if let member = target[token] {
                target = member
            } else {
                throw fail(path, "'$ref' \(pointer) points at nothing")
            }
        }
        let depth = refDepth[pointer, default: 0]
        guard depth < Self.maxRefDepth else { return .never }
        refExpansions += 1
        guard refExpansions <= Self.maxRefExpansions else {
            throw fail(path, "its '$ref's expand to more than \(Self.maxRefExpansions) copies")
        }
        refDepth[pointer] = depth + 1
        defer { refDepth[pointer] = depth }
        return try node(target, path: pointer)
    }

    private mutating func typed(_ type: String, _ schema: JSONValue, path: String) throws(GrammarError) -> RegexNode {
        switch type {
        case "string": return try stringNode(schema, path: path)
        case "integer": return try integerNode(schema, path: path)
        case "number":
            if ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].contains(where: { schema[$0] != nil }) {
                throw fail(path, "bounds on 'number' are not supported (they are on 'integer')")
            }
            return Self.number
        case "boolean": return Self.boolean
        case "null": return .literal("null")
        case "object": return try objectNode(schema, path: path)
        case "array": return try arrayNode(schema, path: path)
        default: throw fail(path, "unknown type '\(type)'")
        }
    }

    private func count(_ schema: JSONValue, _ key: String, path: String) throws(GrammarError) -> Int? {
        guard let value = schema[key] else { return nil }
        guard let n = value.intValue, n >= 0 else { throw fail(path, "'\(key)' must be a non-negative integer") }
        return n
    }

    private func stringNode(_ schema: JSONValue, path: String) throws(GrammarError) -> RegexNode {
        if let pattern = schema["pattern"] {
            guard let text = pattern.stringValue else { throw fail(path, "'pattern' must be a string") }
            guard schema["format"] == nil, schema["minLength"] == nil, schema["maxLength"] == nil else {
                throw fail(path, "'pattern' together with 'format', 'minLength' or 'maxLength' is not supported")
            }
            let node: RegexNode
            do { node = try RegexParser.parse(text) } catch { throw fail(path, "'pattern': \(error.message)") }
            return .sequence([.literal("\""), Self.plain(node), .literal("\"")])
        }
        if let format = schema["format"] {
            guard let name = format.stringValue, let node = Self.formats[name] else {
                throw fail(path, "the string format '\(format.stringValue ?? "?")' is not supported (supported: \(Self.formats.keys.sorted().joined(separator: ", ")))")
            }
            return .sequence([.literal("\""), node, .literal("\"")])
        }
        let low = try count(schema, "minLength", path: path) ?? 0
        let high = try count(schema, "maxLength", path: path)
        if let high, high < low { throw fail(path, "'maxLength' is below 'minLength'") }
        guard low <= RegexParser.maxCount, (high ?? 0) <= RegexParser.maxCount else {
            throw fail(path, "string lengths above \(RegexParser.maxCount) are not supported")
        }
        return .sequence([.literal("\""), .repetition(Self.stringCharacter, min: low, max: high), .literal("\"")])
    }

    /// `node` restricted to characters a JSON string holds unescaped, so a
    /// match is both valid JSON and, decoded, a match of the pattern.
    static func plain(_ node: RegexNode) -> RegexNode {
        let unsafe = ScalarSet([0...0x1F, 0x22...0x22, 0x5C...0x5C])
        switch node {
        case .empty, .never: return node
        case .scalars(let set): return .scalars(set.subtracting(unsafe))
        case .sequence(let items): return .sequence(items.map(plain))
        case .choice(let items): return .choice(items.map(plain))
        case let .repetition(body, min, max): return .repetition(plain(body), min: min, max: max)
        case let .list(item, separator, nonEmpty): return .list(plain(item), separator: plain(separator), nonEmpty: nonEmpty)
        }
    }

    static let formats: [String: RegexNode] = {
        func parse(_ pattern: String) -> RegexNode { try! RegexParser.parse(pattern) }
        let date = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
        let time = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
        let octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
        return [
            "date": parse(date), "time": parse(time), "date-time": parse(date + "T" + time),
            "uuid": parse("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
            "ipv4": parse("(\(octet)\\.){3}\(octet)"),
        ]
    }()

    private func integerNode(_ schema: JSONValue, path: String) throws(GrammarError) -> RegexNode {
        func bound(_ key: String) throws(GrammarError) -> Double? {
            guard let value = schema[key] else { return nil }
            // Draft 4 wrote exclusive bounds as booleans next to minimum/maximum.
            if value.boolValue != nil { return nil }
            guard let d = value.doubleValue, d.isFinite else { throw fail(path, "'\(key)' must be a number") }
            return max(-Double(Self.boundLimit), min(Double(Self.boundLimit), d))
        }
        let draft4ExclusiveMin = schema["exclusiveMinimum"]?.boolValue == true
        let draft4ExclusiveMax = schema["exclusiveMaximum"]?.boolValue == true
        var lower: Int?, upper: Int?
        if let m = try bound("minimum") { lower = Int(m.rounded(.up)) + (draft4ExclusiveMin && m == m.rounded() ? 1 : 0) }
        if let m = try bound("exclusiveMinimum") { lower = max(lower ?? .min, Int(m.rounded(.down)) + 1) }
        if let m = try bound("maximum") { upper = Int(m.rounded(.down)) - (draft4ExclusiveMax && m == m.rounded() ? 1 : 0) }
        if let m = try bound("exclusiveMaximum") { upper = min(upper ?? .max, Int(m.rounded(.up)) - 1) }
        if let lower, let upper, lower > upper { throw fail(path, "no integer lies between the bounds") }
        return IntegerRange.node(lower: lower, upper: upper)
    }

    private mutating func arrayNode(_ schema: JSONValue, path: String) throws(GrammarError) -> RegexNode {
        if schema["uniqueItems"]?.boolValue == true { throw fail(path, "'uniqueItems' is not supported") }
        let item: RegexNode
        if let items = schema["items"] {
            guard items.objectMembers != nil || items.boolValue != nil else { throw fail(path, "'items' must be one schema (tuples are not supported)") }
            item = try node(items, path: path + "/items")
        } else {
            item = Self.anyValue(depth: Self.anyValueDepth - 1)
        }
        let low = try count(schema, "minItems", path: path) ?? 0
        let high = try count(schema, "maxItems", path: path)
        if let high, high < low { throw fail(path, "'maxItems' is below 'minItems'") }
        guard low <= 1000, (high ?? 0) <= 1000 else { throw fail(path, "item counts above 1000 are not supported") }
        let open = RegexNode.sequence([.literal("["), Self.ws]), close = RegexNode.sequence([Self.ws, .literal("]")])
        if high == nil, low <= 1 {
            return .sequence([open, .list(item, separator: Self.comma, nonEmpty: low == 1), close])
        }
        if high == 0 { return .sequence([open, close]) }
        // item, then low-1 … high-1 more, each after a comma.
        let more = RegexNode.repetition(.sequence([Self.comma, item]), min: max(0, low - 1), max: high.map { $0 - 1 })
        let items = RegexNode.sequence([item, more])
        return .sequence([open, low == 0 ? .optional(items) : items, close])
    }

    private mutating func objectNode(_ schema: JSONValue, path: String) throws(GrammarError) -> RegexNode {
        var names: [String] = [], schemas: [JSONValue] = []
        if let properties = schema["properties"] {
            guard let (keys, values) = properties.objectMembers else { throw fail(path, "'properties' must be an object") }
            (names, schemas) = (keys, values)
        }
        var required = Set<String>()
        if let list = schema["required"] {
            guard let items = list.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else { throw fail(path, "'required' must be a list of names") }
            for name in items.compactMap(\.stringValue) {
                required.insert(name)
                if !names.contains(name) { names.append(name); schemas.append(.bool(true)) }
            }
        }
        let open = RegexNode.sequence([.literal("{"), Self.ws]), close = RegexNode.sequence([Self.ws, .literal("}")])
        if names.isEmpty {
            switch schema["additionalProperties"] {
            case .some(.bool(false)): return .sequence([open, close])
            case nil, .some(.bool(true)): return Self.anyObject(depth: Self.anyValueDepth - 1, values: nil)
            case .some(let values): return Self.anyObject(depth: 0, values: try node(values, path: path + "/additionalProperties"))
            }
        }
        var members: [(node: RegexNode, required: Bool)] = []
        for (name, value) in zip(names, schemas) {
            let member = RegexNode.sequence([.literal(JSONValue.quoted(name)), Self.colon, try node(value, path: "\(path)/properties/\(name)")])
            members.append((member, required.contains(name)))
        }
        return .sequence([open, Self.members(members), close])
    }

    /// Members in order, the optional ones optional, commas only between those present.
    static func members(_ members: [(node: RegexNode, required: Bool)]) -> RegexNode {
        if let first = members.firstIndex(where: \.required) {
            var parts: [RegexNode] = members[..<first].map { .optional(.sequence([$0.node, comma])) }
            parts.append(members[first].node)
            for member in members[(first + 1)...] {
                let item = RegexNode.sequence([comma, member.node])
                parts.append(member.required ? item : .optional(item))
            }
            return .sequence(parts)
        }
        // All optional: choose the first one present; the rest follow it optionally.
        var branches: [RegexNode] = [.empty]
        for start in members.indices {
            branches.append(.sequence([members[start].node] + members[(start + 1)...].map { .optional(.sequence([comma, $0.node])) }))
        }
        return .choice(branches)
    }
}

private extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
