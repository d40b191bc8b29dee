/// A failure to hash a password: parameters libargon2 refuses, or no randomness for the salt.
public struct PasswordHasherError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The libargon2 error code (`ARGON2_*`, negative), or `nil` when the failure was not libargon2's.
    public let argon2Code: Int?
    /// What failed, with libargon2's `argon2_error_message` or the system error.
    public let message: String

    /// Creates an error.
    /// - Parameters:
    ///   - argon2Code: the libargon2 error code, if libargon2 failed.
    ///   - message: details for logs.
    public init(argon2Code: Int? = nil, message: String) {
        self.argon2Code = argon2Code
        self.message = message
    }

    public var description: String {
        if let argon2Code {
            return "PasswordHasherError(argon2 \(argon2Code)): \(message)"
        }
        return "PasswordHasherError: \(message)"
    }
}
