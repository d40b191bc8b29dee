import Dispatch
import MicroHTTP

/// A bounded pool of ``PostgresConnection``s to one database.
///
/// At most `size` connections exist at once; a caller waits up to `acquireTimeout` for one to come
/// free, then gets ``StoreError/Code/unavailable``. Connections are opened when first needed (a broken
/// one is dropped and replaced by a new one on a later call), so an instance starts with one
/// connection and a database outage costs nothing but failed calls.
final class PostgresPool: Sendable {
    /// The connection URL (libpq URI or key=value string). May hold a password: never log it.
    private let url: String
    /// The most connections open at once.
    let size: Int
    /// `statement_timeout` of every connection, milliseconds.
    let statementTimeoutMilliseconds: Int
    /// How long a call waits for a free connection, seconds.
    let acquireTimeout: Double
    /// One permit per connection that may be in use.
    private let permits: DispatchSemaphore
    private let state: LockedValue<State>

    private struct State {
        var idle: [PostgresConnection] = []
        var closed = false
    }

    init(url: String, size: Int, statementTimeoutMilliseconds: Int, acquireTimeout: Double) {
        self.url = url
        self.size = max(1, size)
        self.statementTimeoutMilliseconds = statementTimeoutMilliseconds
        self.acquireTimeout = acquireTimeout
        permits = DispatchSemaphore(value: self.size)
        state = LockedValue(State())
    }

    /// Runs `body` with a connection of its own.
    ///
    /// A connection that had been idle may have been cut while it waited (the server restarted, a
    /// proxy timed it out); that shows only when it is used. When such a connection breaks on the
    /// first statement `body` sends (libpq saw it closed, not a late answer), `body` runs once more on
    /// a new one: a connection cut while idle
    /// never delivered that statement, and every multi-statement call starts with `BEGIN`. (A
    /// single statement on a connection cut just as it arrived could in principle run twice; every
    /// single-statement call is a read or repeats harmlessly, but `createUser` would then report the
    /// name taken.) A call that breaks later, or on a new connection, is not repeated: what it sent
    /// may have been applied.
    /// - Parameters:
    ///   - timeout: how long to wait for a free connection (default ``acquireTimeout``).
    func withConnection<T>(
        timeout: Double? = nil, _ body: (PostgresConnection) throws(PostgresError) -> T
    ) throws(PostgresError) -> T {
        guard permits.wait(timeout: .now() + (timeout ?? acquireTimeout)) == .success else {
            throw PostgresError(
                message: "all \(size) PostgreSQL connections stayed busy for \(timeout ?? acquireTimeout) s "
                    + "(GATEHOUSE_DB_POOL_SIZE)",
                connectionBroken: true)
        }
        defer { permits.signal() }
        if let reused = try takeIdle() {
            let sentBefore = reused.sent
            do throws(PostgresError) {
                let result = try body(reused)
                giveBack(reused)
                return result
            } catch
                where error.connectionBroken && !error.unanswered && !reused.isOpen && reused.sent == sentBefore + 1
            {
                // Dropped here (its last reference); try once on a new connection below.
            } catch {
                giveBack(reused)
                throw error
            }
        }
        let connection = try PostgresConnection(url: url, statementTimeoutMilliseconds: statementTimeoutMilliseconds)
        do throws(PostgresError) {
            let result = try body(connection)
            giveBack(connection)
            return result
        } catch {
            giveBack(connection)
            throw error
        }
    }

    /// Closes every idle connection; connections in use are closed when they come back. Later calls
    /// throw. Calling it again does nothing.
    func close() {
        let idle = state.withLock { state -> [PostgresConnection] in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        // Closed outside the lock: PQfinish sends a Terminate message.
        _ = idle
    }

    /// An idle connection, or nil when a new one must be opened.
    private func takeIdle() throws(PostgresError) -> PostgresConnection? {
        let taken = state.withLock { state -> (closed: Bool, connection: PostgresConnection?) in
            (state.closed, state.closed ? nil : state.idle.popLast())
        }
        guard !taken.closed else {
            throw PostgresError(message: "the store is closed", connectionBroken: true)
        }
        return taken.connection
    }

    /// Puts a connection back for the next caller, unless it is broken, in a transaction a failure
    /// left open, or the pool is closed; then it is dropped (and closed) here.
    private func giveBack(_ connection: PostgresConnection) {
        guard connection.isOpen, !connection.inTransaction else { return }
        let dropped = state.withLock { state -> PostgresConnection? in
            guard !state.closed else { return connection }
            state.idle.append(connection)
            return nil
        }
        _ = dropped
    }
}
