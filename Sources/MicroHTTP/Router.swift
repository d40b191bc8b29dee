/// How a route answers: at once on the server's thread, or on a worker pool
/// with the connection suspended while the slow work (a password hash, say) runs.
public enum Handler: Sendable {
    /// Runs on the libmicrohttpd thread that read the request. Must not block.
    case immediate(@Sendable (Request) throws -> Response)
    /// Runs on one of `pool`'s threads, where blocking is fine; the connection
    /// is suspended until it returns. A full pool queue is answered 503 at once.
    /// `admission`, when given, runs first on the server's thread: what it
    /// throws is the answer, without queueing (a rate limit, say, must not
    /// wait behind the password hashes it is there to spare).
    case offloaded(
        WorkerPool, @Sendable (Request) throws -> Response, admission: (@Sendable (Request) throws -> Void)? = nil)
}

/// Exact-path routing with method dispatch. Built before the server starts,
/// then read-only.
public struct Router: Sendable {
    /// What a lookup found.
    public enum Match: Sendable {
        case handler(Handler)
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    private var routes: [String: [HTTPMethod: Handler]] = [:]
    /// Paths answered for every method, whose request bodies are never read.
    private var anyMethodRoutes: [String: @Sendable (Request) throws -> Response] = [:]

    public init() {}

    /// Answers `path` for every method, known or not (no 405, no 501, no CORS
    /// preflight), and never reads a request body there: it is discarded as
    /// it arrives, whatever its size (no 413). For forward-auth endpoints,
    /// where a reverse proxy asks with the method of the request it guards
    /// and would turn any answer but 2xx, 401 and 403 into a 500.
    public mutating func anyMethod(_ path: String, _ handler: @escaping @Sendable (Request) throws -> Response) {
        anyMethodRoutes[path] = handler
    }

    /// The handler `anyMethod` registered for `path`, if any.
    public func anyMethodHandler(for path: String) -> (@Sendable (Request) throws -> Response)? {
        anyMethodRoutes[path]
    }

    /// Adds a handler for `method` on `path` (exact match, no patterns).
    public mutating func add(_ method: HTTPMethod, _ path: String, _ handler: Handler) {
        routes[path, default: [:]][method] = handler
    }

    public mutating func get(_ path: String, _ handler: @escaping @Sendable (Request) throws -> Response) {
        add(.get, path, .immediate(handler))
    }

    public mutating func post(_ path: String, _ handler: @escaping @Sendable (Request) throws -> Response) {
        add(.post, path, .immediate(handler))
    }

    /// Adds a handler that runs on `pool`, off the server's threads, after
    /// `admission` (if any) let the request through on the server's thread.
    public mutating func add(
        _ method: HTTPMethod, _ path: String, on pool: WorkerPool,
        admission: (@Sendable (Request) throws -> Void)? = nil,
        _ handler: @escaping @Sendable (Request) throws -> Response
    ) {
        add(method, path, .offloaded(pool, handler, admission: admission))
    }

    /// The methods `path` answers, sorted, with HEAD wherever GET is.
    public func allowedMethods(for path: String) -> [HTTPMethod] {
        guard let methods = routes[path] else { return [] }
        var allowed = Set(methods.keys)
        if allowed.contains(.get) { allowed.insert(.head) }
        allowed.insert(.options)
        return allowed.sorted { $0.rawValue < $1.rawValue }
    }

    /// Finds the handler for a method and path. HEAD uses the GET handler
    /// (libmicrohttpd drops the body).
    public func match(_ method: HTTPMethod, _ path: String) -> Match {
        guard let methods = routes[path] else { return .notFound }
        if let handler = methods[method] { return .handler(handler) }
        if method == .head, let handler = methods[.get] { return .handler(handler) }
        return .methodNotAllowed(allowed: allowedMethods(for: path))
    }

    /// Every registered path, sorted.
    public var paths: [String] { Set(routes.keys).union(anyMethodRoutes.keys).sorted() }
}
