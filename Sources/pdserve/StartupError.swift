/// A reason the command cannot start or continue. ArgumentParser prints
/// it as "Error: …" and the process exits with status 1.
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
