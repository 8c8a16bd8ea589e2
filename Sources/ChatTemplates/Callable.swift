/// A function value: a global (`raise_exception`, `namespace`, `range`…), a macro, `caller`, or a
/// method bound to its receiver (`'a b'.split`).
struct Callable {
    typealias Body = (Interpreter, [RuntimeValue], [(String, RuntimeValue)]) throws -> RuntimeValue

    let name: String
    let body: Body

    init(_ name: String, _ body: @escaping Body) {
        self.name = name
        self.body = body
    }
}
