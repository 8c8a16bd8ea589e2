import ByteExactJSON
/// The parts of `tokenizer_config.json` the server needs: special-token names and the
/// chat template.
struct TokenizerConfig {
    var bosToken: String?
    var eosTokens: [String] = []
    var addBosToken: Bool?
    var addEosToken: Bool?
    var chatTemplate: String?

    init() {}

    init(json: JSONValue, file: String) throws(TokenizerError) {
        guard json.objectMembers != nil else {
            throw TokenizerError.invalidJSON(file: file, detail: "top level is not an object")
        }
        bosToken = Self.tokenName(json["bos_token"])
        if let list = json["eos_token"]?.arrayValue {
            eosTokens = list.compactMap { Self.tokenName($0) }
        } else if let eos = Self.tokenName(json["eos_token"]) {
            eosTokens = [eos]
        }
        addBosToken = json["add_bos_token"]?.boolValue
        addEosToken = json["add_eos_token"]?.boolValue
        if let template = json["chat_template"]?.stringValue {
            chatTemplate = template
        } else if let named = json["chat_template"]?.arrayValue {
            // Named-template list form: use the one called "default", else the first.
            let pairs = named.compactMap { item -> (String, String)? in
                guard let name = item["name"]?.stringValue, let t = item["template"]?.stringValue else { return nil }
                return (name, t)
            }
            chatTemplate = pairs.first { $0.0 == "default" }?.1 ?? pairs.first?.1
        }
    }

    /// A special token is written either as a string or as an AddedToken object.
    private static func tokenName(_ json: JSONValue?) -> String? {
        guard let json else { return nil }
        if let s = json.stringValue { return s }
        return json["content"]?.stringValue
    }
}
