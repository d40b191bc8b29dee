import Dispatch
import Foundation
import MicroHTTP
import Testing
import TestSupport

@testable import AuthService

/// What only the PostgreSQL store has: migrations under an advisory lock, the connection pool, the
/// statement timeout, reconnecting, and failures to reach the server. (Everything `UserStore`
/// promises runs against both stores in StoreTests and AdminStoreTests.)
@Suite("PostgresStore", .postgres)
struct PostgresStoreTests {
    private func server() throws -> PostgresServer {
        guard let server = PostgresServer.current else { throw HarnessError("no PostgreSQL server for this suite") }
        return server
    }

    @Test(arguments: StoreBackend.allCases)
    func aClashingUserIDIsAFailureNotATakenUsername(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            _ = try store.createUser(id: "u1", username: "alice", passwordHash: "h", createdAt: 1)
            let error = #expect(throws: StoreError.self) {
                try store.createUser(id: "u1", username: "bob", passwordHash: "h", createdAt: 1)
            }
            #expect(error?.code == .failure)
            #expect(try store.user(named: "bob") == nil)
        }
    }

    @Test func migrationsRunOnceWhenFourStoresStartTogetherAndAgainLater() throws {
        try withStoreLocation(.postgres) { location throws in
            let database = try #require(location.database)
            let opened = LockedValue<[Result<Bool, StoreError>]>([])
            onThreads(4) { _ in
                let outcome = Result { () throws(StoreError) -> Bool in
                    let store = try PostgresStore(url: location.address, poolSize: 1)
                    store.close()
                    return true
                }
                opened.withLock { $0.append(outcome) }
            }
            for outcome in opened.withLock({ $0 }) {
                #expect(throws: Never.self) { try outcome.get() }
            }
            let expected = "\(PostgresStore.migrations.count)|\(PostgresStore.migrations.count)"
            let applied = try server().psql("SELECT count(*), max(version) FROM schema_migrations", database: database)
            #expect(applied.trimmingCharacters(in: .whitespacesAndNewlines) == expected)

            let again = try location.open()
            defer { again.close() }
            _ = try again.createUser(id: "u1", username: "alice", passwordHash: "h", createdAt: 1)
            let reapplied = try server().psql("SELECT count(*), max(version) FROM schema_migrations", database: database)
            #expect(reapplied.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
        }
    }

    @Test func aSchemaNewerThanThisBuildIsRefused() throws {
        try withStoreLocation(.postgres) { location throws in
            try location.open().close()
            try server().psql("INSERT INTO schema_migrations (version) VALUES (99)", database: try #require(location.database))
            let error = #expect(throws: StoreError.self) { try location.open() }
            #expect(error?.code == .incompatibleSchema)
        }
    }

    @Test func aServerNobodyListensOnIsUnavailableAndThePasswordIsNotInTheMessage() throws {
        let port = try reserveLoopbackPorts(1)[0]
        let error = #expect(throws: StoreError.self) {
            try PostgresStore(url: "postgresql://gatehouse:s3cret-word@127.0.0.1:\(port)/gatehouse")
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("s3cret-word") == false)
        #expect(error?.message.contains("\(port)") == true)
    }

    @Test func aMissingDatabaseIsUnavailableNamingIt() throws {
        let error = #expect(throws: StoreError.self) {
            try PostgresStore(url: try server().url(database: "no_such_database"))
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("no_such_database") == true)
    }

    @Test func aStatementOverTheTimeoutIsCancelledAndTheConnectionStaysUsable() throws {
        try withStoreLocation(.postgres) { location throws in
            let connection = try PostgresConnection(url: location.address, statementTimeoutMilliseconds: 100)
            let started = Date()
            let error = #expect(throws: PostgresError.self) { try connection.query("SELECT pg_sleep(5)") }
            #expect(Date().timeIntervalSince(started) < 3)
            #expect(error?.sqlState == "57014")
            #expect(error?.storeCode == .unavailable)
            #expect(connection.isOpen)
            #expect(try connection.query("SELECT 1").rows.first?.int64(0) == 1)
        }
    }

    /// A server that stops answering without closing anything (every process stopped with
    /// SIGSTOP; the kernel still accepts and acknowledges): each call gives up within its bound
    /// instead of waiting forever, and once the server answers again the store works at once. On a
    /// server of its own, since the suite's is shared by tests running alongside.
    @Test func aServerThatStopsAnsweringFailsEachCallWithinItsBound() async throws {
        try await withPostgres { server in
            try await blockingIO {
                let store = try PostgresStore(url: server.url(database: try server.createDatabase()), poolSize: 2)
                defer { store.close() }
                _ = try store.createUser(id: "u1", username: "alice", passwordHash: "h", createdAt: 1)
                try store.ping()
                #expect(!server.freeze().isEmpty)
                defer { server.thaw() }

                // An idle pooled connection: `SELECT 1` is not answered within the ping's 1 s.
                var started = Date()
                let ping = #expect(throws: StoreError.self) { try store.ping() }
                #expect(ping?.code == .unavailable)
                #expect(Date().timeIntervalSince(started) < 3, "\(Date().timeIntervalSince(started)) s")
                // Its connection was given up; a new one waits at most libpq's connect_timeout (5 s).
                started = Date()
                let read = #expect(throws: StoreError.self) { _ = try store.user(named: "alice") }
                #expect(read?.code == .unavailable)
                #expect(Date().timeIntervalSince(started) < 9, "\(Date().timeIntervalSince(started)) s")

                server.thaw()
                #expect(try store.user(named: "alice")?.id == "u1")
                try store.ping()
            }
        }
    }

    @Test func connectionsTheServerEndedAreReplacedWithoutFailingACall() throws {
        try withStoreLocation(.postgres) { location throws in
            let store = try location.open(poolSize: 2)
            defer { store.close() }
            _ = try store.createUser(id: "u1", username: "alice", passwordHash: "h", createdAt: 1)
            let database = try #require(location.database)
            let ended = try server().psql(
                """
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = '\(database)' AND pid <> pg_backend_pid()
                """)
            #expect(Int(ended.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 1)
            #expect(try store.user(named: "ALICE")?.id == "u1")
            try store.ping()
        }
    }

    @Test func aCallWaitsForAFreeConnectionOnlyAsLongAsTheAcquireTimeout() throws {
        try withStoreLocation(.postgres) { location throws in
            let pool = PostgresPool(
                url: location.address, size: 1, statementTimeoutMilliseconds: 5000, acquireTimeout: 0.2)
            defer { pool.close() }
            let holding = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            let holder = Thread {
                _ = try? pool.withConnection { db throws(PostgresError) in
                    holding.signal()
                    _ = release.wait(timeout: .now() + 10)
                    return try db.query("SELECT 1").affected
                }
            }
            holder.start()
            #expect(holding.wait(timeout: .now() + 10) == .success)
            let started = Date()
            let error = #expect(throws: PostgresError.self) {
                try pool.withConnection { db throws(PostgresError) in try db.query("SELECT 1").affected }
            }
            release.signal()
            #expect(Date().timeIntervalSince(started) < 2)
            #expect(error?.storeCode == .unavailable)
            #expect(error?.message.contains("GATEHOUSE_DB_POOL_SIZE") == true)
            // Once it is given back, the next call gets it.
            #expect(try pool.withConnection(timeout: 10) { db throws(PostgresError) in try db.query("SELECT 1").rows.count } == 1)
        }
    }

    @Test func twoInstancesEndingSessionsAtOnceReachAReaderInOrderWithNoneSkipped() throws {
        try withStoreLocation(.postgres) { location throws in
            let writers = [try location.open(), try location.open()]
            let reader = try location.open()
            defer {
                for store in writers + [reader] { store.close() }
            }
            let now: Int64 = 1_800_000_000
            _ = try writers[0].createUser(id: "u1", username: "alice", passwordHash: "h", createdAt: now)
            let ids = (0..<60).map { "s\($0)" }
            for id in ids {
                try writers[0].createSession(
                    Session(id: id, userID: "u1", createdAt: now, expiresAt: now + 3600),
                    refreshTokenHash: Array(id.utf8), refreshExpiresAt: now + 3600)
            }
            let start = try reader.revocationCursor()
            let done = LockedValue<Int>(0)
            let seen = LockedValue<[String]>([])
            onThreads(3) { index in
                if index < 2 {
                    for (offset, id) in ids.enumerated() where offset % 2 == index {
                        try? writers[index].revokeSession(id: id, at: now)
                    }
                    done.withLock { $0 += 1 }
                    return
                }
                // The reader follows the sequence as RevocationFeed does, while the writers run.
                var cursor = start
                while true {
                    let finished = done.withLock { $0 } == 2
                    guard let batch = try? reader.revocations(after: cursor) else { return }
                    seen.withLock { $0 += batch.sessions.map(\.id) }
                    cursor = batch.cursor
                    if finished { return }
                }
            }
            let all = seen.withLock { $0 }
            #expect(all.count == ids.count)
            #expect(Set(all) == Set(ids))
        }
    }

    /// The listener (one connection of its own, `LISTEN gatehouse_revocations`) makes the feed poll as
    /// soon as another store ends a session: the feed's timer is not started here, so nothing else
    /// polls. It is ready only once connected and caught up, and `stop()` closes its connection.
    @Test func theListenerMakesTheFeedPollWhenAnotherStoreEndsASession() throws {
        try withStoreLocation(.postgres) { location throws in
            let database = try #require(location.database)
            let store = try location.open()
            defer { store.close() }
            let user = try store.createUser(id: "u1", username: "alice", passwordHash: "h", createdAt: 1)
            let expires: Int64 = 4_000_000_000
            try store.createSession(
                Session(id: "s1", userID: user.id, createdAt: 1, expiresAt: expires),
                refreshTokenHash: Array(repeating: 1, count: 32), refreshExpiresAt: expires)
            let revocations = RevocationList()
            let feed = RevocationFeed(
                store: store, revocations: revocations, cursor: try store.revocationCursor(), clock: .system,
                logger: Logger(sink: MemoryLogSink()))
            let listener = PostgresListener(url: location.address, feed: feed, logger: Logger(sink: MemoryLogSink()))
            #expect(listener.notReadyReason != nil)
            listener.start()
            #expect(listener.waitUntilReady(timeout: 10))
            let listening = try server().psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gatehouse-listener'",
                database: database)
            #expect(listening.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

            let other = try location.open()
            try other.revokeSession(id: "s1", at: 2)
            other.close()
            let deadline = Date().addingTimeInterval(5)
            while !revocations.isRevoked("s1"), Date() < deadline { usleep(5000) }
            #expect(revocations.isRevoked("s1"))

            let started = Date()
            listener.stop()
            feed.stop()
            #expect(Date().timeIntervalSince(started) < 2)
            let left = try server().psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gatehouse-listener'",
                database: database)
            #expect(left.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            listener.stop()  // again: returns at once
        }
    }
}
