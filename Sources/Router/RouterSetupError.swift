/// A configuration or run-time worker change that cannot be applied; the
/// message says what to change.
public struct RouterSetupError: Error, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
