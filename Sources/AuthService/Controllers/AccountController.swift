import Foundation
import JSON
public import MicroHTTP

/// Accounts: `POST /register` creates one; `GET /me` shows the caller's;
/// `POST /password` changes its password; `DELETE /me` deletes it.
public struct AccountController: Sendable {
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
    /// The roles a new account starts with (`GATEHOUSE_DEFAULT_ROLES`).
    let defaultRoles: [String]
    var logger: Logger { audit.logger }

    /// - Parameters:
    ///   - hashingPool: where the routes that hash or check a password run.
    ///   - storePool: where `GET /me` runs (it reads the store).
    ///   - metrics: where registrations are counted by outcome.
    ///   - defaultRoles: the roles a new account starts with (already validated).
    public init(
        store: any UserStore, hasher: PasswordHasher, hashingPool: WorkerPool, storePool: WorkerPool,
        tokens: TokenService, refreshTTL: Int, clock: WallClock, limits: RateLimits, audit: AuditLog,
        metrics: GatehouseMetrics = GatehouseMetrics(), defaultRoles: [String] = []
    ) {
        self.defaultRoles = defaultRoles
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
        router.add(.post, "/register", on: hashingPool, admission: limits.admitRegistration, register)
        router.add(.get, "/me", on: storePool, me)
        router.add(.post, "/password", on: hashingPool, changePassword)
        router.add(.delete, "/me", on: hashingPool, deleteAccount)
    }

    /// Registers `{username, password}`: 201 with the new user's id and name.
    /// An existing name (any case) is 409 and its password is never touched.
    /// Blocks for the hash: runs on the hashing pool.
    @Sendable public func register(_ request: Request) throws -> Response {
        try metrics.registrations.counting(success: .success) { try createAccount(request) }
    }

    private func createAccount(_ request: Request) throws -> Response {
        let body = try JSONBody(request)
        let username = try body.string("username")
        let password = try body.string("password")
        try CredentialRules.validateUsername(username)
        try CredentialRules.validatePassword(password, username: username)
        // Cheap early answer for the common case; the unique index decides races.
        if try storeCall(logger, { () throws(StoreError) in try store.user(named: username) }) != nil {
            throw AuthError.usernameTaken
        }
        let hash = try hasher.hash(password)
        let user: User
        do {
            user = try store.createUser(
                id: Identifier.uuid(), username: username, passwordHash: hash, createdAt: clock.seconds,
                roles: defaultRoles)
        } catch where error.code == .usernameTaken {
            throw AuthError.usernameTaken
        } catch {
            logger.error("store failed", ["operation": "createUser", "error": error.description])
            throw AuthError.storeUnavailable
        }
        audit.record(.registered, request, ["user_id": user.id, "username": user.username])
        return .json(
            [
                "message": "User registered successfully!",
                "user": ["id": .string(user.id), "username": .string(user.username)],
            ], status: 201)
    }

    /// The caller's account: `{"id", "username", "created_at", "roles"}`
    /// (RFC 3339, UTC), and `app_metadata` when an administrator set it.
    @Sendable public func me(_ request: Request) throws -> Response {
        let user = try currentUser(request).user
        let created = Date(timeIntervalSince1970: TimeInterval(user.createdAt)).formatted(.iso8601)
        var body: JSONObject = [
            "id": .string(user.id), "username": .string(user.username), "created_at": .string(created),
            "roles": .array(user.roles.map { .string($0) }),
        ]
        if let metadata = user.appMetadata { body["app_metadata"] = .object(metadata) }
        return .json(.object(body))
    }

    /// Changes the password `{current_password, new_password}`: 204. Every
    /// other session of the user ends; the caller's stays.
    @Sendable public func changePassword(_ request: Request) throws -> Response {
        let (caller, user) = try currentUser(request)
        let body = try JSONBody(request)
        let current = try body.string("current_password")
        let new = try body.string("new_password")
        try checkPassword(current, of: user)
        try CredentialRules.validatePassword(new, username: user.username)
        let hash = try hasher.hash(new)
        let now = clock.seconds
        let ended = try storeCall(logger) { () throws(StoreError) in
            try store.updatePasswordHash(userID: user.id, passwordHash: hash)
            return try store.revokeSessions(userID: user.id, except: caller.sessionID, at: now)
        }
        tokens.revocations.revoke(ended, until: now + Int64(refreshTTL), now: now)
        audit.record(.passwordChanged, request, ["user_id": user.id, "sessions_ended": String(ended.count)])
        return .empty(status: 204)
    }

    /// Deletes the caller's account `{password}` with every session: 204.
    @Sendable public func deleteAccount(_ request: Request) throws -> Response {
        let (caller, user) = try currentUser(request)
        try checkPassword(try JSONBody(request).string("password"), of: user)
        let now = clock.seconds
        let ended = try storeCall(logger) { () throws(StoreError) in
            let ended = try store.revokeSessions(userID: user.id, except: nil, at: now)
            try store.deleteUser(id: user.id)
            return ended
        }
        tokens.revocations.revoke(ended + [caller.sessionID], until: now + Int64(refreshTTL), now: now)
        audit.record(.accountDeleted, request, ["user_id": user.id, "username": user.username])
        return .empty(status: 204)
    }

    /// The authenticated caller and their stored account; 401 if it is gone.
    private func currentUser(_ request: Request) throws -> (caller: AuthenticatedUser, user: User) {
        let caller = try tokens.authenticate(request)
        guard let user = try storeCall(logger, { () throws(StoreError) in try store.user(id: caller.userID) }) else {
            throw AuthError.invalidToken("the account no longer exists")
        }
        return (caller, user)
    }

    private func checkPassword(_ password: String, of user: User) throws(AuthError) {
        guard password.utf8.count <= CredentialRules.passwordBytes.upperBound,
            hasher.verify(password, against: user.passwordHash)
        else { throw AuthError.invalidCredentials }
    }
}
