/// The outcome of presenting a refresh token to ``UserStore/rotateRefreshToken(hash:newHash:newExpiresAt:now:)``.
public enum RefreshRotation: Sendable, Equatable {
    /// The token was live: it is now consumed and its successor is stored in the same session.
    /// Carries the session as it is after the rotation (its `expiresAt` possibly extended), and its
    /// user as read in the same transaction (the roles and claims the new access token carries), so
    /// that nothing can fail between a rotation and its answer.
    case rotated(Session, user: User)
    /// The token exists but was already consumed, and its session is still live: someone replayed
    /// it. The caller revokes the session (``UserStore/revokeSession(id:at:)``).
    case reused(sessionID: String)
    /// Unknown token, token expired at `now`, or its session revoked or expired.
    case invalid

    /// The session of a rotation; nil for the other outcomes.
    public var rotatedSession: Session? {
        if case .rotated(let session, _) = self { return session }
        return nil
    }
}

/// The persistence interface the controllers use.
///
/// ``SQLiteStore`` (the default) and ``PostgresStore`` (shared by several instances) implement it, and
/// controllers see only this protocol, so it speaks in domain values, never SQL, and every multi-step
/// change is one atomic call. All times are
/// seconds since the Unix epoch, supplied by the caller's clock. Usernames are unique and looked up
/// without regard to ASCII case.
public protocol UserStore: Sendable {
    /// How long, in seconds, an expired session is kept before ``pruneExpired(now:)`` deletes it:
    /// an hour, well past any clock leeway a verifier allows.
    static var expiredSessionRetention: Int64 { get }

    /// Creates a user.
    ///
    /// Uniqueness is enforced by the database (never check-then-insert), so concurrent
    /// registrations of one name give exactly one success.
    /// - Parameters:
    ///   - id: new user's identifier.
    ///   - username: the name, kept in its original case.
    ///   - passwordHash: PHC string.
    ///   - createdAt: creation time.
    /// - Returns: the stored user.
    /// - Throws: ``StoreError/Code/usernameTaken`` if a user with this name in any case exists; the
    ///   existing user is left unchanged.
    func createUser(id: String, username: String, passwordHash: String, createdAt: Int64) throws(StoreError) -> User

    /// Creates a user with roles (``User/roles``), as ``createUser(id:username:passwordHash:createdAt:)``.
    func createUser(id: String, username: String, passwordHash: String, createdAt: Int64, roles: [String])
        throws(StoreError) -> User

    /// Finds a user by name, without regard to case.
    func user(named username: String) throws(StoreError) -> User?

    /// Finds a user by identifier.
    func user(id: String) throws(StoreError) -> User?

    /// Replaces a user's password hash.
    /// - Throws: ``StoreError/Code/notFound`` if there is no such user.
    func updatePasswordHash(userID: String, passwordHash: String) throws(StoreError)

    /// Deletes a user with all its sessions and refresh tokens, in one step.
    ///
    /// The deleted sessions stay listed by ``revokedSessions(now:)`` until they expire, so access
    /// tokens of a deleted account stay refused across restarts. To learn their ids for the
    /// in-memory revocation set, call ``revokeSessions(userID:except:at:)`` first.
    /// - Throws: ``StoreError/Code/notFound`` if there is no such user.
    func deleteUser(id: String) throws(StoreError)

    /// Opens a session with its first refresh token, in one step.
    /// - Parameters:
    ///   - session: the new session (normally `revokedAt == nil`).
    ///   - refreshTokenHash: SHA-256 of the refresh token; the token itself is never stored.
    ///   - refreshExpiresAt: time from which the refresh token is refused.
    /// - Throws: ``StoreError/Code/notFound`` if the session's user does not exist.
    func createSession(_ session: Session, refreshTokenHash: [UInt8], refreshExpiresAt: Int64) throws(StoreError)

    /// Atomically consumes a refresh token and stores its successor in the same session.
    ///
    /// Two concurrent rotations of one token give one ``RefreshRotation/rotated(_:)`` and one
    /// ``RefreshRotation/reused(sessionID:)``. The session's `expiresAt` is moved to `newExpiresAt`
    /// when that is later. A token or session is expired when `now >= expiresAt`.
    /// - Parameters:
    ///   - hash: SHA-256 of the presented refresh token.
    ///   - newHash: SHA-256 of its successor.
    ///   - newExpiresAt: time from which the successor is refused.
    ///   - now: the caller's clock.
    func rotateRefreshToken(hash: [UInt8], newHash: [UInt8], newExpiresAt: Int64, now: Int64) throws(StoreError)
        -> RefreshRotation

    /// Revokes a session and deletes its refresh tokens, in one step. Revoking a revoked session
    /// keeps its first revocation time.
    /// - Throws: ``StoreError/Code/notFound`` if there is no such session.
    func revokeSession(id: String, at: Int64) throws(StoreError)

    /// Revokes every live session of a user (not revoked, not expired at `at`) except one, and
    /// deletes their refresh tokens, in one step.
    /// - Parameters:
    ///   - userID: whose sessions.
    ///   - except: a session to keep (the caller's own, on password change), or `nil`.
    ///   - at: revocation time.
    /// - Returns: the ids of the sessions this call revoked.
    func revokeSessions(userID: String, except: String?, at: Int64) throws(StoreError) -> [String]

    /// Finds a session by identifier.
    func session(id: String) throws(StoreError) -> Session?

    /// Sessions that are revoked (or deleted with their user) and not yet expired at `now`, to fill
    /// the in-memory revocation set at start-up.
    func revokedSessions(now: Int64) throws(StoreError) -> [(id: String, expiresAt: Int64)]

    // MARK: - Administration

    /// Changes a user's roles, app claims or lock, and ends its sessions when that changes what its
    /// tokens say or whether it may hold any (roles or app claims differ from before, or it is newly
    /// locked): all in one step, so no token with the old roles outlives the change. A change to the
    /// same values ends nothing.
    /// - Parameters:
    ///   - id: the user.
    ///   - changes: what to change (already validated by the caller).
    ///   - at: the time the sessions end.
    /// - Returns: the user as stored now and the sessions this call ended.
    /// - Throws: ``StoreError/Code/notFound`` if there is no such user; nothing is changed then.
    func updateUser(id: String, _ changes: UserChanges, at: Int64) throws(StoreError) -> UserUpdate

    /// A page of users in a stable order: by username without regard to case.
    /// - Parameters:
    ///   - limit: the most users to return (at least 1).
    ///   - after: the username the previous page ended with (``UserPage/next``), or nil for the first page.
    ///   - matching: only usernames containing this text, without regard to ASCII case; nil: all.
    func listUsers(limit: Int, after: String?, matching: String?) throws(StoreError) -> UserPage

    /// Where the revocation sequence stands now: every session ended later has a larger position.
    /// Read it before ``revokedSessions(now:)`` at start-up, then poll ``revocations(after:)`` from it.
    func revocationCursor() throws(StoreError) -> Int64

    /// Sessions ended (revoked, or deleted with their user) after position `cursor` of the
    /// revocation sequence, by any process using the store (`gatehouse users ...` included), in order.
    /// - Parameter cursor: ``revocationCursor()`` or the ``RevocationBatch/cursor`` of the previous call.
    func revocations(after cursor: Int64) throws(StoreError) -> RevocationBatch

    /// Deletes what can no longer matter, so the store does not grow with every login forever:
    /// sessions that expired at least ``expiredSessionRetention`` seconds before `now` (with
    /// their refresh tokens, whatever their state: no token of theirs can be accepted any more),
    /// and the markers of deleted sessions and the revocation-sequence entries whose sessions
    /// expired before `now` (their tokens are refused by their own `exp`). Positions of the
    /// sequence are never reused, and deleting expired sessions adds no live entry to it.
    func pruneExpired(now: Int64) throws(StoreError)

    /// Checks, within a short bound, that the store can serve reads and writes now (readiness).
    func ping() throws(StoreError)

    /// Closes the store: later calls throw ``StoreError/Code/unavailable``. Calling it again does nothing.
    func close()
}

extension UserStore {
    public static var expiredSessionRetention: Int64 { 3600 }
}
