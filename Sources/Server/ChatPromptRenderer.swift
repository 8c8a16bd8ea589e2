import ChatTemplates
import Tokenization

/// An OpenAI chat request's messages rendered through the model's Jinja chat template into
/// the prompt text (`/v1/chat/completions` and `pdserve tokenize`).
public struct ChatPromptRenderer: Sendable {
    /// Parsed once; a template that does not parse makes every render a clear 400.
    private let template: Result<ChatTemplate, APIError>
    private let tokenizer: Tokenizer

    public init(templateSource: String?, tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
        if let templateSource {
            do {
                template = .success(try ChatTemplate(source: templateSource))
            } catch {
                template = .failure(.invalid("The chat template cannot be rendered by this server: \(error)"))
            }
        } else {
            template = .failure(.invalid("This model has no chat template; start the server with --chat-template FILE or use /v1/completions."))
        }
    }

    /// Renders the `messages` of a chat request (with its `tools` and `chat_template_kwargs`);
    /// `ordered` is the request body parsed in key order.
    public func render(_ ordered: TemplateValue, addGenerationPrompt: Bool) throws(APIError) -> String {
        let template = try self.template.get()
        guard case .array(let rawMessages)? = ordered["messages"], !rawMessages.isEmpty else {
            throw APIError.invalid("'messages' must be a non-empty array.", param: "messages")
        }
        var messages: [[String: TemplateValue]] = []
        for (i, raw) in rawMessages.enumerated() {
            guard case .object(let fields) = raw, case .string(let role)? = fields["role"] else {
                throw APIError.invalid("'messages[\(i)]' must be an object with a string 'role'.", param: "messages")
            }
            guard Self.roles.contains(role) else {
                throw APIError.invalid("'messages[\(i)].role' is '\(role)'; it must be one of \(Self.roles.sorted().joined(separator: ", ")).", param: "messages")
            }
            var message: [String: TemplateValue] = [:]
            for (key, value) in fields.pairs { message[key] = value }
            message["content"] = try flattenContent(fields["content"], index: i)
            // Only an assistant turn that calls tools may come without content.
            let callsTools = role == "assistant" && fields["tool_calls"].map { $0 != .null } == true
            if message["content"] == .null && !callsTools {
                throw APIError.invalid("'messages[\(i)].content' is required for a \(role) message.", param: "messages")
            }
            messages.append(message)
        }
        var variables: [String: TemplateValue] = [:]
        if let bos = tokenizer.bosTokenId.flatMap(tokenizer.token(forId:)) { variables["bos_token"] = .string(bos) }
        if let eos = tokenizer.eosTokenIds.first.flatMap(tokenizer.token(forId:)) { variables["eos_token"] = .string(eos) }
        if let tools = ordered["tools"], tools != .null { variables["tools"] = tools }
        if case .object(let kwargs)? = ordered["chat_template_kwargs"] {
            for (key, value) in kwargs.pairs { variables[key] = value }
        }
        do {
            return try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt, variables: variables)
        } catch {
            throw APIError.invalid("The chat template could not render these messages: \(error)", param: "messages")
        }
    }

    /// The roles OpenAI's chat API defines.
    static let roles: Set<String> = ["system", "developer", "user", "assistant", "tool"]

    /// OpenAI content parts → one string (text parts joined by newlines), as vLLM does.
    private func flattenContent(_ content: TemplateValue?, index: Int) throws(APIError) -> TemplateValue {
        switch content {
        case nil, .null?: return .null
        case .string?: return content!
        case .array(let parts)?:
            var texts: [String] = []
            for part in parts {
                guard part["type"]?.stringValue == "text", let text = part["text"]?.stringValue else {
                    throw .invalid("'messages[\(index)].content' may only hold text parts; this server has no image or audio input.", param: "messages")
                }
                texts.append(text)
            }
            return .string(texts.joined(separator: "\n"))
        default:
            throw .invalid("'messages[\(index)].content' must be a string or an array of text parts.", param: "messages")
        }
    }
}
