/// Positional and keyword arguments of a call, filter or test.
struct CallArguments: Sendable {
    var positional: [Expression] = []
    var keyword: [(String, Expression)] = []

    static let none = CallArguments()
}
