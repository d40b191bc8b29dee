import Foundation
import JOSE
public import MicroHTTP

/// A configured Gatehouse: store open, keys loaded, routes wired, ready to
/// serve. `main.swift` and the end-to-end tests build exactly this.
public final class Application: Sendable {
    public let configuration: Configuration
    public let server: HTTPServer
    public let tokens: TokenService
    let store: SQLiteStore
    let hashingPool: WorkerPool
    let storePool: WorkerPool
    let logger: Logger

    init(
        configuration: Configuration, server: HTTPServer, tokens: TokenService, store: SQLiteStore,
        hashingPool: WorkerPool, storePool: WorkerPool, logger: Logger
    ) {
        self.configuration = configuration
        self.server = server
        self.tokens = tokens
        self.store = store
        self.hashingPool = hashingPool
        self.storePool = storePool
        self.logger = logger
    }

    /// Binds and starts serving; logs the address.
    /// - Returns: the bound port.
    @discardableResult
    public func start() throws -> UInt16 {
        let port = try server.start()
        logger.info(
            "listening",
            ["address": "http://\(configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host):\(port)",
             "threads": String(configuration.threads), "hash_workers": String(configuration.hashWorkers)])
        return port
    }

    /// The bound port (0 before `start`).
    public var port: UInt16 { server.port }

    /// Stops accepting, finishes requests in flight, stops the hashing
    /// workers and closes the store.
    public func shutdown() {
        server.shutdown()
        hashingPool.shutdown()
        storePool.shutdown()
        store.close()
        logger.info("stopped")
    }
}

/// Builds the application `configuration` describes: creates the data
/// directory, opens the store, loads (or generates) the signing secret, and
/// wires every controller's routes.
///
/// - Parameters:
///   - configuration: validated settings.
///   - logger: where everything is logged.
///   - clock: the source of "now" for every time check.
public func buildApplication(
    configuration: Configuration, logger: Logger = Logger(), clock: WallClock = .system
) throws -> Application {
    try SecretFile.ensureDirectory(configuration.dataDirectory)
    let secret = try configuration.jwtSecret ?? SecretFile.loadOrCreate(in: configuration.dataDirectory)
    let key = try SigningKey.hmac(secret: Array(secret.utf8), algorithm: .hs256)

    let store: SQLiteStore
    do {
        store = try SQLiteStore(path: configuration.databasePath)
    } catch {
        throw ConfigurationError("could not open the database \(configuration.databasePath): \(error)")
    }
    // It holds password hashes: owner only. SQLite gives its -wal and -shm
    // files the database file's permissions.
    chmod(configuration.databasePath, 0o600)

    // Sessions revoked before this start stay refused.
    let revocations = RevocationList()
    revocations.load(try store.revokedSessions(now: clock.seconds), now: clock.seconds)
    let tokens = TokenService(
        keyRing: KeyRing(signingKey: key), revocations: revocations, accessTTL: configuration.accessTTL,
        issuer: configuration.issuer, audience: configuration.audience, leeway: configuration.leeway, clock: clock)

    // Niceness 10: where hashing and HTTP threads share a core, token checks win.
    let hashingPool = try WorkerPool(
        name: "hash", workers: configuration.hashWorkers, queueLimit: configuration.hashQueueLimit, niceness: 10)
    // Store writes (refresh, logout) stay off the HTTP threads too, and never
    // queue behind password hashing.
    let storePool = try WorkerPool(name: "store", workers: 2, queueLimit: configuration.hashQueueLimit)
    let hasher = try PasswordHasher(parameters: configuration.argon2)
    if configuration.argon2.memoryKiB < Argon2Parameters().memoryKiB {
        logger.warning(
            "Argon2 memory cost is below the OWASP minimum", ["memory_kib": String(configuration.argon2.memoryKiB)])
    }

    let audit = AuditLog(logger: logger, proxies: configuration.trustedProxies)
    let limits = RateLimits(configuration.rateLimits, audit: audit, clock: clock)

    var router = Router()
    ServiceController().addRoutes(to: &router)
    AccountController(
        store: store, hasher: hasher, hashingPool: hashingPool, storePool: storePool, tokens: tokens,
        refreshTTL: configuration.refreshTTL, clock: clock, limits: limits, audit: audit
    ).addRoutes(to: &router)
    SessionController(
        store: store, hasher: hasher, hashingPool: hashingPool, storePool: storePool, tokens: tokens,
        refreshTTL: configuration.refreshTTL, clock: clock, limits: limits, audit: audit
    ).addRoutes(to: &router)
    ProtectedController(tokens: tokens).addRoutes(to: &router)

    let server = HTTPServer(
        configuration: configuration.httpServer, router: router,
        cors: CORSPolicy(allowedOrigins: configuration.corsOrigins), filters: [SecurityHeadersFilter()],
        logger: logger)
    return Application(
        configuration: configuration, server: server, tokens: tokens, store: store, hashingPool: hashingPool,
        storePool: storePool, logger: logger)
}
