import ByteExactJSON
/// The `post_processor` stage: adds special tokens (BOS, CLS/SEP, …) around an encoded
/// sequence. Only applied when `encode(addSpecialTokens: true)`.
indirect enum PostProcessor {
    /// One item of a `TemplateProcessing` single-sequence template.
    enum TemplatePiece {
        case sequence
        case special([Int])
    }

    case template([TemplatePiece])
    case wrap(prefix: [Int], suffix: [Int])
    /// ByteLevel only adjusts offsets, which this tokenizer does not report.
    case identity
    case sequence([PostProcessor])

    static func make(json: JSONValue?, file: String) throws(TokenizerError) -> PostProcessor? {
        guard let json, !json.isNull else { return nil }
        guard let type = json["type"]?.stringValue else {
            throw TokenizerError.missingField(file: file, component: "post_processor", field: "type")
        }
        switch type {
        case "ByteLevel":
            return .identity
        case "TemplateProcessing":
            return try makeTemplate(json: json, file: file)
        case "BertProcessing", "RobertaProcessing":
            let component = "\(type) post_processor"
            guard let cls = json["cls"]?.arrayValue, cls.count == 2, let clsId = cls[1].intValue,
                  let sep = json["sep"]?.arrayValue, sep.count == 2, let sepId = sep[1].intValue else {
                throw TokenizerError.missingField(file: file, component: component, field: "cls/sep")
            }
            return .wrap(prefix: [clsId], suffix: [sepId])
        case "Sequence":
            guard let list = json["processors"]?.arrayValue else {
                throw TokenizerError.missingField(file: file, component: "Sequence post_processor", field: "processors")
            }
            var parts: [PostProcessor] = []
            for item in list {
                if let p = try make(json: item, file: file) { parts.append(p) }
            }
            return .sequence(parts)
        default:
            throw TokenizerError.unsupported(file: file, component: "post_processor", type: type)
        }
    }

    private static func makeTemplate(json: JSONValue, file: String) throws(TokenizerError) -> PostProcessor {
        let component = "TemplateProcessing post_processor"
        // special_tokens maps a name used in the template to the ids it stands for.
        var specials: [String: [Int]] = [:]
        if let members = json["special_tokens"]?.objectMembers {
            for (name, value) in zip(members.keys, members.values) {
                guard let ids = value["ids"]?.arrayValue?.compactMap(\.intValue) else {
                    throw TokenizerError.missingField(file: file, component: component, field: "special_tokens.\(name).ids")
                }
                specials[name] = ids
            }
        }
        func special(_ name: String) throws(TokenizerError) -> TemplatePiece {
            guard let ids = specials[name] else {
                throw TokenizerError.invalidValue(file: file, component: component,
                                                  detail: "template uses '\(name)' which is not in special_tokens")
            }
            return .special(ids)
        }
        var pieces: [TemplatePiece] = []
        if let items = json["single"]?.arrayValue {
            for item in items {
                if item["Sequence"] != nil {
                    pieces.append(.sequence)
                } else if let name = item["SpecialToken"]?["id"]?.stringValue {
                    pieces.append(try special(name))
                } else {
                    throw TokenizerError.invalidValue(file: file, component: component, detail: "unrecognised template item")
                }
            }
        } else if let text = json["single"]?.stringValue {
            // Compact string form, e.g. "<s> $A" or "[CLS]:0 $A:0 [SEP]:0".
            for word in text.split(separator: " ") {
                let name = word.split(separator: ":", maxSplits: 1).first.map(String.init) ?? String(word)
                if name.hasPrefix("$") { pieces.append(.sequence) } else { pieces.append(try special(name)) }
            }
        } else {
            throw TokenizerError.missingField(file: file, component: component, field: "single")
        }
        return .template(pieces)
    }

    func process(_ ids: [Int]) -> [Int] {
        switch self {
        case .identity:
            return ids
        case .wrap(let prefix, let suffix):
            return prefix + ids + suffix
        case .template(let pieces):
            var out: [Int] = []
            out.reserveCapacity(ids.count + 4)
            for p in pieces {
                switch p {
                case .sequence: out.append(contentsOf: ids)
                case .special(let s): out.append(contentsOf: s)
                }
            }
            return out
        case .sequence(let parts):
            var current = ids
            for p in parts { current = p.process(current) }
            return current
        }
    }
}
