/// A login session: every access and refresh token issued for one login carries its id (`sid`).
public struct Session: Sendable, Equatable {
    /// Opaque identifier (the `sid` claim).
    public let id: String
    /// The user the session belongs to.
    public let userID: String
    /// When the session was opened, seconds since the Unix epoch.
    public let createdAt: Int64
    /// The time (seconds since the Unix epoch) from which none of the session's tokens, access or
    /// refresh, can be valid. Set by the caller at creation (created + refresh TTL) and moved later
    /// by ``UserStore/rotateRefreshToken(hash:newHash:newExpiresAt:now:)`` when the new refresh token
    /// outlives it.
    public let expiresAt: Int64
    /// When the session was revoked (logout, reuse detection, password change), or `nil`.
    public let revokedAt: Int64?

    /// Creates a session value.
    /// - Parameters:
    ///   - id: session identifier.
    ///   - userID: owning user.
    ///   - createdAt: seconds since the Unix epoch.
    ///   - expiresAt: seconds since the Unix epoch from which no token of the session is valid.
    ///   - revokedAt: revocation time, `nil` for a live session.
    public init(id: String, userID: String, createdAt: Int64, expiresAt: Int64, revokedAt: Int64? = nil) {
        self.id = id
        self.userID = userID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// Whether tokens of this session may still be accepted at `now`: not revoked and `now < expiresAt`.
    public func isActive(at now: Int64) -> Bool {
        revokedAt == nil && now < expiresAt
    }
}
