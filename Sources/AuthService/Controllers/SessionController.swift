import JOSE
import JSON
public import MicroHTTP

/// `POST /login`: check a password and open a session.
public struct SessionController: Sendable {
    let store: any UserStore
    let hasher: PasswordHasher
    let hashingPool: WorkerPool
    let tokens: TokenService
    let refreshTTL: Int
    let clock: WallClock
    let logger: Logger

    public init(
        store: any UserStore, hasher: PasswordHasher, hashingPool: WorkerPool, tokens: TokenService, refreshTTL: Int,
        clock: WallClock, logger: Logger
    ) {
        self.store = store
        self.hasher = hasher
        self.hashingPool = hashingPool
        self.tokens = tokens
        self.refreshTTL = refreshTTL
        self.clock = clock
        self.logger = logger
    }

    public func addRoutes(to router: inout Router) {
        router.add(.post, "/login", on: hashingPool, login)
    }

    /// Logs in `{username, password}`: 200 with an access token (as both
    /// `token`, for tutorial clients, and `access_token`) and a refresh token.
    /// An unknown user costs the same Argon2 work as a wrong password and gets
    /// the byte-identical 401. Blocks for the hash: runs on the hashing pool.
    @Sendable public func login(_ request: Request) throws -> Response {
        let body = try JSONBody(request)
        let username = try body.string("username")
        let password = try body.string("password")
        guard password.utf8.count <= CredentialRules.passwordBytes.upperBound else {
            throw AuthError.invalidCredentials
        }
        let user = try storeCall(logger, { () throws(StoreError) in try store.user(named: username) })
        // No such user: check against a dummy hash of the same cost anyway.
        let matches = hasher.verify(password, against: user?.passwordHash ?? hasher.dummyHash)
        guard let user, matches else {
            logger.info("login failed", ["reason": user == nil ? "unknown_user" : "wrong_password"])
            throw AuthError.invalidCredentials
        }
        let now = clock.seconds
        let sessionID = Identifier.session()
        let refresh = RefreshToken.generate()
        let refreshExpiresAt = now + Int64(refreshTTL)
        let session = Session(
            id: sessionID, userID: user.id, createdAt: now,
            expiresAt: max(refreshExpiresAt, now + Int64(tokens.accessTTL)), revokedAt: nil)
        try storeCall(logger) { () throws(StoreError) in
            try store.createSession(session, refreshTokenHash: refresh.hash, refreshExpiresAt: refreshExpiresAt)
        }
        let accessToken = tokens.issueAccessToken(userID: user.id, username: user.username, sessionID: sessionID)
        logger.info("login", ["user_id": user.id, "session_id": sessionID])
        return Self.tokenResponse(accessToken: accessToken, expiresIn: tokens.accessTTL, refreshToken: refresh.value)
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
