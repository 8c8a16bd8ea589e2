import Foundation

/// A Hugging Face chat template (Jinja), parsed once and rendered per request.
///
/// Rendering follows `transformers`' `apply_chat_template`: Jinja with `trim_blocks` and
/// `lstrip_blocks`, the `loopcontrols` extension, `tojson` without HTML escaping, and the globals
/// `raise_exception`, `strftime_now`, `namespace`. Syntax outside the supported subset is rejected
/// by `init(source:)`, so an unsupported template fails at load time, not with a wrong prompt.
public struct ChatTemplate: Sendable {
    /// The template text as given.
    public let source: String
    private let nodes: [Node]

    /// Bounds on output size, loop iterations and macro recursion for each render.
    public var limits = RenderLimits()
    /// What `strftime_now` considers the current time; replace it for reproducible prompts.
    public var now: @Sendable () -> Date = { Date() }
    /// Time zone for `strftime_now` (Python uses local time).
    public var timeZone: TimeZone = .current

    /// Parses once; throws `ChatTemplateError` (with line/column and what was expected) on syntax it
    /// does not support.
    public init(source: String) throws {
        self.source = source
        var lexer = Lexer(source: source)
        var parser = Parser(tokens: try lexer.tokenize())
        nodes = try parser.parseTemplate()
    }

    /// Renders with `messages` (array of dicts: role, content (string or list of {type:"text", text}),
    /// optional tool_calls, name…), `add_generation_prompt`, and any extra variables (`bos_token`,
    /// `eos_token`, `tools`, `date_string`, `enable_thinking`…). Extra variables override nothing
    /// but each other: `messages` and `add_generation_prompt` come from the explicit arguments.
    public func render(messages: [[String: TemplateValue]], addGenerationPrompt: Bool,
                       variables: [String: TemplateValue] = [:]) throws -> String {
        let list: [TemplateValue] = messages.map { message in
            // Swift dictionaries have no order; sort keys so rendering is at least deterministic.
            // Callers that need the original order pass `messages` through `variables` instead.
            .object(OrderedDict(message.keys.sorted().map { ($0, message[$0]!) }))
        }
        var all = variables
        if all["messages"] == nil { all["messages"] = .array(list) }
        all["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try render(context: all)
    }

    /// Renders with an explicit context: every variable the template sees, in the caller's order
    /// (`messages`, `tools`, `add_generation_prompt`, `bos_token`…).
    public func render(context: [String: TemplateValue]) throws -> String {
        let interpreter = Interpreter(context: context.mapValues(RuntimeValue.init), limits: limits,
                                      now: now(), timeZone: timeZone)
        return try interpreter.render(nodes)
    }
}
