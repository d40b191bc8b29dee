import Foundation
import Synchronization

/// Why the server could not start.
public struct HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// An HTTP/1.1 server over libmicrohttpd: an epoll thread pool that runs
/// `Router` handlers, applies the CORS policy and response filters to every
/// answer, and stops gracefully.
///
/// Lifecycle: `init`, `start()` (binds and serves), `shutdown()` (stops
/// accepting, lets requests in flight finish within the grace period, then
/// closes every connection). A server is started at most once.
public final class HTTPServer: Sendable {
    let core: ServerCore
    private let daemon = LockedValue<Daemon?>(nil)
    private let started = Atomic<Bool>(false)
    private let boundPort = Atomic<UInt16>(0)

    /// - Parameters:
    ///   - configuration: address, threads, limits.
    ///   - router: the routes; read-only from here on.
    ///   - cors: answers preflights and adds CORS headers to every response.
    ///   - filters: applied to every response after CORS, in order.
    ///   - logger: where the server reports failures of its own.
    public init(
        configuration: HTTPServerConfiguration,
        router: Router,
        cors: CORSPolicy = CORSPolicy(),
        filters: [any ResponseFilter] = [SecurityHeadersFilter()],
        logger: Logger = Logger()
    ) {
        core = ServerCore(
            configuration: configuration, router: router, cors: cors, filters: filters, logger: logger)
    }

    /// Binds the listening socket and starts the thread pool.
    /// - Returns: the bound port (the one picked when the configuration said 0).
    @discardableResult
    public func start() throws(HTTPServerError) -> UInt16 {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { throw HTTPServerError("the server was already started") }
        ensureDescriptorLimit(for: core.configuration.connectionLimit, logger: core.logger)
        let running: Daemon
        do {
            running = try Daemon.start(core: core)
        } catch {
            started.store(false, ordering: .releasing)
            throw error
        }
        daemon.withLock { $0 = running }
        boundPort.store(running.port, ordering: .releasing)
        return running.port
    }

    /// The bound port, or 0 before `start()`.
    public var port: UInt16 { boundPort.load(ordering: .acquiring) }

    /// Requests being handled right now (read, waiting on work, or being sent).
    public var requestsInFlight: Int { core.inFlight.load(ordering: .relaxed) }

    /// Stops accepting connections, waits up to the grace period for requests
    /// in flight, answers any still-suspended request with 503, then closes
    /// every connection and joins the threads. Safe to call more than once.
    public func shutdown() {
        guard let running = daemon.withLock({ current -> Daemon? in
            let taken = current
            current = nil
            return taken
        }) else { return }
        running.stop(gracePeriod: core.configuration.shutdownGracePeriod)
    }

    deinit { shutdown() }
}

/// What the C callbacks reach through their closure pointer. Immutable but
/// for the counters and the registry of suspended connections.
final class ServerCore: Sendable {
    let configuration: HTTPServerConfiguration
    let router: Router
    let cors: CORSPolicy
    let filters: [any ResponseFilter]
    let logger: Logger
    let inFlight = Atomic<Int>(0)
    /// Suspended connections by request, so shutdown can resume each one.
    let suspended = LockedValue<[ObjectIdentifier: SuspendedRequest]>([:])
    /// Per-address connection limit and request deadlines.
    let connections: ConnectionGuard

    init(
        configuration: HTTPServerConfiguration, router: Router, cors: CORSPolicy, filters: [any ResponseFilter],
        logger: Logger
    ) {
        self.configuration = configuration
        self.router = router
        self.cors = cors
        self.filters = filters
        self.logger = logger
        connections = ConnectionGuard(configuration: configuration, logger: logger)
    }

    /// Routes a complete request to its answer: a response now, or an offloaded
    /// handler to run with the connection suspended.
    func dispatch(_ request: Request) -> Dispatch {
        if let handler = router.anyMethodHandler(for: request.path) {
            return .respond(run(handler, request))
        }
        guard HTTPMethod.known.contains(request.method) else {
            return .respond(HTTPError.notImplemented(request.method).response)
        }
        if request.method == .options {
            return .respond(cors.preflight(request, allowedMethods: router.allowedMethods(for: request.path)))
        }
        switch router.match(request.method, request.path) {
        case .notFound:
            return .respond(HTTPError.notFound(request.path).response)
        case .methodNotAllowed(let allowed):
            return .respond(HTTPError.methodNotAllowed(request.method, allowed: allowed).response)
        case .handler(.immediate(let handler)):
            return .respond(run(handler, request))
        case .handler(.offloaded(let pool, let handler, let admission)):
            if let admission {
                do {
                    try admission(request)
                } catch {
                    return .respond(render(error, for: request))
                }
            }
            return .offload(pool, handler)
        }
    }

    enum Dispatch {
        case respond(Response)
        case offload(WorkerPool, @Sendable (Request) throws -> Response)
    }

    /// Runs a handler, rendering whatever it throws.
    func run(_ handler: (Request) throws -> Response, _ request: Request) -> Response {
        do {
            return try handler(request)
        } catch {
            return render(error, for: request)
        }
    }

    /// The response for an error thrown by a handler: its own rendering if it
    /// has one, else a logged 500 that reveals nothing.
    func render(_ error: any Error, for request: Request) -> Response {
        if let error = error as? any HTTPResponseError { return error.response }
        logger.error(
            "unhandled error", ["method": request.method.rawValue, "path": request.path, "error": "\(error)"])
        return HTTPError.internalError.response
    }

    /// Applies CORS and the filters: the last step before a response is sent.
    func finish(_ response: Response, for request: Request?) -> Response {
        var response = response
        if let request {
            cors.apply(to: &response, for: request)
            for filter in filters { filter.apply(to: &response, for: request) }
        } else {
            for filter in filters { filter.apply(to: &response, for: Request(method: .get, path: "/")) }
        }
        return response
    }
}

/// A suspended connection and the request it belongs to.
struct SuspendedRequest: Sendable {
    let context: RequestContext
    let connection: ConnectionHandle
}
