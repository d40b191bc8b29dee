/// An account, as the store keeps it.
public struct User: Sendable, Equatable {
    /// Opaque, stable identifier (the `sub` claim of its tokens).
    public let id: String
    /// The name the user registered with, in its original case.
    public let username: String
    /// The password hash in PHC string format (`$argon2id$v=19$m=...`).
    public let passwordHash: String
    /// Creation time, seconds since the Unix epoch.
    public let createdAt: Int64

    /// Creates a user value.
    /// - Parameters:
    ///   - id: stable identifier.
    ///   - username: the registered name.
    ///   - passwordHash: PHC string.
    ///   - createdAt: seconds since the Unix epoch.
    public init(id: String, username: String, passwordHash: String, createdAt: Int64) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }
}
