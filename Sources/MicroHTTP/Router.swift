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

    /// Everything registered for one path, found with one lookup per request.
    struct Route: Sendable {
        /// The path's number: 0, 1, 2, ... in the order paths were first
        /// registered; its place in `routePaths` (and in the metrics tables).
        let id: Int
        var methods: [HTTPMethod: Handler] = [:]
        /// Answers every method, and the body is never read (`anyMethod`).
        var anyMethod: (@Sendable (Request) throws -> Response)?

        /// The methods the path answers, sorted, with HEAD wherever GET is.
        var allowedMethods: [HTTPMethod] {
            guard !methods.isEmpty else { return [] }
            var allowed = Set(methods.keys)
            if allowed.contains(.get) { allowed.insert(.head) }
            allowed.insert(.options)
            return allowed.sorted { $0.rawValue < $1.rawValue }
        }

        /// The handler for `method`; HEAD uses the GET handler (libmicrohttpd drops the body).
        func match(_ method: HTTPMethod) -> Match {
            guard !methods.isEmpty else { return .notFound }
            if let handler = methods[method] { return .handler(handler) }
            if method == .head, let handler = methods[.get] { return .handler(handler) }
            return .methodNotAllowed(allowed: allowedMethods)
        }
    }

    private var routes: [String: Route] = [:]

    public init() {}

    private mutating func update(_ path: String, _ change: (inout Route) -> Void) {
        let id = routes.count
        change(&routes[path, default: Route(id: id)])
    }

    /// Answers `path` for every method, known or not (no 405, no 501, no CORS
    /// preflight), and never reads a request body there: it is discarded as
    /// it arrives, whatever its size (no 413). For forward-auth endpoints,
    /// where a reverse proxy asks with the method of the request it guards
    /// and would turn any answer but 2xx, 401 and 403 into a 500.
    public mutating func anyMethod(_ path: String, _ handler: @escaping @Sendable (Request) throws -> Response) {
        update(path) { $0.anyMethod = handler }
    }

    /// The handler `anyMethod` registered for `path`, if any.
    public func anyMethodHandler(for path: String) -> (@Sendable (Request) throws -> Response)? {
        routes[path]?.anyMethod
    }

    /// Adds a handler for `method` on `path` (exact match, no patterns).
    public mutating func add(_ method: HTTPMethod, _ path: String, _ handler: Handler) {
        update(path) { $0.methods[method] = handler }
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
        routes[path]?.allowedMethods ?? []
    }

    /// Finds the handler for a method and path. HEAD uses the GET handler
    /// (libmicrohttpd drops the body).
    public func match(_ method: HTTPMethod, _ path: String) -> Match {
        routes[path]?.match(method) ?? .notFound
    }

    /// Every registered path, sorted.
    public var paths: [String] { routes.keys.sorted() }

    /// Every registered path in the order of `Route.id`: the `route` label of
    /// the request metrics.
    public var routePaths: [String] {
        var paths = [String](repeating: "", count: routes.count)
        for (path, route) in routes { paths[route.id] = path }
        return paths
    }

    /// Everything registered for `path`: one hash lookup, made once per request.
    func route(for path: String) -> Route? { routes[path] }
}
