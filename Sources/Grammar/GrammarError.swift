/// Why a constraint cannot be compiled; the message is for the client (a 400).
public struct GrammarError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
