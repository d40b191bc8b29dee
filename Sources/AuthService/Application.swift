import Foundation
import JOSE
public import MicroHTTP

/// A configured Gatehouse: store open, keys loaded, routes wired, ready to
/// serve. `main.swift` and the end-to-end tests build exactly this.
public final class Application: Sendable {
    public let configuration: Configuration
    public let server: HTTPServer
    public let tokens: TokenService
    let store: any UserStore
    let hashingPool: WorkerPool
    let storePool: WorkerPool
    let logger: Logger
    /// Brings sessions other processes end into `tokens.revocations`.
    public let revocationFeed: RevocationFeed
    /// PostgreSQL only: makes the feed poll at once when another instance ends a session.
    let revocationListener: PostgresListener?

    /// How often, in seconds, the store is asked for sessions other processes ended by default
    /// (`GATEHOUSE_REVOCATION_POLL_MS`): a `gatehouse users ...` change reaches the running service
    /// within this (and one store read); on PostgreSQL a notification brings it at once.
    public static let revocationPollInterval = 0.25

    init(
        configuration: Configuration, server: HTTPServer, tokens: TokenService, store: any UserStore,
        hashingPool: WorkerPool, storePool: WorkerPool, logger: Logger, revocationFeed: RevocationFeed,
        revocationListener: PostgresListener?
    ) {
        self.revocationFeed = revocationFeed
        self.revocationListener = revocationListener
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
        tokens.keys.startWatching(interval: Double(configuration.keyReloadInterval))
        revocationFeed.start(interval: Double(configuration.revocationPollMilliseconds) / 1000)
        if let revocationListener {
            revocationListener.start()
            // The store answered a moment ago, so this takes milliseconds; /readyz says 503 until then.
            if !revocationListener.waitUntilReady(timeout: 5) {
                logger.warning(
                    "the revocation listener is not connected yet; /readyz answers 503 until it is",
                    ["reason": revocationListener.notReadyReason ?? ""])
            }
        }
        logger.info(
            "listening",
            ["address": "http://\(configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host):\(port)",
             "threads": String(configuration.threads), "hash_workers": String(configuration.hashWorkers)])
        return port
    }

    /// Reads the managed signing keys again (what `SIGHUP` does).
    /// - Returns: whether the keys in force changed.
    @discardableResult
    public func reloadKeys() -> Bool {
        logger.info("reloading the signing keys")
        return tokens.keys.reload()
    }

    /// The bound port (0 before `start`).
    public var port: UInt16 { server.port }

    /// Stops accepting, finishes requests in flight, stops the hashing
    /// workers and closes the store.
    public func shutdown() {
        tokens.keys.stopWatching()
        server.shutdown()
        // The listener first: it calls the feed. Both before the store closes.
        revocationListener?.stop()
        revocationFeed.stop()
        hashingPool.shutdown()
        storePool.shutdown()
        store.close()
        logger.info("stopped")
        logger.flush()
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
    let store: any UserStore
    do {
        store = try openStore(configuration: configuration)
    } catch {
        throw ConfigurationError("could not open the database (\(configuration.storeDescription)): \(error)")
    }
    let keys: KeyManager
    do {
        keys = try loadKeys(configuration: configuration, store: store, logger: logger, clock: clock)
    } catch {
        store.close()
        throw error
    }
    if configuration.postgresURL == nil {
        // It holds password hashes: owner only. SQLite gives its -wal and -shm
        // files the database file's permissions.
        chmod(configuration.databasePath, 0o600)
    }

    // Sessions revoked before this start stay refused; the feed brings in the ones ended from now
    // on by other processes (the cursor is read first, so none falls between the two reads).
    let revocations = RevocationList()
    let revocationCursor = try store.revocationCursor()
    revocations.load(try store.revokedSessions(now: clock.seconds), now: clock.seconds)
    let revocationFeed = RevocationFeed(
        store: store, revocations: revocations, cursor: revocationCursor, clock: clock, logger: logger)
    // With PostgreSQL, managed keys live there too: a change is heard at once.
    var keysChanged: (@Sendable () -> Void)?
    if keys.isManaged { keysChanged = { @Sendable in keys.reloadSoon() } }
    let revocationListener = configuration.postgresURL.map {
        PostgresListener(url: $0, feed: revocationFeed, keysChanged: keysChanged, logger: logger)
    }
    let metrics = GatehouseMetrics()
    let tokens = TokenService(
        keys: keys, revocations: revocations, accessTTL: configuration.accessTTL, issuer: configuration.issuer,
        audience: configuration.audience, clock: clock, metrics: metrics)

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
    let limits = RateLimits(configuration.rateLimits, audit: audit, clock: clock, metrics: metrics)
    let registry = MetricsRegistry()
    metrics.register(in: registry, hashingPool: hashingPool, storePool: storePool, tokens: tokens)

    var router = Router()
    var readinessProblem: (@Sendable () -> String?)?
    if let revocationListener {
        readinessProblem = { revocationListener.notReadyReason }
    }
    ServiceController(
        store: store, storePool: storePool, logger: logger,
        readinessProblem: readinessProblem
    ).addRoutes(to: &router)
    AccountController(
        store: store, hasher: hasher, hashingPool: hashingPool, storePool: storePool, tokens: tokens,
        refreshTTL: configuration.refreshTTL, clock: clock, limits: limits, audit: audit, metrics: metrics,
        defaultRoles: configuration.defaultRoles
    ).addRoutes(to: &router)
    SessionController(
        store: store, hasher: hasher, hashingPool: hashingPool, storePool: storePool, tokens: tokens,
        refreshTTL: configuration.refreshTTL, clock: clock, limits: limits, audit: audit, metrics: metrics
    ).addRoutes(to: &router)
    ProtectedController(tokens: tokens).addRoutes(to: &router)
    ForwardAuthController(tokens: tokens).addRoutes(to: &router)
    AdminController(
        store: store, storePool: storePool, tokens: tokens, refreshTTL: configuration.refreshTTL, clock: clock,
        audit: audit
    ).addRoutes(to: &router)
    KeysController(keys: keys, maxAge: configuration.jwksMaxAge).addRoutes(to: &router)
    if configuration.metrics { MetricsController(registry: registry).addRoutes(to: &router) }
    try OpenAPIController().addRoutes(to: &router)

    // Browsers may send X-Request-Id and read the one that comes back.
    let cors = CORSPolicy(
        allowedOrigins: configuration.corsOrigins,
        allowedHeaders: ["Authorization", "Content-Type", RequestID.headerName],
        exposedHeaders: ["WWW-Authenticate", "Retry-After", RequestID.headerName])
    let server = HTTPServer(
        configuration: configuration.httpServer, router: router, cors: cors, filters: [SecurityHeadersFilter()],
        logger: logger, metrics: configuration.metrics ? registry : nil, metricPrefix: "gatehouse_http",
        requestLog: configuration.accessLog)
    registry.registerProcessMetrics()
    return Application(
        configuration: configuration, server: server, tokens: tokens, store: store, hashingPool: hashingPool,
        storePool: storePool, logger: logger, revocationFeed: revocationFeed, revocationListener: revocationListener)
}

/// Opens the store `configuration` names: PostgreSQL when `GATEHOUSE_DATABASE_URL`
/// is a `postgres://` or `postgresql://` URL (with a pool of
/// `GATEHOUSE_DB_POOL_SIZE` connections), else the SQLite file, created if
/// missing. Either way its schema is brought up to date first.
func openStore(configuration: Configuration) throws(StoreError) -> any UserStore {
    if let url = configuration.postgresURL {
        return try PostgresStore(url: url, poolSize: configuration.databasePoolSize)
    }
    return try SQLiteStore(path: configuration.databasePath)
}

/// Where the managed signing keys of `configuration` are: in PostgreSQL when
/// the store is there (shared by every instance), else in the data directory.
func keyStorage(configuration: Configuration, store: any UserStore) -> any KeyStorage {
    if let store = store as? PostgresStore {
        return PostgresKeyStorage(store: store, description: configuration.storeDescription)
    }
    return KeyDirectory(dataDirectory: configuration.dataDirectory)
}

/// The signing keys `configuration` names: the configured one, or the
/// managed ones (``keyStorage(configuration:store:)``; made on the first
/// start, a new one of the configured algorithm when that changed).
func loadKeys(
    configuration: Configuration, store: any UserStore, logger: Logger, clock: WallClock
) throws -> KeyManager {
    let policy = TokenService.policy(
        issuer: configuration.issuer, audience: configuration.audience, leeway: configuration.leeway)
    let algorithm = configuration.signingAlgorithm
    if let secret = configuration.jwtSecret {
        let key = try SigningKey.hmac(secret: Array(secret.utf8), algorithm: algorithm)
        return KeyManager(ring: KeyRing(signingKey: key), policy: policy, clock: clock, logger: logger)
    }
    if let path = configuration.signingKeyFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("could not read GATEHOUSE_SIGNING_KEY_FILE \(path)")
        }
        let key: AsymmetricKey
        do {
            key = try AsymmetricKey(pem: String(decoding: data, as: UTF8.self), algorithm: algorithm)
        } catch {
            throw ConfigurationError("GATEHOUSE_SIGNING_KEY_FILE \(path) is not a usable \(algorithm.rawValue) key: \(error)")
        }
        guard key.hasPrivateKey else {
            throw ConfigurationError("GATEHOUSE_SIGNING_KEY_FILE \(path) holds a public key; a private key is needed to sign")
        }
        return KeyManager(
            ring: KeyRing(signingKey: .asymmetric(key)), policy: policy,
            signatureCacheCapacity: configuration.signatureCacheSize, clock: clock, logger: logger)
    }
    let storage = keyStorage(configuration: configuration, store: store)
    let tokenLifetime = Int64(configuration.accessTTL + configuration.leeway)
    let rotation = KeyRotation(storage: storage, tokenLifetime: tokenLifetime)
    switch try rotation.prepare(algorithm: algorithm, now: clock.seconds) {
    case .unchanged:
        break
    case .created(let key):
        logger.info(
            "signing key created",
            ["kid": key.kid, "alg": key.algorithm.rawValue, "where": key.file.isEmpty ? storage.location : key.file])
    case .algorithmChanged(let previous, let key):
        logger.warning(
            "signing algorithm changed: a new key signs from now on; the old keys verify until their tokens expire",
            ["from": previous.rawValue, "to": key.algorithm.rawValue, "kid": key.kid])
    }
    return try KeyManager(
        storage: storage, policy: policy, tokenLifetime: tokenLifetime,
        signatureCacheCapacity: configuration.signatureCacheSize, clock: clock, logger: logger)
}
