import Foundation

/// Why a checkpoint could not be loaded; the description is one line naming
/// the file and what is wrong with it.
public struct ModelLoadError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let problem: String

    public init(file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }

    public init(file: URL, _ problem: String) {
        self.init(file: file.path, problem)
    }

    public var description: String { "\(file): \(problem)" }
}
