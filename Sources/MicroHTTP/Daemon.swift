// The only file of MicroHTTP that talks to libmicrohttpd. Everything that
// crosses into C is copied into Swift values at once; nothing throws across C.

internal import CMicroHTTPD
import Foundation
import Synchronization

/// A running libmicrohttpd daemon. Owns the daemon pointer and the +1
/// reference on `ServerCore` that the C callbacks use.
final class Daemon: @unchecked Sendable {
    // @unchecked: `handle` is set once in `start` and only read afterwards;
    // `stop` runs once (HTTPServer hands the Daemon out of its Mutex exactly once).
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
        let deadline = Date().addingTimeInterval(gracePeriod)
        while serverCore.inFlight.load(ordering: .acquiring) > 0, Date() < deadline {
            usleep(2_000)
        }
        // Whatever is still waiting on slow work gets a 503 now: libmicrohttpd
        // must not be stopped with connections suspended.
        // Under the registry's lock, as the tasks resume theirs: once this has
        // run, no task can resume a connection after MHD_stop_daemon.
        let abandoned = serverCore.suspended.withLock { registry -> Int in
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
    // the resume, so it sits behind a Mutex.
    var body: [UInt8] = []
    var bodyTooLarge = false
    var responded = false
    var suspended = false
    var request: Request?
    /// The connection's record in `ConnectionGuard`, for its request deadline.
    var connection: ConnectionRecord?
    private let deferred = Mutex<Response?>(nil)

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
        let context = RequestContext()
        conCls.pointee = Unmanaged.passRetained(context).toOpaque()
        core.inFlight.add(1, ordering: .relaxed)
        if let record = CMicroHTTPD_socket_context(connection) {
            context.connection = Unmanaged<ConnectionRecord>.fromOpaque(record).takeUnretainedValue()
        }
        if let length = lookupHeader(connection, "Content-Length"), let declared = Int(length),
            declared > core.configuration.maxBodyBytes
        {
            // Refuse before reading a byte of it. Queued on the first call, so
            // libmicrohttpd closes the connection after it: the unread body
            // cannot be mistaken for the next request.
            context.bodyTooLarge = true
            context.responded = true
            if let record = context.connection { core.connections.requestReceived(on: record) }
            let request = makeRequest(connection, url: url, method: method, body: [])
            let response = core.finish(
                HTTPError.payloadTooLarge(limit: core.configuration.maxBodyBytes).response, for: request)
            return queue(response, on: connection)
        }
        return .YES
    }
    let context = Unmanaged<RequestContext>.fromOpaque(existing).takeUnretainedValue()

    let size = uploadDataSize.pointee
    if size > 0 {
        if !context.bodyTooLarge, !context.responded, let uploadData {
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
        context.responded = true
        return queue(core.finish(response, for: context.request), on: connection)
    }
    if context.responded { return .YES }

    // The whole request is in: its deadline no longer applies.
    if let record = context.connection { core.connections.requestReceived(on: record) }
    let request = makeRequest(connection, url: url, method: method, body: context.body)
    context.body = []
    if context.bodyTooLarge {
        context.responded = true
        let response = HTTPError.payloadTooLarge(limit: core.configuration.maxBodyBytes).response
        return queue(core.finish(response, for: request), on: connection)
    }

    switch core.dispatch(request) {
    case .respond(let response):
        context.responded = true
        return queue(core.finish(response, for: request), on: connection)
    case .offload(let pool, let handler):
        context.request = request
        context.suspended = true
        let handle = ConnectionHandle(pointer: connection)
        let key = ObjectIdentifier(context)
        core.suspended.withLock { $0[key] = SuspendedRequest(context: context, connection: handle) }
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

/// Copies what libmicrohttpd parsed into a `Request` value.
private func makeRequest(
    _ connection: OpaquePointer, url: UnsafePointer<CChar>?, method: UnsafePointer<CChar>?, body: [UInt8]
) -> Request {
    var collected = CollectedValues()
    withUnsafeMutablePointer(to: &collected) { pointer in
        _ = MHD_get_connection_values_n(connection, .HEADER_KIND, collectValue, pointer)
        pointer.pointee.collectingQuery = true
        _ = MHD_get_connection_values_n(connection, .GET_ARGUMENT_KIND, collectValue, pointer)
    }
    var request = Request(
        method: HTTPMethod(rawValue: method.map { String(cString: $0) } ?? "GET"),
        path: url.map { String(cString: $0) } ?? "/",
        query: collected.query,
        headers: HTTPHeaders(collected.headers),
        body: body)
    if let address = CMicroHTTPD_client_address(connection), let peer = SocketAddress(copying: address) {
        request.peer = .socket(peer)
    }
    return request
}

private struct CollectedValues {
    var headers: [(String, String)] = []
    var query: [(name: String, value: String)] = []
    var collectingQuery = false
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
        guard MHD_add_response_header(created, field.name, field.value) == .YES else { return .NO }
    }
    return MHD_queue_response(connection, UInt32(clamping: response.status), created)
}
