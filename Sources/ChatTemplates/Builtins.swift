/// Names of the filters and tests this renderer implements.
///
/// Jinja rejects unknown filters and tests when it compiles a template, so the parser checks these
/// sets too: a template that needs something missing fails at load time instead of mid-request.
enum Builtins {
    static let filters: Set<String> = [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
        "forceescape", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
        "pprint", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort",
        "string", "sum", "title", "tojson", "trim", "unique", "upper", "wordcount",
    ]

    static let tests: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
        "float", "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lower", "lessthan", "lt", "mapping",
        "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
        "==", "!=", "<", "<=", ">", ">=",
    ]

    /// Tags that are real Jinja but deliberately unsupported (templates loading other templates,
    /// or extensions Hugging Face does not enable); named in the error so the cause is obvious.
    static let unsupportedTags: Set<String> = [
        "include", "extends", "block", "import", "from", "with", "do", "autoescape", "trans", "pluralize",
        "endblock", "endwith", "endautoescape", "endtrans",
    ]
}
