import Dispatch
import Foundation
import Synchronization

/// Bounds what one client can hold: connections per address, and the time a
/// connection may take to deliver a complete request.
///
/// libmicrohttpd's own timeout is an idle timeout: every byte that arrives
/// restarts it, so a client that trickles a header a byte at a time (slow
/// loris) keeps its connection for ever. Here every connection carries a
/// deadline from the moment it opens, or from the end of its previous
/// response: by then the whole request, headers and body, must be in. A
/// sweep closes the ones past it (`shutdown(2)` on their socket, which makes
/// libmicrohttpd close and free the connection on its own thread). nginx's
/// `client_header_timeout` works the same way.
///
/// The per-address limit is counted here rather than by libmicrohttpd so that
/// trusted reverse proxies, which carry many clients' connections, are exempt.
final class ConnectionGuard: @unchecked Sendable {
    // @unchecked: `timer` is created in init and only cancelled afterwards;
    // everything else is a constant, an Atomic, or behind `state`'s lock.
    private let perAddressLimit: Int
    private let requestTimeoutMilliseconds: Int64
    private let trustedProxies: TrustedProxies
    private let logger: Logger
    private let state = LockedValue(State())
    private let refusedSinceLastSweep = Atomic<Int>(0)
    private let timer: any DispatchSourceTimer

    /// Connections closed for not delivering a request in time, since start.
    let cutConnections = Atomic<Int>(0)
    /// Connections refused for being over the per-address limit, since start.
    let refusedConnections = Atomic<Int>(0)

    private struct State {
        var open: [ObjectIdentifier: ConnectionRecord] = [:]
        var perAddress: [IPAddress: Int] = [:]
    }

    init(configuration: HTTPServerConfiguration, logger: Logger) {
        perAddressLimit = configuration.perIPConnectionLimit
        requestTimeoutMilliseconds = Int64(max(1, configuration.connectionTimeout)) * 1000
        trustedProxies = configuration.trustedProxies
        self.logger = logger
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "gatehouse.connection-guard"))
        // Four sweeps per timeout: a connection is cut at most a quarter late.
        let interval = DispatchTimeInterval.milliseconds(Int(max(50, min(500, requestTimeoutMilliseconds / 4))))
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(20))
        timer.setEventHandler { [weak self] in self?.sweep() }
    }

    private let started = Atomic<Bool>(false)

    func start() {
        if !started.exchange(true, ordering: .acquiringAndReleasing) { timer.resume() }
    }

    /// Stops sweeping. Safe while connections are still being closed: a sweep
    /// only touches sockets of connections registered under the lock.
    func stop() { timer.cancel() }

    deinit {
        // libdispatch traps on releasing a source that was never resumed
        // (a server that failed to start).
        timer.cancel()
        start()
    }

    /// Whether a connection from `address` may be accepted (libmicrohttpd's
    /// accept policy). Threads accept concurrently, so the limit can be passed
    /// by at most one connection per server thread.
    func admit(_ address: IPAddress?) -> Bool {
        guard perAddressLimit > 0, let address, !trustedProxies.isTrusted(address) else { return true }
        let key = address.clientKey
        let admitted = state.withLock { $0.perAddress[key, default: 0] < perAddressLimit }
        if !admitted {
            refusedConnections.add(1, ordering: .relaxed)
            refusedSinceLastSweep.add(1, ordering: .relaxed)
        }
        return admitted
    }

    /// Registers a connection libmicrohttpd has just set up.
    func opened(socket: Int32, address: IPAddress?) -> ConnectionRecord {
        let record = ConnectionRecord(
            socket: socket, address: address?.clientKey, deadline: Self.now() + requestTimeoutMilliseconds)
        state.withLock { state in
            state.open[ObjectIdentifier(record)] = record
            if let key = record.address { state.perAddress[key, default: 0] += 1 }
        }
        return record
    }

    /// Forgets a connection. libmicrohttpd calls this before it closes the
    /// socket, and the sweep shuts sockets down under the same lock, so a
    /// sweep never touches a descriptor number that was reused.
    func closed(_ record: ConnectionRecord) {
        state.withLock { state in
            state.open.removeValue(forKey: ObjectIdentifier(record))
            if let key = record.address {
                let remaining = state.perAddress[key, default: 1] - 1
                state.perAddress[key] = remaining > 0 ? remaining : nil
            }
        }
    }

    /// The request is complete: no deadline while it is handled and answered.
    func requestReceived(on record: ConnectionRecord) {
        record.deadline.store(0, ordering: .relaxed)
    }

    /// The response is done: the next request on this connection must arrive in time.
    func responseFinished(on record: ConnectionRecord) {
        record.deadline.store(Self.now() + requestTimeoutMilliseconds, ordering: .relaxed)
    }

    /// Open connections right now (for tests and metrics).
    var openConnections: Int { state.withLock { $0.open.count } }

    private func sweep() {
        let now = Self.now()
        var cut: [IPAddress?] = []
        state.withLock { state in
            for record in state.open.values {
                let deadline = record.deadline.load(ordering: .relaxed)
                guard deadline != 0, deadline <= now else { continue }
                record.deadline.store(0, ordering: .relaxed)
                shutdown(record.socket, Int32(SHUT_RDWR))
                cut.append(record.address)
            }
        }
        if !cut.isEmpty {
            cutConnections.add(cut.count, ordering: .relaxed)
            logger.warning(
                "closed connections that sent no complete request in time",
                [
                    "count": String(cut.count), "timeout_s": String(requestTimeoutMilliseconds / 1000),
                    "addresses": Self.summary(of: cut),
                ])
        }
        let refused = refusedSinceLastSweep.exchange(0, ordering: .relaxed)
        if refused > 0 {
            logger.warning(
                "refused connections over the per-address limit",
                ["count": String(refused), "limit": String(perAddressLimit)])
        }
    }

    /// Up to three distinct addresses, comma-separated, and how many more.
    static func summary(of addresses: [IPAddress?]) -> String {
        var distinct: [String] = []
        for address in addresses {
            let text = address?.description ?? "-"
            if !distinct.contains(text) { distinct.append(text) }
        }
        let shown = distinct.prefix(3).joined(separator: ",")
        return distinct.count > 3 ? shown + ",+\(distinct.count - 3) more" : shown
    }

    /// Milliseconds on the monotonic clock.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

/// One open connection, as `ConnectionGuard` tracks it. libmicrohttpd holds
/// it (+1) in the connection's socket context until the connection closes.
final class ConnectionRecord: Sendable {
    let socket: Int32
    /// The address its per-address limit counts under, nil if unknown.
    let address: IPAddress?
    /// When the connection must have delivered its request, in monotonic
    /// milliseconds; 0 while a request is being handled.
    let deadline: Atomic<Int64>
    /// Set by the unescape callback when the current request-target is
    /// malformed; read and cleared when the request is complete.
    let malformedTarget = Atomic<Bool>(false)

    /// Whether the request-target was marked malformed; clears the mark.
    func takeMalformedTarget() -> Bool {
        // A load first: the common answer needs no read-modify-write.
        guard malformedTarget.load(ordering: .relaxed) else { return false }
        malformedTarget.store(false, ordering: .relaxed)
        return true
    }

    init(socket: Int32, address: IPAddress?, deadline: Int64) {
        self.socket = socket
        self.address = address
        self.deadline = Atomic(deadline)
    }
}
