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

/// Path routing with method dispatch. Built before the server starts, then
/// read-only.
///
/// A path is either exact (`/me`) or a template whose whole segments may be
/// parameters (`/admin/users/{id}`, `/admin/users/{id}/logout`): a parameter
/// matches one non-empty segment, and the handler finds its value with
/// `Request.pathParameter(_:)`. An exact path wins over a template; among
/// templates, the first registered that matches wins. Templates are also the
/// metrics' `route` label, so parameter values never multiply the series.
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
    /// The templates among the paths, in registration order.
    private var templates: [PathTemplate] = []

    public init() {}

    private mutating func update(_ path: String, _ change: (inout Route) -> Void) {
        let id = routes.count
        if routes[path] == nil, let template = PathTemplate(path) { templates.append(template) }
        change(&routes[path, default: Route(id: id)])
    }

    /// `handler`, filling in the request's path parameters first when `path` is a template.
    private func binding<Result>(
        _ path: String, _ handler: @escaping @Sendable (Request) throws -> Result
    ) -> @Sendable (Request) throws -> Result {
        guard let template = PathTemplate(path) else { return handler }
        return { request in
            var request = request
            request.pathParameters = template.parameters(in: request.path) ?? [:]
            return try handler(request)
        }
    }

    /// Answers `path` for every method, known or not (no 405, no 501, no CORS
    /// preflight), and never reads a request body there: it is discarded as
    /// it arrives, whatever its size (no 413). For forward-auth endpoints,
    /// where a reverse proxy asks with the method of the request it guards
    /// and would turn any answer but 2xx, 401 and 403 into a 500.
    public mutating func anyMethod(_ path: String, _ handler: @escaping @Sendable (Request) throws -> Response) {
        let handler = binding(path, handler)
        update(path) { $0.anyMethod = handler }
    }

    /// The handler `anyMethod` registered for `path`, if any.
    public func anyMethodHandler(for path: String) -> (@Sendable (Request) throws -> Response)? {
        route(for: path)?.anyMethod
    }

    /// Adds a handler for `method` on `path`: an exact path, or a template
    /// with `{name}` segments.
    public mutating func add(_ method: HTTPMethod, _ path: String, _ handler: Handler) {
        let bound: Handler
        switch handler {
        case .immediate(let body):
            bound = .immediate(binding(path, body))
        case .offloaded(let pool, let body, let admission):
            // Admission sees the parameters too.
            bound = .offloaded(pool, binding(path, body), admission: admission.map { binding(path, $0) })
        }
        update(path) { $0.methods[method] = bound }
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

    /// The methods `path` (a request path, or a registered template) answers,
    /// sorted, with HEAD wherever GET is.
    public func allowedMethods(for path: String) -> [HTTPMethod] {
        route(for: path)?.allowedMethods ?? []
    }

    /// Finds the handler for a method and path. HEAD uses the GET handler
    /// (libmicrohttpd drops the body).
    public func match(_ method: HTTPMethod, _ path: String) -> Match {
        route(for: path)?.match(method) ?? .notFound
    }

    /// Every registered path (templates as written), sorted.
    public var paths: [String] { routes.keys.sorted() }

    /// Every registered path in the order of `Route.id`: the `route` label of
    /// the request metrics.
    public var routePaths: [String] {
        var paths = [String](repeating: "", count: routes.count)
        for (path, route) in routes { paths[route.id] = path }
        return paths
    }

    /// Everything registered for `path`, made once per request: one hash
    /// lookup, then (only when that finds nothing) the templates in order.
    func route(for path: String) -> Route? {
        if let route = routes[path] { return route }
        for template in templates where template.matches(path) { return routes[template.path] }
        return nil
    }
}

/// A path with `{name}` segments, such as `/admin/users/{id}/logout`.
struct PathTemplate: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(Substring)
        case parameter(String)
    }

    /// The template as registered.
    let path: String
    let segments: [Segment]

    /// Nil when `path` has no `{`: an exact path. A `{` anywhere but around
    /// a whole segment is a mistake in the code that registers it.
    init?(_ path: String) {
        guard path.contains("{") else { return nil }
        self.path = path
        segments = path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            guard segment.contains("{") || segment.contains("}") else { return .literal(segment) }
            let name = segment.dropFirst().dropLast()
            precondition(
                segment.first == "{" && segment.last == "}" && !name.isEmpty && !name.contains("{")
                    && !name.contains("}"),
                "a route template's parameter must be a whole segment, {name}: \(path)")
            return .parameter(String(name))
        }
    }

    /// Whether `path` fits: as many segments, literals equal, parameters non-empty.
    func matches(_ path: String) -> Bool { parameters(in: path) != nil }

    /// The parameters' values in `path`, or nil when it does not fit.
    func parameters(in path: String) -> [String: String]? {
        var values: [String: String] = [:]
        var index = 0
        for part in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard index < segments.count else { return nil }
            switch segments[index] {
            case .literal(let literal):
                guard part == literal else { return nil }
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                values[name] = String(part)
            }
            index += 1
        }
        return index == segments.count ? values : nil
    }
}
