// The only file of MicroHTTP that talks to libmicrohttpd. Everything that
// crosses into C is copied into Swift values at once; nothing throws across C.

internal import CMicroHTTPD
import Foundation
import Synchronization

/// A running libmicrohttpd daemon. Owns the daemon pointer and the +1
/// reference on `ServerCore` that the C callbacks use.
final class Daemon: @unchecked Sendable {
    // @unchecked: `handle` is set once in `start` and only read afterwards;
    // `stop` runs once (HTTPServer hands the Daemon out of its lock exactly once).
    private let handle: OpaquePointer
    private let core: Unmanaged<ServerCore>
    let port: UInt16

    private init(handle: OpaquePointer, core: Unmanaged<ServerCore>, port: UInt16) {
        self.handle = handle
        self.core = core
        self.port = port
    }

    static func start(core serverCore: ServerCore) throws(HTTPServerError) -> Daemon {
        let configuration = serverCore.configuration
        guard var address = SocketAddress(host: configuration.host, port: configuration.port) else {
            throw HTTPServerError("'\(configuration.host)' is not an IPv4 or IPv6 address")
        }
        let core = Unmanaged.passRetained(serverCore)
        var flags = MHD_USE_EPOLL_INTERNAL_THREAD.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue
        if address.isIPv6 { flags |= MHD_USE_IPv6.rawValue }
        let handle: OpaquePointer? = address.withSockaddr { sockaddr in
            var options: [MHD_OptionItem] = [
                CMicroHTTPD_option(.SOCK_ADDR, 0, UnsafeMutableRawPointer(mutating: sockaddr)),
                CMicroHTTPD_option(.CONNECTION_LIMIT, max(1, configuration.connectionLimit), nil),
                CMicroHTTPD_option(.CONNECTION_TIMEOUT, max(0, configuration.connectionTimeout), nil),
                CMicroHTTPD_option(.CONNECTION_MEMORY_LIMIT, max(8192, configuration.connectionMemoryLimit), nil),
                CMicroHTTPD_option(.LISTEN_BACKLOG_SIZE, max(1, configuration.listenBacklog), nil),
                CMicroHTTPD_completed_option(gatehouseRequestCompleted, core.toOpaque()),
                CMicroHTTPD_connection_option(gatehouseConnectionChanged, core.toOpaque()),
                CMicroHTTPD_unescape_option(gatehouseUnescape, nil),
                CMicroHTTPD_uri_log_option(gatehouseTargetReceived, nil),
            ]
            if configuration.threads > 1 {
                options.append(CMicroHTTPD_option(.THREAD_POOL_SIZE, configuration.threads, nil))
            }
            // No MHD_OPTION_PER_IP_CONNECTION_LIMIT: ConnectionGuard counts
            // per address itself, so that trusted proxies can be exempt.
            options.append(CMicroHTTPD_option(.END, 0, nil))
            return options.withUnsafeMutableBufferPointer { buffer in
                CMicroHTTPD_start(
                    flags, configuration.port, gatehouseAcceptPolicy, core.toOpaque(), gatehouseAccessHandler,
                    core.toOpaque(), buffer.baseAddress)
            }
        }
        guard let handle else {
            let reason = String(cString: strerror(errno))
            core.release()
            throw HTTPServerError(
                "could not listen on \(configuration.host):\(configuration.port): \(reason)")
        }
        serverCore.connections.start()
        return Daemon(handle: handle, core: core, port: CMicroHTTPD_bound_port(handle))
    }

    func stop(gracePeriod: Double) {
        let serverCore = core.takeUnretainedValue()
        // No MHD_quiesce_daemon: in libmicrohttpd 0.9.75 it races the epoll
        // thread to remove the listening socket from the epoll set, and the
        // loser aborts the process ("Failed to remove listen FD from epoll
        // set", seen in CI). The listener stays open while requests in flight
        // drain; MHD_stop_daemon closes it.
        // From here no request begins: the access handler refuses any that
        // counts itself in flight after this store (sequentially consistent,
        // paired with its increment), so once the count reaches zero it stays
        // there, and stopping the daemon cuts no request short. Without it,
        // clients on keep-alive connections kept sending, the count never
        // reached zero under load, and after the grace period requests that
        // had been acted on (a login that opened a session) were answered 503
        // or cut off.
        serverCore.draining.store(true, ordering: .sequentiallyConsistent)
        let deadline = Date().addingTimeInterval(gracePeriod)
        while serverCore.inFlight.load(ordering: .sequentiallyConsistent) > 0, Date() < deadline {
            usleep(2_000)
        }
        // Whatever is still waiting on slow work gets a 503 now: libmicrohttpd
        // must not be stopped with connections suspended.
        // Under the registry's lock, as the tasks resume theirs: once this has
        // run, no task can resume a connection after MHD_stop_daemon.
        let abandoned = serverCore.suspended.withLock { registry -> Int in
            serverCore.suspensionsClosed.store(true, ordering: .relaxed)
            for entry in registry.values {
                entry.context.setDeferredResponse(
                    HTTPError.unavailable("The server is shutting down.", retryAfter: 1).response)
                MHD_resume_connection(entry.connection.pointer)
            }
            defer { registry.removeAll() }
            return registry.count
        }
        if abandoned > 0 {
            let flushDeadline = Date().addingTimeInterval(1)
            while serverCore.inFlight.load(ordering: .acquiring) > 0, Date() < flushDeadline { usleep(2_000) }
        }
        MHD_stop_daemon(handle)
        serverCore.connections.stop()
        core.release()
    }
}

/// A libmicrohttpd connection pointer carried to the task that finishes a
/// offloaded request.
struct ConnectionHandle: @unchecked Sendable {
    // @unchecked: libmicrohttpd keeps a suspended connection alive until it is
    // resumed, and MHD_resume_connection may be called from any thread.
    let pointer: OpaquePointer
}

/// Per-request state behind libmicrohttpd's `con_cls`: created on the first
/// call for a request, released in the completion callback.
final class RequestContext: @unchecked Sendable {
    // @unchecked: every field but `deferred` is touched only from the
    // libmicrohttpd thread that owns the connection, one call at a time;
    // `deferred` is written by the worker that ran the handler and read after
    // the resume, so it sits behind a lock.
    var body: [UInt8] = []
    var bodyTooLarge = false
    /// The route discards bodies (`Router.anyMethod`): none is kept, none is too large.
    var discardsBody = false
    var responded = false
    var suspended = false
    var request: Request?
    /// The connection's record in `ConnectionGuard`, for its request deadline.
    var connection: ConnectionRecord?
    /// When the header section was handed over (`monotonicNanoseconds`).
    var started: UInt64 = 0
    var method = HTTPMethod.get
    /// The path without the query, in origin form.
    var path = "/"
    /// What the router holds for `path`, looked up once per request.
    var route: Router.Route?
    /// The request's own `X-Request-Id` when acceptable, else a new one.
    var requestID = ""
    /// Whether `requestID` is the request's own (its headers need no change).
    var requestIDSupplied = false
    /// Whether the request brought an `X-Request-Id` at all (one that was
    /// not kept must be replaced; with none, the new one is just added).
    var requestIDPresent = false
    /// The status of the response queued; 0 while none is.
    var sentStatus = 0
    private let deferred = LockedValue<Response?>(nil)

    func setDeferredResponse(_ response: Response) {
        deferred.withLock { if $0 == nil { $0 = response } }
    }

    func takeDeferredResponse() -> Response? {
        deferred.withLock { current in
            let taken = current
            current = nil
            return taken
        }
    }
}

// MARK: - Callbacks

/// libmicrohttpd's access handler. Called once when the headers are in,
/// once per piece of body, and once more when the request is complete (and
/// again after a resume). Responses are queued only on a later call than the
/// first: queueing on the first makes libmicrohttpd 0.9.75 close the
/// connection after every response (NOTES.md: keep-alive).
private func gatehouseAccessHandler(
    _ cls: UnsafeMutableRawPointer?,
    _ connection: OpaquePointer?,
    _ url: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?,
    _ version: UnsafePointer<CChar>?,
    _ uploadData: UnsafePointer<CChar>?,
    _ uploadDataSize: UnsafeMutablePointer<Int>?,
    _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let conCls, let uploadDataSize else { return .NO }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()

    guard let existing = conCls.pointee else {
        // Counted before the draining check, both sequentially consistent
        // (as in Daemon.stop, the other way round): either stop sees this
        // request in flight and waits for it, or this sees the flag and the
        // request is refused before anything is done with it: the connection
        // closes without a byte of answer (con_cls stays NULL, so the
        // completion callback has nothing to undo).
        core.inFlight.add(1, ordering: .sequentiallyConsistent)
        if core.draining.load(ordering: .sequentiallyConsistent) {
            core.inFlight.subtract(1, ordering: .relaxed)
            return .NO
        }
        let context = RequestContext()
        conCls.pointee = Unmanaged.passRetained(context).toOpaque()
        if let record = CMicroHTTPD_socket_context(connection) {
            context.connection = Unmanaged<ConnectionRecord>.fromOpaque(record).takeUnretainedValue()
        }
        context.started = monotonicNanoseconds()
        context.method = HTTPMethod(rawValue: method.map { String(cString: $0) } ?? "GET")
        context.path = originFormPath(url.map { String(cString: $0) } ?? "/")
        context.route = core.router.route(for: context.path)
        let supplied = lookupHeader(connection, RequestID.headerName)
        if let supplied, RequestID.isAcceptable(supplied) {
            context.requestID = supplied
            context.requestIDSupplied = true
        } else {
            context.requestID = RequestID.generate()
            context.requestIDPresent = supplied != nil
        }
        if let problem = framingProblem(connection) {
            // Answered on the first call, so libmicrohttpd closes the
            // connection: a body whose length is in doubt must never be
            // read as the next request (request smuggling).
            if let record = context.connection { core.connections.requestReceived(on: record) }
            let request = makeRequest(connection, context, version: version, body: []).request
            return respond(HTTPError.badRequest(problem).response, to: request, context, core, connection)
        }
        if context.route?.anyMethod != nil {
            context.discardsBody = true
            return .YES
        }
        if let length = lookupHeader(connection, "Content-Length"), let declared = Int(length),
            declared > core.configuration.maxBodyBytes
        {
            // Refuse before reading a byte of it. Queued on the first call, so
            // libmicrohttpd closes the connection after it: the unread body
            // cannot be mistaken for the next request.
            context.bodyTooLarge = true
            if let record = context.connection { core.connections.requestReceived(on: record) }
            let request = makeRequest(connection, context, version: version, body: []).request
            let response = HTTPError.payloadTooLarge(limit: core.configuration.maxBodyBytes).response
            return respond(response, to: request, context, core, connection)
        }
        return .YES
    }
    let context = Unmanaged<RequestContext>.fromOpaque(existing).takeUnretainedValue()

    let size = uploadDataSize.pointee
    if size > 0 {
        if !context.bodyTooLarge, !context.discardsBody, !context.responded, let uploadData {
            if context.body.count + size > core.configuration.maxBodyBytes {
                context.bodyTooLarge = true
                context.body = []
            } else {
                uploadData.withMemoryRebound(to: UInt8.self, capacity: size) { bytes in
                    context.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: size))
                }
            }
        }
        uploadDataSize.pointee = 0
        return .YES
    }

    if context.suspended {
        // Resumed: the offloaded handler (or shutdown) left the answer.
        context.suspended = false
        guard let response = context.takeDeferredResponse() else { return .NO }
        return respond(response, to: context.request, context, core, connection)
    }
    if context.responded { return .YES }

    // The whole request is in: its deadline no longer applies.
    if let record = context.connection { core.connections.requestReceived(on: record) }
    let (request, problem) = makeRequest(connection, context, version: version, body: context.body)
    context.body = []
    if let problem {
        return respond(HTTPError.badRequest(problem).response, to: request, context, core, connection)
    }
    if context.bodyTooLarge {
        let response = HTTPError.payloadTooLarge(limit: core.configuration.maxBodyBytes).response
        return respond(response, to: request, context, core, connection)
    }

    switch core.dispatch(request, route: context.route) {
    case .respond(let response):
        return respond(response, to: request, context, core, connection)
    case .offload(let pool, let handler):
        let handle = ConnectionHandle(pointer: connection)
        let key = ObjectIdentifier(context)
        // Once shutdown has resumed every suspended connection, none may be
        // suspended again: libmicrohttpd aborts if stopped with one suspended
        // (a slow upload finishing after the grace period would do it).
        let registered = core.suspended.withLock { registry -> Bool in
            guard !core.suspensionsClosed.load(ordering: .relaxed) else { return false }
            registry[key] = SuspendedRequest(context: context, connection: handle)
            return true
        }
        guard registered else {
            let response = HTTPError.unavailable("The server is shutting down.", retryAfter: 1).response
            return respond(response, to: request, context, core, connection)
        }
        context.request = request
        context.suspended = true
        // Suspend before the job can possibly finish and resume.
        MHD_suspend_connection(connection)
        do {
            try pool.submit {
                let response = core.run(handler, request)
                core.resume(key, context, handle, with: response)
            }
        } catch {
            core.resume(key, context, handle, with: HTTPError.overloaded.response)
        }
        return .YES
    }
}

/// Finishes `response` (CORS, filters, `X-Request-Id`) and queues it: the
/// request's one answer. Keeps the request and the status for the
/// completion callback (metrics, request log).
private func respond(
    _ response: Response, to request: Request?, _ context: RequestContext, _ core: ServerCore,
    _ connection: OpaquePointer
) -> MHD_Result {
    context.responded = true
    // Kept for the request log's client address (a copy is a dozen retains: not for nothing).
    if core.requestLog, let request { context.request = request }
    let finished = core.finish(response, for: request, requestID: context.requestID)
    let result = queue(finished, on: connection)
    if result == .YES { context.sentStatus = finished.status }
    return result
}

extension ServerCore {
    /// Hands a suspended request its answer and resumes its connection, unless
    /// shutdown already did. Resuming under the registry's lock keeps it from
    /// racing shutdown's MHD_stop_daemon.
    fileprivate func resume(
        _ key: ObjectIdentifier, _ context: RequestContext, _ handle: ConnectionHandle, with response: Response
    ) {
        suspended.withLock { registry in
            guard registry.removeValue(forKey: key) != nil else { return }
            context.setDeferredResponse(response)
            MHD_resume_connection(handle.pointer)
        }
    }
}

/// Runs for every request that got a `con_cls`, including ones the client
/// abandoned: frees the per-request state.
private func gatehouseRequestCompleted(
    _ cls: UnsafeMutableRawPointer?,
    _ connection: OpaquePointer?,
    _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ code: MHD_RequestTerminationCode
) {
    guard let cls, let conCls, let existing = conCls.pointee else { return }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    let context = Unmanaged<RequestContext>.fromOpaque(existing)
    let ended = context.takeUnretainedValue()
    if core.requestMetrics != nil || core.requestLog {
        // Abandoned before its request was made: the log still names the client.
        var request = ended.request
        if core.requestLog, request == nil, let connection, let address = CMicroHTTPD_client_address(connection),
            let peer = SocketAddress(copying: address)
        {
            var bare = Request(method: ended.method, path: ended.path)
            bare.peer = .socket(peer)
            request = bare
        }
        core.completed(ended, request: request)
    }
    // A client that went away while its request was suspended: forget it, so
    // shutdown does not resume a connection libmicrohttpd has already closed.
    core.suspended.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(context.takeUnretainedValue())) }
    if let record = context.takeUnretainedValue().connection { core.connections.responseFinished(on: record) }
    context.release()
    conCls.pointee = nil
    core.inFlight.subtract(1, ordering: .relaxed)
}

/// libmicrohttpd's accept policy: refuses a connection over the per-address limit.
private func gatehouseAcceptPolicy(
    _ cls: UnsafeMutableRawPointer?, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t
) -> MHD_Result {
    guard let cls else { return .YES }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    return core.connections.admit(address.flatMap(IPAddress.init)) ? .YES : .NO
}

/// Registers each connection with `ConnectionGuard` when it opens (the record
/// is kept, +1, as the connection's socket context) and forgets it when it
/// closes; libmicrohttpd closes the socket only after this returns.
private func gatehouseConnectionChanged(
    _ cls: UnsafeMutableRawPointer?,
    _ connection: OpaquePointer?,
    _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ code: MHD_ConnectionNotificationCode
) {
    guard let cls, let connection, let socketContext else { return }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    switch code {
    case .CONNECTION_NOTIFY_STARTED:
        // This thread serves the connection: it counts on every request.
        ThreadShard.claimForHTTPThread()
        let record = core.connections.opened(
            socket: CMicroHTTPD_connection_socket(connection),
            address: CMicroHTTPD_client_address(connection).flatMap(IPAddress.init))
        socketContext.pointee = Unmanaged.passRetained(record).toOpaque()
    case .CONNECTION_NOTIFY_CLOSED:
        guard let stored = socketContext.pointee else { return }
        let record = Unmanaged<ConnectionRecord>.fromOpaque(stored)
        core.connections.closed(record.takeUnretainedValue())
        record.release()
        socketContext.pointee = nil
    @unknown default:
        return
    }
}

/// libmicrohttpd's URI log callback, the one place that sees the
/// request-target raw (before `+` in the query becomes a space and before
/// percent-decoding). A raw space or control byte, or a `%` without two hex
/// digits, makes it malformed (RFC 3986): noted on the connection, answered
/// 400 when the request is complete. Returns NULL, so `con_cls` starts empty
/// as the access handler expects.
private func gatehouseTargetReceived(
    _ cls: UnsafeMutableRawPointer?, _ target: UnsafePointer<CChar>?, _ connection: OpaquePointer?
) -> UnsafeMutableRawPointer? {
    guard let target, let connection else { return nil }
    func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }
    var malformed = false
    var index = 0
    while target[index] != 0 {
        let byte = UInt8(bitPattern: target[index])
        if byte <= 0x20 || byte == 0x7F {
            malformed = true
            break
        }
        if byte == UInt8(ascii: "%") {
            // The NUL terminator is not hex, so this never reads past the end.
            guard isHex(UInt8(bitPattern: target[index + 1])), isHex(UInt8(bitPattern: target[index + 2])) else {
                malformed = true
                break
            }
        }
        index += 1
    }
    if malformed, let record = CMicroHTTPD_socket_context(connection) {
        Unmanaged<ConnectionRecord>.fromOpaque(record).takeUnretainedValue().malformedTarget.store(
            true, ordering: .relaxed)
    }
    return nil
}

/// Percent-decodes a path or query component in place, as libmicrohttpd's
/// own unescaper does, except `%00`: a NUL would end the C string the path is
/// handed over as, and `/hello%00junk` would be served as `/hello`. Left
/// encoded, it matches no route.
private func gatehouseUnescape(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ text: UnsafeMutablePointer<CChar>?
) -> Int {
    guard let text else { return 0 }
    func hexValue(_ byte: CChar) -> UInt8? {
        switch UInt8(bitPattern: byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(bitPattern: byte) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt8(bitPattern: byte) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt8(bitPattern: byte) - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    var read = 0
    var write = 0
    while text[read] != 0 {
        if text[read] == CChar(UInt8(ascii: "%")), let high = hexValue(text[read + 1]),
            let low = hexValue(text[read + 2]), high != 0 || low != 0
        {
            text[write] = CChar(bitPattern: high << 4 | low)
            read += 3
        } else {
            text[write] = text[read]
            read += 1
        }
        write += 1
    }
    text[write] = 0
    return write
}

// MARK: - Requests and responses across the C boundary

private func lookupHeader(_ connection: OpaquePointer, _ name: String) -> String? {
    guard let value = MHD_lookup_connection_value(connection, .HEADER_KIND, name) else { return nil }
    return String(cString: value)
}

/// Copies what libmicrohttpd parsed into a `Request` value, and says what
/// is wrong with the request's header section if anything is (RFC 9112
/// section 3.2: exactly one `Host` in HTTP/1.1; section 5.1: no whitespace
/// between a field name and its colon, which libmicrohttpd keeps in the name).
/// Method and path come from `context`, read on the first call; its request
/// id replaces any `X-Request-Id` the request brought that was not kept.
private func makeRequest(
    _ connection: OpaquePointer, _ context: RequestContext, version: UnsafePointer<CChar>?, body: [UInt8]
) -> (request: Request, problem: String?) {
    var collected = CollectedValues()
    withUnsafeMutablePointer(to: &collected) { pointer in
        _ = MHD_get_connection_values_n(connection, .HEADER_KIND, collectValue, pointer)
        pointer.pointee.collectingQuery = true
        _ = MHD_get_connection_values_n(connection, .GET_ARGUMENT_KIND, collectValue, pointer)
    }
    var request = Request(
        method: context.method, path: context.path, query: collected.query, headers: HTTPHeaders(collected.headers),
        body: body)
    if context.requestIDPresent {
        request.headers.set(RequestID.headerName, context.requestID)
    } else if !context.requestIDSupplied {
        request.headers.add(RequestID.headerName, context.requestID)
    }
    if let address = CMicroHTTPD_client_address(connection), let peer = SocketAddress(copying: address) {
        request.peer = .socket(peer)
    }
    var problem: String?
    if collected.malformedName {
        problem = "A header field name is not a token (whitespace before the colon?)."
    } else if collected.hostFields != 1, let version, strcmp(version, "HTTP/1.1") == 0 {
        problem = "An HTTP/1.1 request must carry exactly one Host header field."
    } else if let record = CMicroHTTPD_socket_context(connection),
        Unmanaged<ConnectionRecord>.fromOpaque(record).takeUnretainedValue().takeMalformedTarget()
    {
        problem = "The request-target is malformed (a space, a control character or a bad percent-escape)."
    }
    return (request, problem)
}

/// The path of an absolute-form request-target (`http://host/path` becomes
/// `/path`, RFC 9112 section 3.2.2); any other target as it is.
private func originFormPath(_ target: String) -> String {
    guard target.utf8.first != UInt8(ascii: "/") else { return target }
    let lowered = target.prefix(8).lowercased()
    let scheme = lowered.hasPrefix("http://") ? 7 : lowered.hasPrefix("https://") ? 8 : 0
    guard scheme > 0 else { return target }
    let afterScheme = target.utf8.dropFirst(scheme)
    guard let slash = afterScheme.firstIndex(of: UInt8(ascii: "/")) else { return "/" }
    return String(target[slash...])
}

/// What is wrong with how the request says its body is framed, if anything
/// (RFC 9112 section 6.3): `Transfer-Encoding` together with
/// `Content-Length`, a final transfer coding other than chunked, or several
/// `Content-Length` values that differ. libmicrohttpd would pick one reading
/// silently; a proxy in front may have picked another.
private func framingProblem(_ connection: OpaquePointer) -> String? {
    let transferEncoding = lookupHeader(connection, "Transfer-Encoding")
    let contentLength = lookupHeader(connection, "Content-Length")
    if let transferEncoding {
        if contentLength != nil { return "A request must not carry both Transfer-Encoding and Content-Length." }
        let last = transferEncoding.split(separator: ",").last.map { $0.trimmingSpaces().lowercased() }
        if last != "chunked" { return "The final transfer coding of a request must be chunked." }
    }
    if contentLength != nil {
        var collected = CollectedValues()
        withUnsafeMutablePointer(to: &collected) { pointer in
            _ = MHD_get_connection_values_n(connection, .HEADER_KIND, collectValue, pointer)
        }
        let lengths = HTTPHeaders(collected.headers).values(for: "Content-Length")
        let distinct = Set(lengths.flatMap { $0.split(separator: ",").map { $0.trimmingSpaces() } })
        if distinct.count > 1 { return "The request carries Content-Length values that differ." }
    }
    return nil
}

private struct CollectedValues {
    var headers: [(String, String)] = []
    var query: [(name: String, value: String)] = []
    var collectingQuery = false
    var hostFields = 0
    var malformedName = false
}

/// RFC 9110 section 5.6.2: the bytes a token (a field name) may hold.
private func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    default:
        "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}

private func collectValue(
    _ cls: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind,
    _ key: UnsafePointer<CChar>?, _ keySize: Int,
    _ value: UnsafePointer<CChar>?, _ valueSize: Int
) -> MHD_Result {
    guard let cls, let key else { return .YES }
    let collected = cls.assumingMemoryBound(to: CollectedValues.self)
    let name = String(decoding: UnsafeRawBufferPointer(start: key, count: keySize), as: UTF8.self)
    let text = value.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: valueSize), as: UTF8.self) } ?? ""
    if collected.pointee.collectingQuery {
        collected.pointee.query.append((name, text))
    } else {
        collected.pointee.headers.append((name, text))
        let bytes = UnsafeRawBufferPointer(start: key, count: keySize)
        if keySize == 0 || !bytes.allSatisfy(isTokenByte) { collected.pointee.malformedName = true }
        if keySize == 4, HTTPHeaders.namesMatch(name, "Host") { collected.pointee.hostFields += 1 }
    }
    return .YES
}

private func queue(_ response: Response, on connection: OpaquePointer) -> MHD_Result {
    let created: OpaquePointer? = response.body.withUnsafeBytes { bytes in
        MHD_create_response_from_buffer(
            bytes.count, UnsafeMutableRawPointer(mutating: bytes.baseAddress), .RESPMEM_MUST_COPY)
    }
    guard let created else { return .NO }
    defer { MHD_destroy_response(created) }
    for field in response.headers.fields {
        // libmicrohttpd refuses a field it cannot send: an empty value, or a
        // name or value with a line break (response splitting). Such a field
        // is left out; the response still goes out, rather than the
        // connection being dropped with no answer at all.
        _ = MHD_add_response_header(created, field.name, field.value)
    }
    return MHD_queue_response(connection, UInt32(clamping: response.status), created)
}
