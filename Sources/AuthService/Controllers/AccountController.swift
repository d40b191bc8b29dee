import JSON
public import MicroHTTP

/// `POST /register`: create a user.
public struct AccountController: Sendable {
    let store: any UserStore
    let hasher: PasswordHasher
    let hashingPool: WorkerPool
    let clock: WallClock
    let logger: Logger

    /// - Parameters:
    ///   - hashingPool: where registration runs, since it hashes the password.
    public init(
        store: any UserStore, hasher: PasswordHasher, hashingPool: WorkerPool, clock: WallClock, logger: Logger
    ) {
        self.store = store
        self.hasher = hasher
        self.hashingPool = hashingPool
        self.clock = clock
        self.logger = logger
    }

    public func addRoutes(to router: inout Router) {
        router.add(.post, "/register", on: hashingPool, register)
    }

    /// Registers `{username, password}`: 201 with the new user's id and name.
    /// An existing name (any case) is 409 and its password is never touched.
    /// Blocks for the hash: runs on the hashing pool.
    @Sendable public func register(_ request: Request) throws -> Response {
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
                id: Identifier.uuid(), username: username, passwordHash: hash, createdAt: clock.seconds)
        } catch where error.code == .usernameTaken {
            throw AuthError.usernameTaken
        } catch {
            logger.error("store failed", ["operation": "createUser", "error": error.description])
            throw AuthError.storeUnavailable
        }
        logger.info("user registered", ["user_id": user.id])
        return .json(
            [
                "message": "User registered successfully!",
                "user": ["id": .string(user.id), "username": .string(user.username)],
            ], status: 201)
    }
}

/// Runs a store call, turning store failures into a logged 503.
func storeCall<T>(_ logger: Logger, _ body: () throws(StoreError) -> T) throws(AuthError) -> T {
    do {
        return try body()
    } catch {
        logger.error("store failed", ["error": error.description])
        throw AuthError.storeUnavailable
    }
}
