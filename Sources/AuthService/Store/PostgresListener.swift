import Foundation
import MicroHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// Revocation fan-out between instances sharing a PostgreSQL database: one dedicated connection (not
/// from the pool) runs `LISTEN gatehouse_revocations`; the trigger that fills the revocation sequence
/// (`gatehouse_session_ended`) notifies that channel, delivered at commit. On any notification the
/// ``RevocationFeed`` polls at once (``RevocationFeed/pollSoon()``), so a session ended on one
/// instance is refused on the others within milliseconds; the feed's timer stays as the safety net.
///
/// Its own thread waits on the socket with `poll(2)` in slices of ``waitSlice``, so ``stop()`` is
/// noticed within one. A lost connection is reopened with a backoff (0.1 s doubling to 2 s); after
/// each (re)connection, once `LISTEN` is in force, the feed polls once and is waited for
/// (``RevocationFeed/catchUp()``): only then is the listener ready again. Until then
/// ``notReadyReason`` says why, and `/readyz` answers 503, so no instance reports ready while it
/// may be missing a revocation made while it was disconnected.
///
/// It also listens on `gatehouse_keys`, which the `signing_keys` trigger notifies when the shared
/// signing keys change (``PostgresKeyStorage``): then, and after each (re)connection, it calls
/// `keysChanged`, so a rotation reaches every instance at once.
final class PostgresListener: Sendable {
    /// The channel the trigger function notifies; the payload is the revocation's sequence number.
    static let channel = "gatehouse_revocations"
    /// The channel the `signing_keys` trigger notifies.
    static let keysChannel = "gatehouse_keys"
    /// `application_name` of the listening connection (it shows in `pg_stat_activity`).
    static let applicationName = "gatehouse-listener"
    /// The longest a wait on the socket lasts before the stop flag is checked again, in milliseconds.
    static let waitSlice: Int32 = 100
    /// After this many seconds without a notification the listener asks the server `SELECT 1`, and
    /// gives the connection up if the answer takes over ``heartbeatTimeout``: a server that stops
    /// answering (paused, partitioned away) closes nothing, and the listener would otherwise wait
    /// for notifications that cannot come while `/readyz` said ready.
    static let heartbeatInterval = 5.0
    static let heartbeatTimeout = 2.0

    private let url: String
    private let feed: RevocationFeed
    private let keysChanged: (@Sendable () -> Void)?
    private let logger: Logger
    private let state = LockedValue(State())
    /// Signalled when the thread has returned (its connection closed).
    private let finished = DispatchSemaphore(value: 0)

    private struct State {
        var started = false
        var stopping = false
        var joined = false
        /// Nil once connected, listening and caught up.
        var problem: String? = "the revocation listener has not connected yet"
    }

    /// - Parameter keysChanged: called (on the listening thread: return at once) when the shared
    ///   signing keys changed, and after each (re)connection; nil when the keys are not shared.
    init(url: String, feed: RevocationFeed, keysChanged: (@Sendable () -> Void)? = nil, logger: Logger) {
        self.url = url
        self.feed = feed
        self.keysChanged = keysChanged
        self.logger = logger
    }

    /// Why the instance may be missing revocations right now (disconnected, or not yet caught up
    /// since connecting), or nil when it is listening and caught up.
    var notReadyReason: String? { state.withLock { $0.problem } }

    /// Starts the listening thread. The first connection is made on it, so this returns at once.
    func start() {
        let first = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started && !state.stopping
        }
        guard first else { return }
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "gatehouse-listener"
        thread.start()
    }

    /// Stops listening and waits for the thread to close its connection (at most one wait slice,
    /// or a connection attempt or catch-up poll in progress, both bounded). Calling it again, or
    /// without ``start()``, returns at once.
    func stop() {
        let wait = state.withLock { state -> Bool in
            state.stopping = true
            defer { if state.started { state.joined = true } }
            return state.started && !state.joined
        }
        if wait { finished.wait() }
    }

    /// Waits until the listener is ready (connected, listening, caught up), at most `timeout` seconds.
    /// - Returns: whether it is.
    @discardableResult
    func waitUntilReady(timeout: Double) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while notReadyReason != nil {
            if stopping || Date() >= end { return false }
            usleep(5000)
        }
        return true
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    private func setProblem(_ problem: String?) {
        state.withLock { $0.problem = problem }
    }

    /// Connects, listens, catches up, waits for notifications; again after a failure, until stopped.
    private func run() {
        var backoff = 0.1
        var wasConnected = false
        // Logged once per outage: attempts go on every 2 s at most while PostgreSQL is away.
        var failing = false
        while !stopping {
            do throws(PostgresError) {
                let connection = try PostgresConnection(
                    url: url, statementTimeoutMilliseconds: PostgresStore.statementTimeoutMilliseconds)
                try connection.execute("SET application_name = '\(Self.applicationName)'")
                try connection.execute("LISTEN \(Self.channel)")
                if keysChanged != nil { try connection.execute("LISTEN \(Self.keysChannel)") }
                // LISTEN is in force: whatever is ended from here on is notified. What was ended
                // while not listening is read now, before reporting ready.
                guard feed.catchUp() else {
                    throw PostgresError(message: "could not read the revocations missed while not listening")
                }
                // The same for a key change missed meanwhile.
                keysChanged?()
                setProblem(nil)
                if failing { logger.info("revocation listener connected again") }
                wasConnected = true
                failing = false
                backoff = 0.1
                try listen(on: connection)
                return  // stopped
            } catch {
                if stopping { return }
                setProblem("the revocation listener is not connected: \(error.message)")
                if !failing {
                    failing = true
                    logger.warning(
                        wasConnected
                            ? "revocation listener lost its connection to PostgreSQL; reconnecting"
                            : "revocation listener could not connect to PostgreSQL; retrying",
                        ["error": error.message])
                }
            }
            sleep(seconds: backoff)
            backoff = min(backoff * 2, 2)
        }
    }

    /// Waits for notifications until stopped (returns) or the connection fails (throws).
    private func listen(on connection: PostgresConnection) throws(PostgresError) {
        var lastHeard = Date()
        while !stopping {
            if -lastHeard.timeIntervalSinceNow >= Self.heartbeatInterval {
                try connection.query("SELECT 1", timeout: Self.heartbeatTimeout)
                lastHeard = Date()
                // Notifications that came with the answer are in libpq's buffer, not on the socket.
                try handle(connection.notifications())
            }
            var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
            guard descriptor.fd >= 0 else {
                throw PostgresError(message: "the listening connection has no socket", connectionBroken: true)
            }
            let ready = Glibc.poll(&descriptor, 1, Self.waitSlice)
            if ready < 0 {
                if errno == EINTR { continue }
                throw PostgresError(message: "poll failed: errno \(errno)", connectionBroken: true)
            }
            // Readable, closed or failed: libpq tells which. A timeout just loops to check the flag.
            guard ready > 0 else { continue }
            let received = try connection.notifications()
            if !received.isEmpty { lastHeard = Date() }
            handle(received)
        }
    }

    /// A revocation makes the feed poll; a key change makes the keys reload.
    private func handle(_ received: [(channel: String, payload: String)]) {
        if received.contains(where: { $0.channel == Self.channel }) { feed.pollSoon() }
        if received.contains(where: { $0.channel == Self.keysChannel }) { keysChanged?() }
    }

    /// Sleeps up to `seconds`, in slices, returning early once stopped.
    private func sleep(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !stopping, Date() < end {
            usleep(UInt32(min(Double(Self.waitSlice) / 1000, end.timeIntervalSinceNow).clamped(to: 0...1) * 1_000_000))
        }
    }
}

extension Double {
    fileprivate func clamped(to range: ClosedRange<Double>) -> Double { Swift.min(Swift.max(self, range.lowerBound), range.upperBound) }
}
