import Foundation
public import MicroHTTP

/// Keeps a ``RevocationList`` in step with sessions other processes end:
/// `gatehouse users grant|revoke|lock` run against the same store while the
/// service runs (and, later, other instances sharing a database).
///
/// Every `interval` seconds, on its own queue (never a request thread), it
/// asks the store for the sessions ended after its cursor in the store's
/// revocation sequence (``UserStore/revocations(after:)``) and adds them to
/// the list. Sessions this process ends are in the list already; seeing them
/// again costs nothing. At its first poll and every ten minutes after, it
/// also has the store delete expired sessions (``UserStore/pruneExpired(now:)``).
public final class RevocationFeed: Sendable {
    private let store: any UserStore
    private let revocations: RevocationList
    private let clock: WallClock
    private let logger: Logger
    private let queue = DispatchQueue(label: "gatehouse.revocations")
    private let state: LockedValue<State>

    private struct State {
        var cursor: Int64
        var timer: PollTimer?
        var lastPrune: Int64 = 0
        var failing = false
        /// A ``pollSoon()`` is queued and has not started yet.
        var pollQueued = false
    }

    /// How often, in seconds, expired sessions and revocations are pruned (the first poll does it too).
    static let pruneInterval: Int64 = 600

    /// - Parameters:
    ///   - cursor: where to start: ``UserStore/revocationCursor()`` read before the start-up load.
    public init(store: any UserStore, revocations: RevocationList, cursor: Int64, clock: WallClock, logger: Logger) {
        self.store = store
        self.revocations = revocations
        self.clock = clock
        self.logger = logger
        state = LockedValue(State(cursor: cursor, lastPrune: 0))
    }

    // Only cancels: the last reference may be dropped by a poll in progress, on the queue itself,
    // where waiting for the queue would never return.
    deinit { cancelTimer() }

    /// Polls every `interval` seconds until ``stop()``.
    public func start(interval: Double) {
        let timer = PollTimer(queue: queue, interval: interval) { [weak self] in self?.poll() }
        state.withLock { state -> PollTimer? in
            let previous = state.timer
            state.timer = timer
            return previous
        }?.cancel()
    }

    /// Stops polling and waits for a poll in progress, so the store can be closed after it.
    public func stop() {
        cancelTimer()
        // A cancelled source runs no new handler; one already running finishes before this returns.
        queue.sync {}
    }

    private func cancelTimer() {
        state.withLock { state -> PollTimer? in
            let timer = state.timer
            state.timer = nil
            return timer
        }?.cancel()
    }

    /// Polls on the feed's queue as soon as it is free, without waiting (a notification said
    /// something was ended). Calls made before that poll starts share it; one made while it runs
    /// queues one more, so nothing notified during a poll waits for the next timer round.
    public func pollSoon() {
        let queue = state.withLock { state -> Bool in
            defer { state.pollQueued = true }
            return !state.pollQueued
        }
        guard queue else { return }
        self.queue.async { [weak self] in
            guard let self else { return }
            self.state.withLock { $0.pollQueued = false }
            self.poll()
        }
    }

    /// Polls on the feed's queue and waits for it (after a listener reconnected: what it missed
    /// is in the list before it reports ready).
    /// - Returns: whether the store answered.
    public func catchUp() -> Bool {
        queue.sync { read() != nil }
    }

    /// Reads what was ended since the last poll into the revocation list.
    /// - Returns: how many sessions it added (seen again or not).
    @discardableResult
    public func poll() -> Int {
        read() ?? 0
    }

    /// ``poll()``, telling a failure apart: nil when the store did not answer.
    private func read() -> Int? {
        let cursor = state.withLock { $0.cursor }
        let now = clock.seconds
        do {
            var added = 0
            var position = cursor
            while true {
                let batch = try store.revocations(after: position)
                guard batch.cursor != position else { break }
                for session in batch.sessions where session.expiresAt > now {
                    revocations.revoke(session.id, until: session.expiresAt, now: now)
                    added += 1
                }
                position = batch.cursor
            }
            let prune = state.withLock { state -> Bool in
                state.cursor = max(state.cursor, position)
                if state.failing { state.failing = false }
                guard now - state.lastPrune >= Self.pruneInterval else { return false }
                state.lastPrune = now
                return true
            }
            if prune { self.prune(now: now) }
            return added
        } catch {
            // Logged once per outage: the next poll tries again.
            let first = state.withLock { state -> Bool in
                defer { state.failing = true }
                return !state.failing
            }
            if first {
                logger.error("could not read ended sessions from the store; retrying", ["error": error.description])
            }
            return nil
        }
    }
}

extension RevocationFeed {
    /// Has the store delete expired sessions. A failure (the write lock held elsewhere, say)
    /// is logged as a warning; the next round, ten minutes on, tries again.
    private func prune(now: Int64) {
        do {
            try store.pruneExpired(now: now)
        } catch {
            logger.warning("could not prune expired sessions; trying again later", ["error": error.description])
        }
    }
}

/// A repeating timer on a given queue.
private final class PollTimer: @unchecked Sendable {
    // @unchecked: `source` is made, configured and resumed in init, and
    // afterwards only cancelled, which Dispatch allows from any thread.
    private let source: any DispatchSourceTimer

    init(queue: DispatchQueue, interval: Double, _ handler: @escaping @Sendable () -> Void) {
        source = DispatchSource.makeTimerSource(queue: queue)
        source.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
        source.setEventHandler(handler: handler)
        source.resume()
    }

    func cancel() { source.cancel() }
}
