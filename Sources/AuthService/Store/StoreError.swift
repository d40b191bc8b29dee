/// A failure of a ``UserStore``.
///
/// The set of codes can grow without breaking callers: switch over ``code`` with a `default` branch.
/// ``message`` is for logs and operators (for SQLite it keeps the result code and `sqlite3_errmsg`);
/// never show it to a client.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, as a value callers can match on.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case usernameTaken
            case notFound
            case unavailable
            case corrupt
            case incompatibleSchema
            case failure
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// Another user already has this username (compared without regard to case).
        public static let usernameTaken = Code(.usernameTaken)
        /// The user or session the change names does not exist.
        public static let notFound = Code(.notFound)
        /// The store cannot be reached or used right now (closed, locked past the busy timeout,
        /// I/O error, disk full, cannot open the file). Readiness should report not ready.
        public static let unavailable = Code(.unavailable)
        /// The database file is damaged or is not a database.
        public static let corrupt = Code(.corrupt)
        /// The database was written by a newer Gatehouse with a schema this build does not know.
        public static let incompatibleSchema = Code(.incompatibleSchema)
        /// Any other database failure (a bug, or a constraint the caller violated).
        public static let failure = Code(.failure)

        public var description: String { value.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// A sentence for logs: the operation, and for SQLite the result code and its message.
    public let message: String

    /// Creates an error.
    /// - Parameters:
    ///   - code: what went wrong.
    ///   - message: details for logs.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "StoreError.\(code): \(message)" }
}
