import JSON
public import MicroHTTP
import Synchronization

/// `GET /`, `GET /healthz` and `GET /readyz`: what this is, whether it is
/// alive, and whether it can serve.
public struct ServiceController: Sendable {
    let store: any UserStore
    let storePool: WorkerPool
    let logger: Logger
    let readinessProblem: (@Sendable () -> String?)?
    let readiness = ReadinessState()

    /// - Parameters:
    ///   - store: probed by `/readyz` (`UserStore.ping`).
    ///   - storePool: where the probe runs, off the HTTP threads like every
    ///     other store call.
    ///   - logger: where changes of readiness are logged.
    ///   - readinessProblem: asked after the store answered: a reason not to be ready yet, or nil
    ///     (PostgreSQL: the revocation listener is disconnected or has not caught up,
    ///     `PostgresListener.notReadyReason`; nil with SQLite).
    public init(
        store: any UserStore, storePool: WorkerPool, logger: Logger,
        readinessProblem: (@Sendable () -> String?)? = nil
    ) {
        self.store = store
        self.storePool = storePool
        self.logger = logger
        self.readinessProblem = readinessProblem
    }

    public func addRoutes(to router: inout Router) {
        router.get("/", root)
        router.get("/healthz", health)
        router.add(.get, "/readyz", on: storePool, ready)
    }

    @Sendable public func root(_ request: Request) -> Response { .jsonBytes(Self.rootBody) }

    /// Liveness: the process answers HTTP. Never touches the store.
    @Sendable public func health(_ request: Request) -> Response { .jsonBytes(Self.healthBody) }

    /// Readiness: 200 `{"status":"ready"}` when the store answers within its
    /// ping bound (SQLite: the database file it opened is still there and its
    /// write lock can be taken, `SQLiteStore.ping`; PostgreSQL: a connection
    /// answers `SELECT 1`, `PostgresStore.ping`, and the revocation listener is
    /// connected and has read what it missed, `PostgresListener`); else 503 `not_ready` with
    /// `Retry-After`, the reason in the log. Runs on the store pool, off the
    /// HTTP threads; a full pool answers 503 `overloaded`, which a probe
    /// counts as not ready too. The first failure after a success, and the
    /// first success after a failure, are logged.
    ///
    /// The signing keys need no probe: an `Application` is never built
    /// without them (`buildApplication` throws), and `KeyManager` keeps the
    /// keys in force when a reload fails.
    @Sendable public func ready(_ request: Request) throws(AuthError) -> Response {
        let problem: (reason: String, answer: AuthError)?
        do {
            try store.ping()
            problem = readinessProblem?().map { ($0, AuthError.notCaughtUp) }
        } catch {
            problem = (error.description, AuthError.notReady)
        }
        let wasReady = readiness.ready.exchange(problem == nil, ordering: .relaxed)
        guard let problem else {
            if !wasReady { logger.info("ready again") }
            return .jsonBytes(Self.readyBody, headers: ["Cache-Control": "no-store"])
        }
        if wasReady { logger.warning("not ready", ["error": problem.reason]) }
        throw problem.answer
    }

    private static let rootBody = JSONValue.object([
        "service": "gatehouse", "version": .string(Version.current),
    ]).serialized()
    private static let healthBody = JSONValue.object(["status": "ok"]).serialized()
    private static let readyBody = JSONValue.object(["status": "ready"]).serialized()
}

/// Whether the last readiness probe passed, so that only changes are logged.
final class ReadinessState: Sendable {
    let ready = Atomic<Bool>(true)
}

extension AuthError {
    /// `/readyz`: the service cannot serve right now. The reason goes to the
    /// log, not to the caller.
    static let notReady = AuthError(
        503, "not_ready", "The service is not ready: its user store does not answer; retry shortly.",
        headers: ["Retry-After": "5", "Cache-Control": "no-store"])

    /// `/readyz`: the store answers, but the instance may be missing sessions
    /// ended elsewhere (PostgreSQL's revocation listener is disconnected, or
    /// has not read what it missed yet).
    static let notCaughtUp = AuthError(
        503, "not_ready",
        "The service is not ready: it may have missed sessions ended on other instances; retry shortly.",
        headers: ["Retry-After": "5", "Cache-Control": "no-store"])
}

/// The release this binary is.
public enum Version {
    public static let current = "0.1.0"
}
