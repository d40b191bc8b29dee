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
    ///   - logger: where the server reports failures of its own (and the
    ///     request log, when `requestLog` is on).
    ///   - metrics: where to export per-route request counts and durations,
    ///     `<metricPrefix>_requests_total{route,method,status}` and
    ///     `<metricPrefix>_request_duration_seconds{route}`; nil: none are kept.
    ///   - metricPrefix: the start of those metric names.
    ///   - requestLog: log one `info` line per request, when it ends: method,
    ///     path (never the query), status (0: none was sent), duration, client
    ///     address (through `configuration.trustedProxies`) and request id.
    public init(
        configuration: HTTPServerConfiguration,
        router: Router,
        cors: CORSPolicy = CORSPolicy(),
        filters: [any ResponseFilter] = [SecurityHeadersFilter()],
        logger: Logger = Logger(),
        metrics: MetricsRegistry? = nil,
        metricPrefix: String = "http",
        requestLog: Bool = false
    ) {
        var requestMetrics: HTTPRequestMetrics?
        if let metrics {
            // A shard per HTTP thread: only they record.
            let recorder = HTTPRequestMetrics(
                prefix: metricPrefix, routes: router.routePaths, shards: configuration.threads)
            metrics.register(recorder)
            requestMetrics = recorder
        }
        let core = ServerCore(
            configuration: configuration, router: router, cors: cors, filters: filters, logger: logger,
            requestMetrics: requestMetrics, requestLog: requestLog)
        self.core = core
        metrics?.gauge(
            metricPrefix + "_requests_in_flight", help: "Requests begun and not ended (read, being worked on, or sent)."
        ) { Double(core.inFlight.load(ordering: .relaxed)) }
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

    /// Stops taking on requests, waits up to the grace period for requests
    /// in flight, answers any still-suspended request with 503, then closes
    /// every connection and joins the threads. Safe to call more than once.
    ///
    /// From the call on, a request that has not begun (its header section
    /// not yet handed to Gatehouse) is refused: its connection is closed
    /// without a byte of answer, so the client knows it was not acted on.
    /// Answers to requests in flight carry `Connection: close`. The listening
    /// socket stays open until the daemon stops (see `Daemon.stop`), so new
    /// connections are accepted and closed the same way until then.
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
    /// Set by shutdown: requests not yet begun are refused (the connection
    /// closed without a byte of answer), and answers to the ones in flight
    /// carry `Connection: close`.
    let draining = Atomic<Bool>(false)
    /// Set, under `suspended`'s lock, once shutdown has resumed every
    /// suspended connection: from then on none is suspended (read under that lock).
    let suspensionsClosed = Atomic<Bool>(false)
    /// Suspended connections by request, so shutdown can resume each one.
    let suspended = LockedValue<[ObjectIdentifier: SuspendedRequest]>([:])
    /// Per-address connection limit and request deadlines.
    let connections: ConnectionGuard
    /// Request counts and durations by route; nil when not kept.
    let requestMetrics: HTTPRequestMetrics?
    /// Whether each request is logged when it ends.
    let requestLog: Bool

    init(
        configuration: HTTPServerConfiguration, router: Router, cors: CORSPolicy, filters: [any ResponseFilter],
        logger: Logger, requestMetrics: HTTPRequestMetrics? = nil, requestLog: Bool = false
    ) {
        self.configuration = configuration
        self.router = router
        self.cors = cors
        self.filters = filters
        self.logger = logger
        self.requestMetrics = requestMetrics
        self.requestLog = requestLog
        connections = ConnectionGuard(configuration: configuration, logger: logger)
    }

    /// Routes a complete request to its answer: a response now, or an offloaded
    /// handler to run with the connection suspended.
    /// - Parameters:
    ///   - request: the whole request.
    ///   - route: what the router holds for its path (`Router.route(for:)`,
    ///     looked up once, when the request began).
    func dispatch(_ request: Request, route: Router.Route?) -> Dispatch {
        if let handler = route?.anyMethod {
            return .respond(run(handler, request))
        }
        guard HTTPMethod.known.contains(request.method) else {
            return .respond(HTTPError.notImplemented(request.method).response)
        }
        if request.method == .options {
            return .respond(cors.preflight(request, allowedMethods: route?.allowedMethods ?? []))
        }
        switch route?.match(request.method) ?? .notFound {
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

    /// Applies CORS and the filters and adds `X-Request-Id`: the last step
    /// before a response is sent.
    func finish(_ response: Response, for request: Request?, requestID: String) -> Response {
        var response = response
        if let request {
            cors.apply(to: &response, for: request)
            for filter in filters { filter.apply(to: &response, for: request) }
        } else {
            for filter in filters { filter.apply(to: &response, for: Request(method: .get, path: "/")) }
        }
        // Shutting down: the client learns before it sends another request
        // on this connection, which would be refused.
        if draining.load(ordering: .relaxed) { response.headers.set("Connection", "close") }
        response.headers.add(RequestID.headerName, requestID)
        return response
    }

    /// Records a request that ended, answered or not (then its status is 0),
    /// in the request metrics and the request log.
    func completed(_ context: RequestContext, request: Request?) {
        guard requestMetrics != nil || requestLog else { return }
        let now = monotonicNanoseconds()
        let elapsed = now > context.started ? now - context.started : 0
        let status = context.sentStatus
        requestMetrics?.record(
            route: context.route?.id ?? -1, method: HTTPRequestMetrics.methodSlot(context.method), status: status,
            nanoseconds: elapsed)
        guard requestLog else { return }
        logger.log(.info, "request") { line in
            line.add("method", context.method.rawValue)
            line.add("path", Self.loggablePath(context.path))
            line.add("status", status)
            line.add("duration_ms", elapsed / 1000, decimals: 3)
            let client = request.flatMap { configuration.trustedProxies.clientAddress(of: $0) }
            line.add("client_ip", client.map(Self.logText) ?? "-")
            line.add("request_id", context.requestID)
        }
    }

    /// An address as the request log writes it: `description`, with IPv4
    /// written here without an allocation (15 characters at most fit in a
    /// Swift string inline; `description` makes three).
    static func logText(_ address: IPAddress) -> String {
        guard address.isIPv4 else { return address.description }
        let value = UInt32(truncatingIfNeeded: address.low)
        return String(unsafeUninitializedCapacity: 15) { output in
            var count = 0
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = Int(value >> UInt32(shift) & 0xFF)
                func put(_ byte: UInt8) {
                    output[count] = byte
                    count += 1
                }
                if octet >= 100 { put(UInt8(ascii: "0") + UInt8(octet / 100)) }
                if octet >= 10 { put(UInt8(ascii: "0") + UInt8(octet / 10 % 10)) }
                put(UInt8(ascii: "0") + UInt8(octet % 10))
                if shift > 0 { put(UInt8(ascii: ".")) }
            }
            return count
        }
    }

    /// Paths longer than this are cut short in the request log.
    static let loggedPathLimit = 512

    /// The path as the request log shows it: at most `loggedPathLimit` bytes
    /// (a client picks it, and can make it 30 KiB long), a cut one ending in `...`.
    static func loggablePath(_ path: String) -> String {
        guard path.utf8.count > loggedPathLimit else { return path }
        return String(decoding: path.utf8.prefix(loggedPathLimit), as: UTF8.self) + "..."
    }
}

/// Nanoseconds on the monotonic clock (`CLOCK_MONOTONIC`), for durations.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// A suspended connection and the request it belongs to.
struct SuspendedRequest: Sendable {
    let context: RequestContext
    let connection: ConnectionHandle
}
