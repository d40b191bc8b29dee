import Foundation
import JSON
import MicroHTTP
import Synchronization
import Testing
import TestSupport

/// The fault test of issue #9: PostgreSQL stops while the real binary is under load, and starts
/// again.
///
/// Client threads send token checks (`GET /protected`) and writes (`POST /register` with new names,
/// `/login`, `/refresh`, `/logout`) over keep-alive connections; the test stops PostgreSQL in the
/// middle (`PostgresServer.stop()`: a fast shutdown that ends every connection), keeps the load
/// going for about two seconds, starts it again on the same cluster and port, and stops the load
/// once `/readyz` says 200 again. Then:
///
/// - every token check was answered 200 (they are checked from memory; never a 5xx, never a
///   connection error);
/// - every write got its success status or 503 with `Retry-After` and a `{"error","message"}`
///   body (`unavailable`: the store's, not a full queue's), nothing else; writes while PostgreSQL
///   was down did get 503, writes before and writes sent once it accepted connections again
///   succeeded;
/// - `/readyz` answered 503 during the outage, and 200 again within 10 s of PostgreSQL accepting
///   connections;
/// - no write was half-applied: each one that got 503 either did not happen or happened whole
///   (its commit done, its answer lost), and the database agrees with what the service answers
///   (see `checkWritesAfterRecovery`); no refresh token without its session, no session without
///   its user, every live session with exactly one unused refresh token, every ended one with
///   none and with its revocation entry.
///
/// A second test checks that a refresh answered 503 was not applied and can be retried
/// (`aRefreshAnswered503CanBeRetried`).
@Suite(.serialized) struct PostgresOutageUnderLoadTests {
    static let password = "outage-load-password"

    @Test func stoppingPostgreSQLUnderLoadFailsNoTokenCheckAndHalfAppliesNoWrite() async throws {
        try await withPostgres { postgres in
            try await withTemporaryDirectory { directory in
                let database = try await blockingIO { try postgres.createDatabase() }
                let server = try GatehouseProcess(
                    environment: ProcessTests.environment(
                        directory,
                        [
                            "GATEHOUSE_DATABASE_URL": postgres.url(database: database),
                            "GATEHOUSE_DB_POOL_SIZE": "4",
                            // Every client is 127.0.0.1: limits would answer 429s, which prove nothing here.
                            "GATEHOUSE_RATE_LOGIN_PER_IP": "0", "GATEHOUSE_RATE_LOGIN_PER_USERNAME": "0",
                            "GATEHOUSE_RATE_REGISTER_PER_IP": "0", "GATEHOUSE_RATE_REFRESH_PER_IP": "0",
                        ]),
                    logPath: directory + "/gatehouse.log")
                defer { server.stop() }
                let port = try server.waitUntilListening()
                let stock = try Self.prepare(port: port)

                let load = OutageLoad(port: port, stock: stock, deadline: .now + .seconds(30))
                defer { load.stop() }
                let finished = load.start()
                var timeline = OutageTimeline(loadStarted: .now)

                // Load on a healthy service first.
                try await Task.sleep(for: .milliseconds(1500))
                timeline.stopSent = .now
                let stoppedCleanly = await blockingIO { postgres.stop() }
                #expect(stoppedCleanly, "PostgreSQL had to be killed:\n\(postgres.log)")
                timeline.stopped = .now

                // Not ready while it is away, saying when to come back.
                var notReady: TestResponse?
                while notReady == nil, ContinuousClock.now < timeline.stopped + .seconds(5) {
                    if let response = try? httpRequest(port: port, "GET", "/readyz"), response.status == 503 {
                        notReady = response
                    } else {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                #expect(notReady != nil, "/readyz never said 503 with PostgreSQL stopped")
                #expect(notReady?.header("Retry-After") != nil)

                // About two seconds of load on a service without its database, then it comes back.
                try await Task.sleep(until: timeline.stopSent + .seconds(2), clock: .continuous)
                timeline.restartSent = .now
                try await blockingIO { try postgres.restart() }
                timeline.restarted = .now
                while ContinuousClock.now < timeline.restarted + .seconds(10) {
                    if (try? httpRequest(port: port, "GET", "/readyz"))?.status == 200 {
                        timeline.ready = .now
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let ready = try #require(
                    timeline.ready, "not ready within 10 s of PostgreSQL's restart:\n\(server.output.suffix(4000))")

                // A little load on the recovered service, then stop it.
                try await Task.sleep(until: ready + .seconds(1), clock: .continuous)
                load.stop()
                timeline.loadStopped = .now
                let joined = await OutageLoad.join(finished, timeout: 20)
                #expect(joined, "the load threads did not finish")

                let records = load.records.withLock { $0 }
                let summary = Self.summary(of: records, timeline)
                print("PostgresOutageUnderLoadTests: \(timeline)\n\(summary)")
                #expect(timeline.seconds(from: timeline.restarted, to: ready) <= 10)

                Self.checkAnswers(records, timeline, summary: summary)
                try Self.checkDatabaseInvariants(postgres, database: database)
                try Self.checkWritesAfterRecovery(records, port: port, postgres: postgres, database: database)
                try Self.checkDatabaseInvariants(postgres, database: database)

                #expect(server.stop() == 0, "\(server.output.suffix(4000))")
                let log = server.output
                #expect(log.contains("store failed"), "no store failure logged while PostgreSQL was down")
                print("PostgresOutageUnderLoadTests: store failures logged: \(Self.storeFailures(in: log))")
                #expect(!log.contains("Fatal error"), "\(log.suffix(4000))")
            }
        }
    }

    /// A refresh whose rotation committed, answered 503 because the store failed right after it:
    /// the client does what `Retry-After` says and sends the same refresh token again.
    ///
    /// A refresh answered 503 leaves its token as it was, so the retry `Retry-After` asks for works.
    /// (It did not when the controller read the user in a second call after the rotation had
    /// committed: the client never got the new token, and its retry was taken for a replay that
    /// ended the session; the load test above saw that once in about fifteen runs.) Here the read
    /// of the user fails every time, by holding the users table locked past the store's 5 s
    /// statement timeout.
    @Test func aRefreshAnswered503CanBeRetried() async throws {
        try await withPostgres { postgres in
            try await withTemporaryDirectory { directory in
                let database = try await blockingIO { try postgres.createDatabase() }
                let server = try GatehouseProcess(
                    environment: ProcessTests.environment(
                        directory, ["GATEHOUSE_DATABASE_URL": postgres.url(database: database)]),
                    logPath: directory + "/gatehouse.log")
                defer { server.stop() }
                let client = try HTTPTestClient(port: try server.waitUntilListening(), timeout: 30)
                defer { client.close() }
                #expect(
                    try client.send(
                        "POST", "/register", json: ["username": "holder", "password": .string(Self.password)]
                    )
                    .status == 201)
                let tokens = try client.login("holder", Self.password)

                let locker = Task {
                    try await blockingIO {
                        try postgres.psql(
                            "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(7); COMMIT",
                            database: database)
                    }
                }
                let locked = await waitUntil(timeout: 10, interval: .milliseconds(20)) {
                    (try? Self.scalar(
                        postgres, database,
                        """
                        SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                        WHERE c.relname = 'users' AND l.mode = 'AccessExclusiveLock' AND l.granted
                        """)) == 1
                }
                #expect(locked)
                let refused = try client.refresh(tokens.refresh)
                #expect(refused.status == 503, "\(refused.text)")
                #expect(refused.header("Retry-After") != nil)
                _ = try await locker.value
                // The rotation and the read of the user are one transaction: it was rolled back whole,
                // so the token is still unused and the retry Retry-After asks for succeeds.
                let used = try Self.refreshTokensUsed([tokens.refresh], postgres, database)[tokens.refresh]
                #expect(used == false, "store failures logged: \(Self.storeFailures(in: server.output))")
                let retried = try client.refresh(tokens.refresh)
                #expect(retried.status == 200, "the retry of a refresh answered 503: \(retried.status) \(retried.text)")
                #expect(try client.get("/protected", bearer: tokens.access).status == 200, "the session was ended")
                #expect(server.stop() == 0, "\(server.output.suffix(4000))")
            }
        }
    }

    // MARK: - Set-up

    /// Users and sessions the load works on: a reader session per token-check thread, sessions the
    /// refresh thread rotates (one chain each, a new one after every failed rotation), sessions the
    /// logout thread ends (one a request), and `signer`, whom the login thread logs in.
    static func prepare(port: UInt16) throws -> OutageStock {
        let client = try HTTPTestClient(port: port)
        defer { client.close() }
        for name in ["reader-0", "reader-1", "signer", "rotor", "leaver"] {
            let response = try client.send(
                "POST", "/register", json: ["username": .string(name), "password": .string(password)])
            guard response.status == 201 else {
                throw HarnessError("register \(name): \(response.status) \(response.text)")
            }
        }
        return OutageStock(
            readers: try (0..<2).map { try client.login("reader-\($0)", password) },
            chains: try (0..<80).map { _ in try client.login("rotor", password) },
            leaving: try (0..<250).map { _ in try client.login("leaver", password) })
    }

    // MARK: - What the load saw

    /// Token checks all 200; writes their success status or a well-formed 503; 503s while
    /// PostgreSQL was down, none before or once it was back; `/readyz` is checked by the caller.
    static func checkAnswers(_ records: [OutageRecord], _ timeline: OutageTimeline, summary: String) {
        let checks = records.filter { $0.request.kind == .check }
        let badChecks = checks.filter { $0.answer?.status != 200 }
        #expect(checks.count >= 500, "too few token checks: \(summary)")
        #expect(badChecks.isEmpty, "token checks that failed: \(badChecks.prefix(10).map(\.description)); \(summary)")
        #expect(
            checks.contains { timeline.phase(of: $0) == .down },
            "no token check while PostgreSQL was down: \(summary)")

        let writes = records.filter { $0.request.kind != .check }
        let malformed = writes.filter { record in
            guard let answer = record.answer else { return true }
            if answer.status == record.request.kind.success { return false }
            return answer.status != 503 || answer.retryAfter == nil || answer.errorCode == nil || answer.message == nil
        }
        #expect(malformed.isEmpty, "writes answered otherwise: \(malformed.prefix(10).map(\.description)); \(summary)")
        // The store's 503 (`unavailable`), not a full worker queue's (`overloaded`): nothing stalled.
        #expect(
            writes.allSatisfy { $0.answer?.status != 503 || $0.answer?.errorCode == "unavailable" },
            "503s other than unavailable: \(summary)")

        for kind in OutageRequest.Kind.writes {
            let ofKind = writes.filter { $0.request.kind == kind }
            // Finished before PostgreSQL was told to stop: nothing to fail for.
            let before = ofKind.filter { $0.finished < timeline.stopSent }
            let down = ofKind.filter { timeline.phase(of: $0) == .down }
            // Sent once PostgreSQL accepted connections again: the pool replaces the connections the
            // restart broke without failing a call, readiness or not.
            let back = ofKind.filter { $0.started >= timeline.restarted }
            let recovered = back.filter { timeline.phase(of: $0) == .recovered }
            #expect(!before.isEmpty && before.allSatisfy(\.succeeded), "\(kind) before the outage: \(summary)")
            #expect(
                down.contains { $0.answer?.status == 503 }, "no \(kind) got 503 while PostgreSQL was down: \(summary)")
            #expect(!recovered.isEmpty && back.allSatisfy(\.succeeded), "\(kind) once PostgreSQL was back: \(summary)")
        }
    }

    // MARK: - Nothing half-applied

    /// After recovery, each write's effect is all or nothing, seen both through the service and in
    /// the database:
    ///
    /// - registration 201: the user logs in; 503: the name is either absent (it logs in with 401
    ///   and registers now with 201) or present as a whole user who logs in with the password sent
    ///   (the commit happened and its answer was lost). The users in the database are exactly the
    ///   201s and those;
    /// - login 200: its access token works; the database holds between (200s) and (200s + 503s)
    ///   sessions of the user;
    /// - refresh 200: the new access token works. 503: the rotation is one transaction, so in the
    ///   database the presented token is either unused (then presenting it now rotates once: 200,
    ///   and the new token works) or used, with its successor in place (the rotation committed and
    ///   the 503 came after it; then presenting it now is a replay: 401, and the whole session is
    ///   refused from then on, its access token and refresh tokens, and it is ended in the
    ///   database). The second is what the store guarantees, but not what a client told to retry
    ///   expects: `aRefreshAnswered503CanBeRetried`;
    /// - logout 204: its access and refresh tokens are refused and the session is ended in the
    ///   database. 503: either ended in the database, and then refused by the service (the
    ///   instance caught up with the revocation before it was ready), or not ended and both of its
    ///   tokens still work.
    static func checkWritesAfterRecovery(
        _ records: [OutageRecord], port: UInt16, postgres: PostgresServer, database: String
    ) throws {
        let client = try HTTPTestClient(port: port)
        defer { client.close() }
        func status(_ response: @autoclosure () throws -> TestResponse) -> Int {
            (try? response().status) ?? -1
        }
        func login(_ name: String) -> Int {
            status(try client.send("POST", "/login", json: ["username": .string(name), "password": .string(password)]))
        }
        let answered = records.filter { $0.answer != nil }

        // Registrations.
        let registrations = answered.filter { $0.request.kind == .register }
        let stored = Set(
            try postgres.psql("SELECT username FROM users WHERE username LIKE 'load-%'", database: database)
                .split(separator: "\n").map(String.init))
        var registrationsApplied = 0
        var registrationsNotApplied = 0
        for record in registrations {
            let name = record.request.username
            switch record.answer?.status {
            case 201:
                #expect(stored.contains(name), "\(name) got 201 but is not in the database")
                #expect(login(name) == 200, "\(name) got 201 but cannot log in")
            case 503 where stored.contains(name):
                registrationsApplied += 1
                #expect(login(name) == 200, "\(name) got 503, is in the database, but cannot log in")
            case 503:
                registrationsNotApplied += 1
                #expect(login(name) == 401, "\(name) got 503 and is not in the database, yet logs in")
                let again = status(
                    try client.send(
                        "POST", "/register", json: ["username": .string(name), "password": .string(password)]))
                #expect(again == 201, "\(name) got 503, is not in the database, and registering it now gives \(again)")
            default:
                break  // Reported by checkAnswers.
            }
        }
        // The users there: the 201s, and the 503s found applied.
        let expectedNames = Set(
            registrations.filter { $0.answer?.status == 201 || stored.contains($0.request.username) }
                .map(\.request.username))
        #expect(
            stored == expectedNames,
            "users in the database that no registration explains: \(stored.subtracting(expectedNames))")

        // Logins.
        let logins = answered.filter { $0.request.kind == .login }
        let loggedIn = logins.compactMap { $0.answer?.tokens }
        for tokens in loggedIn {
            #expect(status(try client.get("/protected", bearer: tokens.access)) == 200, "a login's token is refused")
        }
        let loginsRefused = logins.filter { $0.answer?.status == 503 }.count
        let signerSessions = try scalar(
            postgres, database,
            "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'signer'")
        #expect(
            (loggedIn.count...(loggedIn.count + loginsRefused)).contains(signerSessions),
            "signer has \(signerSessions) sessions after \(loggedIn.count) logins with 200, \(loginsRefused) with 503")

        // Refreshes: the 200s first, since checking a 503 may end its session (a replay).
        let refreshes = answered.filter { $0.request.kind == .refresh }
        for tokens in refreshes.compactMap({ $0.answer?.tokens }) {
            #expect(status(try client.get("/protected", bearer: tokens.access)) == 200, "a refresh's token is refused")
        }
        let refused = refreshes.filter { $0.answer?.status == 503 }.compactMap(\.request.tokens)
        let used = try refreshTokensUsed(refused.map(\.refresh), postgres, database)
        var rotationsApplied = 0
        var rotationsNotApplied = 0
        for tokens in refused {
            let sid = try sessionID(of: tokens.access)
            switch used[tokens.refresh] {
            case false?:
                rotationsNotApplied += 1
                let rotated = try client.refresh(tokens.refresh)
                #expect(rotated.status == 200, "an unused refresh token (503 before) gives \(rotated.status)")
                if let next = try? Tokens(rotated) {
                    #expect(status(try client.get("/protected", bearer: next.access)) == 200)
                }
            case true?:
                rotationsApplied += 1
                // Still live until the replay below.
                #expect(status(try client.get("/protected", bearer: tokens.access)) == 200)
                #expect(status(try client.refresh(tokens.refresh)) == 401, "a used refresh token is accepted again")
                #expect(
                    status(try client.get("/protected", bearer: tokens.access)) == 401, "replayed session not ended")
                #expect(try sessionEnded(sid, postgres, database), "replayed session \(sid) not ended in the database")
                let left = try scalar(
                    postgres, database, "SELECT count(*) FROM refresh_tokens WHERE session_id = '\(sql(sid))'")
                #expect(left == 0, "session \(sid) ended with \(left) refresh tokens left")
            case nil:
                Issue.record("a refresh token that got 503 is not in the database at all (session \(sid))")
            }
        }

        // Logouts.
        let logouts = answered.filter { $0.request.kind == .logout }
        // Only logouts end leaver's sessions: one look at the database for all of them.
        let liveLeaving = Set(
            try postgres.psql(
                """
                SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id
                WHERE u.username = 'leaver' AND s.revoked_at IS NULL
                """, database: database
            ).split(separator: "\n").map(String.init))
        var logoutsApplied = 0
        var logoutsNotApplied = 0
        for record in logouts {
            guard let tokens = record.request.tokens, let answer = record.answer,
                answer.status == 204 || answer.status == 503
            else { continue }
            let sid = try sessionID(of: tokens.access)
            let ended = !liveLeaving.contains(sid)
            if answer.status == 204 || ended {
                if answer.status == 503 { logoutsApplied += 1 }
                #expect(ended, "logout \(answer.status) of \(sid), but the session is live in the database")
                #expect(
                    status(try client.get("/protected", bearer: tokens.access)) == 401,
                    "ended session \(sid) still accepted")
                #expect(status(try client.refresh(tokens.refresh)) == 401, "ended session \(sid) still refreshes")
            } else {
                logoutsNotApplied += 1
                #expect(
                    status(try client.get("/protected", bearer: tokens.access)) == 200, "live session \(sid) refused")
                #expect(status(try client.refresh(tokens.refresh)) == 200, "live session \(sid) does not refresh")
            }
        }
        print(
            """
            PostgresOutageUnderLoadTests: writes answered 503, after recovery: \
            registrations \(registrationsApplied) applied (answer lost) / \(registrationsNotApplied) not applied; \
            logins \(loginsRefused) answered 503, \(signerSessions - loggedIn.count) of them applied; \
            refreshes \(rotationsApplied) applied / \(rotationsNotApplied) not applied; \
            logouts \(logoutsApplied) applied / \(logoutsNotApplied) not applied
            """)
    }

    /// No refresh token without its session, no session without its user (the foreign keys say
    /// so; this checks nothing bypassed them), every live session with exactly one unused refresh
    /// token (login inserts the session and its token together, rotation uses one and adds one
    /// together), every ended session with no refresh token (revocation deletes them in the same
    /// transaction) and with its entry in the revocation sequence (the trigger).
    static func checkDatabaseInvariants(_ postgres: PostgresServer, database: String) throws {
        let checks: [(String, String)] = [
            (
                "refresh tokens without their session",
                """
                SELECT count(*) FROM refresh_tokens r
                WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = r.session_id)
                """
            ),
            (
                "sessions without their user",
                "SELECT count(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id)"
            ),
            (
                "live sessions without exactly one unused refresh token",
                """
                SELECT count(*) FROM sessions s WHERE s.revoked_at IS NULL AND (SELECT count(*) FROM refresh_tokens r
                WHERE r.session_id = s.id AND r.consumed_at IS NULL) <> 1
                """
            ),
            (
                "ended sessions with refresh tokens left",
                """
                SELECT count(*) FROM sessions s WHERE s.revoked_at IS NOT NULL
                AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id)
                """
            ),
            (
                "ended sessions missing from the revocation sequence",
                """
                SELECT count(*) FROM sessions s WHERE s.revoked_at IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM session_revocations v WHERE v.session_id = s.id)
                """
            ),
        ]
        for (what, query) in checks {
            let found = try scalar(postgres, database, query)
            #expect(found == 0, "\(found) \(what)")
        }
    }

    // MARK: - Database helpers

    static func scalar(_ postgres: PostgresServer, _ database: String, _ query: String) throws -> Int {
        let output = try postgres.psql(query, database: database).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let value = Int(output) else { throw HarnessError("not a count: '\(output)' from \(query)") }
        return value
    }

    /// Whether the session is ended in the database (revoked, or gone with its user).
    static func sessionEnded(_ id: String, _ postgres: PostgresServer, _ database: String) throws -> Bool {
        try scalar(
            postgres, database, "SELECT count(*) FROM sessions WHERE id = '\(sql(id))' AND revoked_at IS NULL") == 0
    }

    /// For each refresh token, whether the database holds it as used (true) or unused (false);
    /// absent when it holds no such token. The store keeps SHA-256 of the token's text.
    static func refreshTokensUsed(_ tokens: [String], _ postgres: PostgresServer, _ database: String) throws
        -> [String: Bool]
    {
        guard !tokens.isEmpty else { return [:] }
        let values = tokens.map { "('\(sql($0))')" }.joined(separator: ", ")
        let output = try postgres.psql(
            """
            SELECT t.token, r.consumed_at IS NOT NULL FROM (VALUES \(values)) AS t(token)
            JOIN refresh_tokens r ON r.hash = sha256(convert_to(t.token, 'UTF8'))
            """, database: database)
        var used: [String: Bool] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: "|").map(String.init)
            if fields.count == 2 { used[fields[0]] = fields[1] == "t" }
        }
        return used
    }

    /// `text` as the inside of a SQL string literal.
    static func sql(_ text: String) -> String { text.replacingOccurrences(of: "'", with: "''") }

    // MARK: - Report

    /// The service's "store failed" log lines counted by the store call that failed (their error
    /// reads `StoreError.<code>: <call>: <reason>`).
    static func storeFailures(in log: String) -> String {
        var counts: [String: Int] = [:]
        for line in log.split(separator: "\n") where line.contains("store failed") {
            let error = line.range(of: "error=").map { line[$0.upperBound...] } ?? ""
            let parts = error.split(separator: ":", maxSplits: 2)
            let action = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "?"
            counts[action, default: 0] += 1
        }
        return counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }

    /// Counts by kind, phase and answer.
    static func summary(of records: [OutageRecord], _ timeline: OutageTimeline) -> String {
        var counts: [String: Int] = [:]
        for record in records {
            let what: String
            if let answer = record.answer {
                what = answer.status == 503 ? "503 \(answer.errorCode ?? "?")" : String(answer.status)
            } else {
                what = "FAILED"
            }
            counts["\(record.request.kind) \(timeline.phase(of: record)) \(what)", default: 0] += 1
        }
        return "\(records.count) requests: "
            + counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }
}

// MARK: - OutageTimeline

/// When the test did what, on the monotonic clock.
struct OutageTimeline: CustomStringConvertible {
    let loadStarted: ContinuousClock.Instant
    var stopSent: ContinuousClock.Instant = .now
    var stopped: ContinuousClock.Instant = .now
    var restartSent: ContinuousClock.Instant = .now
    var restarted: ContinuousClock.Instant = .now
    var ready: ContinuousClock.Instant?
    var loadStopped: ContinuousClock.Instant = .now

    init(loadStarted: ContinuousClock.Instant) { self.loadStarted = loadStarted }

    enum Phase: String, CustomStringConvertible {
        /// Sent before PostgreSQL was told to stop.
        case before
        /// Sent from then until it accepted connections again.
        case down
        /// Sent from then until `/readyz` said 200 again.
        case restarting
        /// Sent once it had.
        case recovered

        var description: String { rawValue }
    }

    func phase(of record: OutageRecord) -> Phase {
        if record.started < stopSent { return .before }
        if record.started < restarted { return .down }
        if let ready, record.started >= ready { return .recovered }
        return .restarting
    }

    func seconds(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Double {
        let components = (end - start).components
        return Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    var description: String {
        func at(_ instant: ContinuousClock.Instant) -> String {
            String(format: "%.2f s", seconds(from: loadStarted, to: instant))
        }
        return "stop sent at \(at(stopSent)), stopped at \(at(stopped)), restart sent at \(at(restartSent)), "
            + "PostgreSQL ready at \(at(restarted)), service ready at \(ready.map(at) ?? "never") ("
            + (ready.map { String(format: "%.2f s", seconds(from: restarted, to: $0)) } ?? "-")
            + " after PostgreSQL), load stopped at \(at(loadStopped))"
    }
}

// MARK: - Load

/// Sessions prepared for the load.
struct OutageStock: Sendable {
    /// One per token-check thread; never ended.
    let readers: [Tokens]
    /// Sessions the refresh thread rotates.
    let chains: [Tokens]
    /// Sessions the logout thread ends.
    let leaving: [Tokens]
}

/// One request the load sent.
struct OutageRequest: Sendable {
    enum Kind: String, Sendable, CustomStringConvertible {
        case check, register, login, refresh, logout

        static let writes: [Kind] = [.register, .login, .refresh, .logout]

        /// The status of a request that did what it asked.
        var success: Int {
            switch self {
            case .check, .login, .refresh: 200
            case .register: 201
            case .logout: 204
            }
        }

        var description: String { rawValue }
    }

    let kind: Kind
    /// The user registered or logged in (empty for the others).
    var username = ""
    /// The session's tokens: the one checked, rotated (its refresh token sent) or ended.
    var tokens: Tokens?
}

/// What the service answered.
struct OutageAnswer: Sendable {
    let status: Int
    let retryAfter: String?
    /// The JSON body's `error` and `message`, when it has them.
    let errorCode: String?
    let message: String?
    /// The tokens of a 200 to a login or refresh.
    let tokens: Tokens?

    init(_ response: TestResponse, kind: OutageRequest.Kind) {
        status = response.status
        retryAfter = response.header("Retry-After")
        let object = kind == .check ? nil : (try? response.json())?.objectValue
        errorCode = object?["error"]?.stringValue
        message = object?["message"]?.stringValue
        tokens = response.status == 200 && (kind == .login || kind == .refresh) ? try? Tokens(response) : nil
    }
}

/// One request and what became of it.
struct OutageRecord: Sendable, CustomStringConvertible {
    let request: OutageRequest
    let started: ContinuousClock.Instant
    let finished: ContinuousClock.Instant
    /// Nil when no whole response came (the error is in `failure`).
    let answer: OutageAnswer?
    let failure: String?

    var succeeded: Bool { answer?.status == request.kind.success }

    var description: String {
        let subject = request.username.isEmpty ? "" : " \(request.username)"
        guard let answer else { return "\(request.kind)\(subject): \(failure ?? "no answer")" }
        return "\(request.kind)\(subject): \(answer.status) error=\(answer.errorCode ?? "-") "
            + "Retry-After=\(answer.retryAfter ?? "-")"
    }
}

/// Client threads, each on a keep-alive connection of its own (opened again when the service
/// closes it or an exchange fails): two sending token checks back to back, and one each for
/// registrations, logins, refreshes and logouts, paced (25 ms between writes, 100 ms after one
/// that did not succeed, as a client that backs off).
final class OutageLoad: Sendable {
    let port: UInt16
    let deadline: ContinuousClock.Instant
    // LockedValue (a pthread mutex), not Synchronization's Mutex: ThreadSanitizer does not see a
    // futex-based lock, and reported the appends under it as a race.
    let records = LockedValue<[OutageRecord]>([])
    private let stock: OutageStock
    private let stopping = Atomic<Bool>(false)
    /// How much of the stock is taken, and the next registration's number.
    private let taken = LockedValue(Taken())

    private struct Taken {
        var chains = 0
        var leaving = 0
        var registrations = 0
    }

    init(port: UInt16, stock: OutageStock, deadline: ContinuousClock.Instant) {
        self.port = port
        self.stock = stock
        self.deadline = deadline
    }

    /// Starts the threads.
    /// - Returns: a group that is done when every thread has finished.
    func start() -> DispatchGroup {
        let group = DispatchGroup()
        let jobs =
            stock.readers.map { OutageRequest(kind: .check, tokens: $0) }
            + OutageRequest.Kind.writes.map { OutageRequest(kind: $0) }
        for (index, job) in jobs.enumerated() {
            group.enter()
            let thread = Thread { [self] in
                run(job)
                group.leave()
            }
            thread.name = "outage-load-\(job.kind)-\(index)"
            thread.start()
        }
        return group
    }

    /// Waits for the threads `start()` started, off the cooperative pool.
    /// - Returns: whether they all finished within `timeout` seconds.
    static func join(_ group: DispatchGroup, timeout: Double) async -> Bool {
        await blockingIO { () -> DispatchTimeoutResult in group.wait(timeout: .now() + timeout) } == .success
    }

    /// Tells the threads to stop after their current request.
    func stop() { stopping.store(true, ordering: .relaxed) }

    private var running: Bool { !stopping.load(ordering: .relaxed) && ContinuousClock.now < deadline }

    private func run(_ job: OutageRequest) {
        var client: HTTPTestClient?
        var chain: Tokens?
        var local: [OutageRecord] = []
        defer {
            client?.close()
            records.withLock { $0.append(contentsOf: local) }
        }
        while running {
            var request = job
            switch job.kind {
            case .check:
                break
            case .register:
                let number = taken.withLock { taken in
                    defer { taken.registrations += 1 }
                    return taken.registrations
                }
                request.username = "load-\(number)"
            case .login:
                request.username = "signer"
            case .refresh:
                if chain == nil { chain = next(\.chains, from: stock.chains) }
                request.tokens = chain
            case .logout:
                request.tokens = next(\.leaving, from: stock.leaving)
            }
            if job.kind == .refresh || job.kind == .logout, request.tokens == nil {
                // Nothing left to rotate or end.
                usleep(25_000)
                continue
            }

            let started = ContinuousClock.now
            var answer: OutageAnswer?
            var failure: String?
            do {
                let open = try client ?? HTTPTestClient(port: port, timeout: 15)
                client = open
                let response = try send(request, on: open)
                answer = OutageAnswer(response, kind: job.kind)
                if response.closesConnection {
                    open.close()
                    client = nil
                }
            } catch {
                failure = "\(error)"
                client?.close()
                client = nil
            }
            let record = OutageRecord(
                request: request, started: started, finished: .now, answer: answer, failure: failure)
            local.append(record)

            if job.kind == .refresh {
                // Carry on with the new tokens; after anything else, leave this one for the checks
                // afterwards and take a new chain.
                chain = answer?.tokens
            }
            if job.kind != .check { usleep(record.succeeded ? 25_000 : 100_000) }
        }
    }

    private func send(_ request: OutageRequest, on client: HTTPTestClient) throws -> TestResponse {
        switch request.kind {
        case .check:
            return try client.get("/protected", bearer: request.tokens?.access ?? "")
        case .register, .login:
            return try client.send(
                "POST", request.kind == .register ? "/register" : "/login",
                json: [
                    "username": .string(request.username), "password": .string(PostgresOutageUnderLoadTests.password),
                ])
        case .refresh:
            return try client.refresh(request.tokens?.refresh ?? "")
        case .logout:
            return try client.post("/logout", bearer: request.tokens?.access ?? "")
        }
    }

    /// The next unused entry of a stock list, or nil when all are taken.
    private func next(_ index: WritableKeyPath<Taken, Int>, from list: [Tokens]) -> Tokens? {
        taken.withLock { taken in
            guard taken[keyPath: index] < list.count else { return nil }
            defer { taken[keyPath: index] += 1 }
            return list[taken[keyPath: index]]
        }
    }
}
