/// Why a serving benchmark could not run; each case reads as a message for the user.
public enum ServingBenchmarkError: Error, CustomStringConvertible {
    case dataset(String)
    case server(String)
    case usage(String)

    public var description: String {
        switch self {
        case .dataset(let message): return "dataset: \(message)"
        case .server(let message): return "server: \(message)"
        case .usage(let message): return message
        }
    }
}
