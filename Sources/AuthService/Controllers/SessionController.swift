import JOSE
import JSON
public import MicroHTTP

/// Sessions: `POST /login` opens one, `POST /refresh` rotates its refresh
/// token, `POST /logout` ends it (or, with `?all=true`, every session of the user).
public struct SessionController: Sendable {
    let store: any UserStore
    let hasher: PasswordHasher
    let hashingPool: WorkerPool
    let storePool: WorkerPool
    let tokens: TokenService
    let refreshTTL: Int
    let clock: WallClock
    let limits: RateLimits
    let audit: AuditLog
    let metrics: GatehouseMetrics
    var logger: Logger { audit.logger }

    /// - Parameters:
    ///   - hashingPool: where login runs (it checks a password).
    ///   - storePool: where refresh and logout run (they write to the store).
    ///   - metrics: where logins and refreshes are counted by outcome.
    public init(
        store: any UserStore, hasher: PasswordHasher, hashingPool: WorkerPool, storePool: WorkerPool,
        tokens: TokenService, refreshTTL: Int, clock: WallClock, limits: RateLimits, audit: AuditLog,
        metrics: GatehouseMetrics = GatehouseMetrics()
    ) {
        self.store = store
        self.hasher = hasher
        self.hashingPool = hashingPool
        self.storePool = storePool
        self.tokens = tokens
        self.refreshTTL = refreshTTL
        self.clock = clock
        self.limits = limits
        self.audit = audit
        self.metrics = metrics
    }

    public func addRoutes(to router: inout Router) {
        router.add(.post, "/login", on: hashingPool, admission: limits.admitLogin, login)
        router.add(.post, "/refresh", on: storePool, admission: limits.admitRefresh, refresh)
        router.add(.post, "/logout", on: storePool, logout)
    }

    /// Logs in `{username, password}`: 200 with an access token (as both
    /// `token`, for tutorial clients, and `access_token`) and a refresh token.
    /// An unknown user costs the same Argon2 work as a wrong password and gets
    /// the byte-identical 401. Blocks for the hash: runs on the hashing pool.
    @Sendable public func login(_ request: Request) throws -> Response {
        try metrics.logins.counting(success: .success) { try logIn(request) }
    }

    private func logIn(_ request: Request) throws -> Response {
        let body = try JSONBody(request)
        let username = try body.string("username")
        let password = try body.string("password")
        guard password.utf8.count <= CredentialRules.passwordBytes.upperBound else {
            audit.record(
                .loginFailed, request, ["username": AuditLog.loggable(username: username), "reason": "password_too_long"])
            throw AuthError.invalidCredentials
        }
        let user = try storeCall(logger, { () throws(StoreError) in try store.user(named: username) })
        // No such user: check against a dummy hash of the same cost anyway.
        let matches = hasher.verify(password, against: user?.passwordHash ?? hasher.dummyHash)
        // A locked user gets the same answer as a wrong password, after the same hashing work.
        guard let user, matches, !user.locked else {
            audit.record(
                .loginFailed, request,
                [
                    "username": AuditLog.loggable(username: username),
                    "reason": user == nil ? "unknown_user" : matches ? "locked" : "wrong_password",
                ])
            throw AuthError.invalidCredentials
        }
        let now = clock.seconds
        let sessionID = Identifier.session()
        let refresh = RefreshToken.generate()
        // Configuration keeps refreshTTL >= accessTTL, so the session outlives its access tokens.
        let expiresAt = now + Int64(refreshTTL)
        let session = Session(id: sessionID, userID: user.id, createdAt: now, expiresAt: expiresAt)
        try storeCall(logger) { () throws(StoreError) in
            try store.createSession(session, refreshTokenHash: refresh.hash, refreshExpiresAt: expiresAt)
        }
        let accessToken = tokens.issueAccessToken(for: user, sessionID: sessionID)
        limits.loginSucceeded(username: username)
        audit.record(.loginSucceeded, request, ["username": user.username, "user_id": user.id, "session_id": sessionID])
        return Self.tokenResponse(accessToken: accessToken, expiresIn: tokens.accessTTL, refreshToken: refresh.value)
    }

    /// Rotates `{refresh_token}`: 200 with a new access token and a new
    /// refresh token; the old one is consumed. Presenting a consumed refresh
    /// token again means it was stolen (or the client is broken): the whole
    /// session is revoked, its access tokens included.
    @Sendable public func refresh(_ request: Request) throws -> Response {
        try metrics.refreshes.counting(success: .success) { try rotate(request) }
    }

    private func rotate(_ request: Request) throws -> Response {
        let presented = try JSONBody(request).string("refresh_token")
        guard RefreshToken.isWellFormed(presented) else { throw AuthError.invalidRefreshToken }
        let now = clock.seconds
        let next = RefreshToken.generate()
        let rotation = try storeCall(logger) { () throws(StoreError) in
            try store.rotateRefreshToken(
                hash: RefreshToken.hash(of: presented), newHash: next.hash, newExpiresAt: now + Int64(refreshTTL),
                now: now)
        }
        switch rotation {
        case .invalid:
            throw AuthError.invalidRefreshToken
        case .reused(let sessionID):
            try storeCall(logger) { () throws(StoreError) in try store.revokeSession(id: sessionID, at: now) }
            tokens.revocations.revoke(sessionID, until: now + Int64(refreshTTL), now: now)
            // Whose session it was, for the security event (a reuse is rare: one more read).
            let owner = (try? store.session(id: sessionID))??.userID ?? "-"
            audit.record(
                .refreshReuseDetected, request, ["user_id": owner, "session_id": sessionID, "action": "session_revoked"])
            // Answered as invalidRefreshToken, counted as reuse_detected.
            throw RefreshTokenReused()
        case .rotated(let session, let user):
            // Locking a user ends its sessions in the same transaction, so a live session's user is
            // not locked; checked anyway, as the rest of the answer depends on nothing else.
            guard !user.locked else { throw AuthError.invalidRefreshToken }
            // The roles and app claims as they are now.
            let accessToken = tokens.issueAccessToken(for: user, sessionID: session.id)
            return Self.tokenResponse(accessToken: accessToken, expiresIn: tokens.accessTTL, refreshToken: next.value)
        }
    }

    /// Ends the caller's session (204); with `?all=true`, every session of the
    /// caller. Their access tokens are refused from now on and their refresh
    /// tokens are gone.
    @Sendable public func logout(_ request: Request) throws -> Response {
        let caller = try tokens.authenticate(request)
        let now = clock.seconds
        let ended: [String]
        if request.queryValue("all") == "true" {
            ended = try storeCall(logger) { () throws(StoreError) in
                try store.revokeSessions(userID: caller.userID, except: nil, at: now)
            }
        } else {
            try storeCall(logger) { () throws(StoreError) in try store.revokeSession(id: caller.sessionID, at: now) }
            ended = [caller.sessionID]
        }
        tokens.revocations.revoke(ended + [caller.sessionID], until: now + Int64(refreshTTL), now: now)
        audit.record(
            .logout, request,
            ["user_id": caller.userID, "username": caller.username, "sessions": String(Set(ended + [caller.sessionID]).count)])
        return .empty(status: 204)
    }

    /// The body login and refresh answer with, never cached.
    static func tokenResponse(accessToken: String, expiresIn: Int, refreshToken: String) -> Response {
        .json(
            [
                "token": .string(accessToken),
                "access_token": .string(accessToken),
                "token_type": "Bearer",
                "expires_in": .int(expiresIn),
                "refresh_token": .string(refreshToken),
            ],
            headers: ["Cache-Control": "no-store", "Pragma": "no-cache"])
    }
}
