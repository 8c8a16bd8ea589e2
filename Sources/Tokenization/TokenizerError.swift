import Foundation

/// Everything that can go wrong while loading a tokenizer. Each case names the file and
/// the pipeline component involved, so a user pointing the server at a model folder learns
/// exactly which part of which file is the problem.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// A required file does not exist or cannot be read.
    case fileNotFound(path: String)
    /// The file exists but is not valid JSON (or not the JSON shape expected at the top level).
    case invalidJSON(file: String, detail: String)
    /// A required field is absent or has the wrong JSON type.
    case missingField(file: String, component: String, field: String)
    /// A component declares a `type` this implementation does not handle.
    case unsupported(file: String, component: String, type: String)
    /// A field is present but its value cannot be used.
    case invalidValue(file: String, component: String, detail: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "tokenizer file not found: \(path)"
        case .invalidJSON(let file, let detail):
            return "\(file): invalid JSON: \(detail)"
        case .missingField(let file, let component, let field):
            return "\(file): \(component): missing or mistyped field '\(field)'"
        case .unsupported(let file, let component, let type):
            return "\(file): unsupported \(component) type '\(type)'"
        case .invalidValue(let file, let component, let detail):
            return "\(file): \(component): \(detail)"
        }
    }
}
