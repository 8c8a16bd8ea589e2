/// The left-hand side of `set` or a `for` loop.
enum AssignTarget: Sendable {
    case name(String)
    /// `ns.attr` — only namespaces accept attribute assignment.
    case attribute(String, String)
    /// `a, b` — unpacks a sequence of the same length.
    case tuple([String])
}
