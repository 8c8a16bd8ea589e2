/// One level of variable bindings. Jinja gives each loop iteration and each macro call a fresh
/// scope (a `set` there does not leak out), while `if` blocks share their parent's.
final class Scope {
    var variables: [String: RuntimeValue] = [:]
    let parent: Scope?

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> RuntimeValue? {
        var scope: Scope? = self
        while let s = scope {
            if let v = s.variables[name] { return v }
            scope = s.parent
        }
        return nil
    }
}
