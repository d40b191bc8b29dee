/// Why a YAML text could not be read: it is malformed, or it uses YAML
/// outside the subset `YAML.parse` reads.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The line (1-based) where the problem is.
    public let line: Int
    /// What is wrong there, for a person.
    public let message: String

    /// - Parameters:
    ///   - line: 1-based line number.
    ///   - message: what is wrong.
    public init(line: Int, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { "line \(line): \(message)" }
}
