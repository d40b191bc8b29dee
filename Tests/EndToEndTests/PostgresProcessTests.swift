import Foundation
import JSON
import Testing
import TestSupport

/// The real `gatehouse` binary on a real PostgreSQL (`GATEHOUSE_DATABASE_URL=postgresql://...`):
/// the tutorial's flow, the command line on the same database, a restart, and what happens while
/// the database is away and when it comes back.
@Suite(.serialized) struct PostgresProcessTests {
    @Test func theWalkthroughWorksOnPostgreSQLAndSurvivesARestart() async throws {
        try await withPostgres { postgres in
            try await withTemporaryDirectory { directory in
                let database = try await blockingIO { try postgres.createDatabase() }
                let environment = ProcessTests.environment(
                    directory, ["GATEHOUSE_DATABASE_URL": postgres.url(database: database), "GATEHOUSE_DB_POOL_SIZE": "4"])

                let first = try GatehouseProcess(environment: environment, logPath: directory + "/1.log")
                let client = try HTTPTestClient(port: try first.waitUntilListening())
                let register = try client.send(
                    "POST", "/register", json: ["username": "Alice", "password": "secret-password"])
                #expect(register.status == 201, "\(register.text)")
                #expect(
                    try client.send("POST", "/register", json: ["username": "ALICE", "password": "other-password"])
                        .status == 409)
                let session = try client.login("alice", "secret-password")
                let protected = try client.get("/protected", bearer: session.access)
                #expect(protected.status == 200)
                #expect(try protected.json().objectValue?["user"] == "Alice")

                let rotated = try client.refresh(session.refresh)
                #expect(rotated.status == 200)
                let second = try Tokens(rotated)
                #expect(try client.get("/protected", bearer: second.access).status == 200)
                #expect(try client.send("GET", "/readyz").status == 200)

                // Logout ends the session: its access and refresh tokens stop working.
                #expect(try client.post("/logout", bearer: second.access).status == 204)
                #expect(try client.get("/protected", bearer: second.access).status == 401)
                #expect(try client.refresh(second.refresh).status == 401)
                // The consumed first refresh token too.
                #expect(try client.refresh(session.refresh).status == 401)

                let kept = try client.login("alice", "secret-password")
                client.close()
                #expect(first.stop() == 0, "\(first.output)")
                #expect(!first.output.contains("secret-password"))

                // The command line reads the same database.
                let grant = try GatehouseProcess(
                    arguments: ["users", "grant", "alice", "admin"], environment: environment,
                    logPath: directory + "/grant.log")
                #expect(grant.waitForExit(timeout: 30) == 0, "\(grant.output)")
                #expect(grant.output.contains("granted admin"))

                // A second start: the schema is there, users and revocations are kept, and the grant
                // ended the session that was live.
                let again = try GatehouseProcess(environment: environment, logPath: directory + "/2.log")
                let client2 = try HTTPTestClient(port: try again.waitUntilListening())
                #expect(try client2.get("/protected", bearer: second.access).status == 401)
                #expect(try client2.get("/protected", bearer: kept.access).status == 401)
                let admin = try client2.login("alice", "secret-password")
                let me = try client2.get("/me", bearer: admin.access)
                #expect(me.status == 200)
                #expect(try me.json().objectValue?["roles"] == ["admin"])
                #expect(try client2.send("GET", "/readyz").status == 200)

                // PostgreSQL goes away: readiness says so at once; token checks go on from memory;
                // writes answer 503 with Retry-After.
                #expect(await blockingIO { postgres.stop() })
                let notReady = try client2.send("GET", "/readyz")
                #expect(notReady.status == 503)
                #expect(notReady.header("Retry-After") != nil)
                #expect((try notReady.json().objectValue?["message"]?.stringValue ?? "").contains("user store"))
                #expect(try client2.get("/protected", bearer: admin.access).status == 200)
                let refusedRegistration = try client2.send(
                    "POST", "/register", json: ["username": "bob", "password": "secret-password"])
                #expect(refusedRegistration.status == 503)
                #expect(refusedRegistration.header("Retry-After") != nil)
                let refusedLogin = try client2.send(
                    "POST", "/login", json: ["username": "alice", "password": "secret-password"])
                #expect(refusedLogin.status == 503)
                #expect(refusedLogin.header("Retry-After") != nil)

                // It comes back: ready again within seconds (the pool replaces its dead connections),
                // and writes work.
                try await blockingIO { try postgres.restart() }
                let ready = await waitUntil(timeout: 10, interval: .milliseconds(100)) {
                    (try? client2.send("GET", "/readyz").status) == 200
                }
                #expect(ready, "\(again.output)")
                #expect(
                    try client2.send("POST", "/register", json: ["username": "bob", "password": "secret-password"])
                        .status == 201)
                #expect(try client2.login("bob", "secret-password").access.isEmpty == false)
                client2.close()
                #expect(again.stop() == 0, "\(again.output)")
            }
        }
    }

    /// A database that stops answering without closing anything (every PostgreSQL process stopped
    /// with SIGSTOP, as a paused VM or a partition looks): token checks go on from memory at once;
    /// writes answer 503 with Retry-After within their bound (the client's own deadline, the
    /// statement timeout plus 1 s, or libpq's 5 s connect timeout) instead of hanging; /readyz 503;
    /// once it answers again, ready and writing within seconds.
    @Test func aDatabaseThatStopsAnsweringHoldsNothingAndIsUsedAgainWhenItAnswers() async throws {
        try await withPostgres { postgres in
            try await withTemporaryDirectory { directory in
                let database = try await blockingIO { try postgres.createDatabase() }
                let service = try GatehouseProcess(
                    environment: ProcessTests.environment(
                        directory, ["GATEHOUSE_DATABASE_URL": postgres.url(database: database)]),
                    logPath: directory + "/service.log")
                let client = try HTTPTestClient(port: try service.waitUntilListening())
                defer { client.close() }
                #expect(
                    try client.send("POST", "/register", json: ["username": "dora", "password": "secret-password"])
                        .status == 201)
                let session = try client.login("dora", "secret-password")

                #expect(!postgres.freeze().isEmpty)
                defer { postgres.thaw() }
                var started = Date()
                #expect(try client.get("/protected", bearer: session.access).status == 200)
                #expect(Date().timeIntervalSince(started) < 1)

                let notReady = await waitUntil(timeout: 10, interval: .milliseconds(100)) {
                    (try? client.send("GET", "/readyz").status) == 503
                }
                #expect(notReady)
                for (path, body) in [
                    ("/register", ["username": "eve", "password": "secret-password"] as JSONObject),
                    ("/login", ["username": "dora", "password": "secret-password"]),
                ] {
                    started = Date()
                    let response = try client.send("POST", path, json: .object(body))
                    let took = Date().timeIntervalSince(started)
                    #expect(response.status == 503, "\(path): \(response.text)")
                    #expect(response.header("Retry-After") != nil)
                    #expect(took < 15, "\(path) took \(took) s")
                }
                #expect(try client.get("/protected", bearer: session.access).status == 200)

                postgres.thaw()
                let ready = await waitUntil(timeout: 10, interval: .milliseconds(100)) {
                    (try? client.send("GET", "/readyz").status) == 200
                }
                #expect(ready, "\(service.output)")
                #expect(
                    try client.send("POST", "/register", json: ["username": "eve", "password": "secret-password"])
                        .status == 201)
                #expect(try client.post("/logout", bearer: session.access).status == 204)
                #expect(try client.get("/protected", bearer: session.access).status == 401)
                #expect(service.stop() == 0, "\(service.output)")
            }
        }
    }

    /// Two instances on one database, with no key configured: the first makes the signing key in
    /// the database and the second uses it. Revocations reach the other instance through the store's
    /// revocation sequence, read at once on a notification (or at the 250 ms poll); this checks that
    /// they arrive, allowing 3 s because it runs beside the rest of the suite on two cores
    /// (RevocationFanOutTimingTests checks "within 100 ms" with the poll slowed to a minute).
    @Test func twoInstancesShareUsersSessionsAndRevocations() async throws {
        try await withPostgres { postgres in
            try await withTemporaryDirectory { directory in
                // No key configured: A makes the signing key in the database, B finds it there.
                let pair = try await InstancePair.start(
                    on: postgres, in: directory,
                    [
                        "GATEHOUSE_SIGNING_ALG": "ES256",
                        "GATEHOUSE_RATE_LOGIN_PER_IP": "0", "GATEHOUSE_RATE_LOGIN_PER_USERNAME": "0",
                        "GATEHOUSE_RATE_REGISTER_PER_IP": "0", "GATEHOUSE_RATE_REFRESH_PER_IP": "0",
                    ])
                let (a, b, onA, onB, ports) = (pair.a, pair.b, pair.onA, pair.onB, pair.ports)
                #expect(a.output.contains("signing key created"), "\(a.output)")
                #expect(!b.output.contains("signing key created"), "\(b.output)")
                let kids = try KeyRotationProcessTests.jwksKids(onA)
                #expect(kids.count == 1)
                #expect(try KeyRotationProcessTests.jwksKids(onB) == kids)
                // Neither data directory holds a key.
                #expect(!FileManager.default.fileExists(atPath: directory + "/a/data/keys"))
                #expect(!FileManager.default.fileExists(atPath: directory + "/b/data/keys"))

                // Register on A, log in on B, the token works on A; one made by A works on B.
                #expect(
                    try onA.send("POST", "/register", json: ["username": "carol", "password": "secret-password"])
                        .status == 201)
                let session = try onB.login("carol", "secret-password")
                #expect(try KeyRotationProcessTests.kid(of: session.access) == kids.first)
                #expect(try onA.get("/protected", bearer: session.access).status == 200)
                let fromA = try onA.login("carol", "secret-password")
                #expect(try KeyRotationProcessTests.accepted(fromA.access, by: onB))

                // Log out on B: A refuses the token soon after.
                #expect(try onB.post("/logout", bearer: session.access).status == 204)
                let refusedOnA = await waitUntil(timeout: 3, interval: .milliseconds(20)) {
                    (try? onA.get("/protected", bearer: session.access).status) == 401
                }
                #expect(refusedOnA)

                // A refresh token replayed on the other instance ends the session on both.
                let first = try onA.login("carol", "secret-password")
                let rotated = try Tokens(try onA.refresh(first.refresh))
                #expect(try onB.refresh(first.refresh).status == 401)
                #expect(try onB.get("/protected", bearer: rotated.access).status == 401)
                #expect(try onA.refresh(rotated.refresh).status == 401)
                let endedOnA = await waitUntil(timeout: 3, interval: .milliseconds(20)) {
                    (try? onA.get("/protected", bearer: rotated.access).status) == 401
                }
                #expect(endedOnA)
                onA.close()
                onB.close()

                // 24 registrations of one name at once, spread over both: one 201, the rest 409.
                let statuses = await withTaskGroup(of: Int.self) { group in
                    for index in 0..<24 {
                        let port = ports[index % 2]
                        group.addTask {
                            (try? await blockingIO { () throws -> Int in
                                let client = try HTTPTestClient(port: port)
                                defer { client.close() }
                                let name = index % 3 == 0 ? "Racer" : "racer"
                                return try client.send(
                                    "POST", "/register", json: ["username": .string(name), "password": "secret-password"]
                                ).status
                            }) ?? -1
                        }
                    }
                    var all: [Int] = []
                    for await status in group { all.append(status) }
                    return all
                }
                #expect(statuses.count { $0 == 201 } == 1, "\(statuses)")
                #expect(statuses.count { $0 == 409 } == 23, "\(statuses)")

                #expect(a.stop() == 0, "\(a.output)")
                #expect(b.stop() == 0, "\(b.output)")
            }
        }
    }

    /// `gatehouse keys rotate --now` on the shared database reaches both running instances at once
    /// (notified: their own reload timer is at its longest, 60 s): both publish the new key and sign
    /// with it, each accepts what the other signs, and tokens of the old key stay valid on both.
    @Test func aKeyRotationReachesEveryInstanceAtOnce() async throws {
        try await withPostgres { postgres in
            try await withTemporaryDirectory { directory in
                let settings = ["GATEHOUSE_SIGNING_ALG": "ES256", "GATEHOUSE_KEY_RELOAD_INTERVAL": "60"]
                let pair = try await InstancePair.start(on: postgres, in: directory, settings)
                let (a, b, onA, onB) = (pair.a, pair.b, pair.onA, pair.onB)
                let shared = settings.merging(["GATEHOUSE_DATABASE_URL": postgres.url(database: pair.database)]) { $1 }
                defer {
                    onA.close()
                    onB.close()
                }
                #expect(
                    try onA.send("POST", "/register", json: ["username": "rita", "password": "secret-password"])
                        .status == 201)
                let old = try onA.login("rita", "secret-password").access
                let oldKid = try KeyRotationProcessTests.kid(of: old)
                #expect(try KeyRotationProcessTests.jwksKids(onB) == [oldKid])

                let rotate = try KeyRotationProcessTests.run(
                    ["keys", "rotate", "--now"], ProcessTests.environment(directory + "/cli", shared), in: directory)
                #expect(rotate.status == 0, "\(rotate.output)")
                #expect(rotate.output.contains("Every running instance on this database"), "\(rotate.output)")
                let list = try KeyRotationProcessTests.run(
                    ["keys", "list"], ProcessTests.environment(directory + "/cli", shared), in: directory)
                let newKid = try #require(
                    list.output.split(separator: "\n").first { $0.contains("active") }?.split(separator: " ").first
                ).description
                #expect(newKid != oldKid, "\(list.output)")

                for client in [onA, onB] {
                    let published = await waitUntil(timeout: 2, interval: .milliseconds(20)) {
                        (try? KeyRotationProcessTests.jwksKids(client)) == [newKid, oldKid]
                    }
                    #expect(published, "\((try? KeyRotationProcessTests.jwksKids(client)) ?? [])")
                }
                let newOnB = try onB.login("rita", "secret-password").access
                #expect(try KeyRotationProcessTests.kid(of: newOnB) == newKid)
                #expect(try KeyRotationProcessTests.accepted(newOnB, by: onA))
                #expect(try KeyRotationProcessTests.accepted(old, by: onA))
                #expect(try KeyRotationProcessTests.accepted(old, by: onB))
                #expect(a.output.contains("signing keys changed"))
                #expect(b.output.contains("signing keys changed"))

                #expect(a.stop() == 0, "\(a.output)")
                #expect(b.stop() == 0, "\(b.output)")
            }
        }
    }

    /// The revocation listener's connection is ended by the server (`pg_terminate_backend` on the
    /// backends named `gatehouse-listener`) while new connections to the database are refused
    /// (`ALLOW_CONNECTIONS false`), so it cannot come back: /readyz answers 503, and a logout on B
    /// meanwhile does not reach A (its poll is slowed to a minute). Connections allowed again: A
    /// reconnects, reads what it missed, and only then answers /readyz 200; by then it refuses the
    /// token.
    @Test func aLostListenerMakesTheInstanceNotReadyUntilItHasCaughtUp() async throws {
        try await withPostgres { postgres in
            try await withTemporaryDirectory { directory in
                let pair = try await InstancePair.start(
                    on: postgres, in: directory,
                    [
                        "GATEHOUSE_JWT_SECRET": "a shared secret of more than thirty-two bytes",
                        "GATEHOUSE_REVOCATION_POLL_MS": "60000",
                    ])
                let (a, b, onA, onB, database) = (pair.a, pair.b, pair.onA, pair.onB, pair.database)
                #expect(
                    try onA.send("POST", "/register", json: ["username": "erin", "password": "secret-password"])
                        .status == 201)
                let session = try onB.login("erin", "secret-password")
                #expect(try onA.get("/protected", bearer: session.access).status == 200)
                #expect(try onA.send("GET", "/readyz").status == 200)

                let listeners = try await blockingIO {
                    try postgres.psql(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gatehouse-listener'")
                }
                #expect(listeners.trimmingCharacters(in: .whitespacesAndNewlines) == "2", "\(listeners)")
                _ = try await blockingIO {
                    try postgres.psql(
                        """
                        ALTER DATABASE "\(database)" ALLOW_CONNECTIONS false;
                        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                        WHERE application_name = 'gatehouse-listener';
                        """)
                }
                let notReady = await waitUntil(timeout: 5, interval: .milliseconds(20)) {
                    (try? onA.send("GET", "/readyz").status) == 503
                }
                #expect(notReady, "\(a.output)")

                // B still has pooled connections: its logout works, and A, not listening, misses it.
                #expect(try onB.post("/logout", bearer: session.access).status == 204)
                #expect(try onA.get("/protected", bearer: session.access).status == 200)
                let notCaughtUp = try onA.send("GET", "/readyz")
                #expect(notCaughtUp.status == 503)
                let reason = try notCaughtUp.json().objectValue?["message"]?.stringValue ?? ""
                // Its pooled connections still answer (ALLOW_CONNECTIONS only stops new ones): what A
                // lacks is the revocations, and the answer says so.
                #expect(reason.contains("missed sessions ended"), "\(reason)")

                _ = try await blockingIO {
                    try postgres.psql("ALTER DATABASE \"\(database)\" ALLOW_CONNECTIONS true")
                }
                let ready = await waitUntil(timeout: 10, interval: .milliseconds(20)) {
                    (try? onA.send("GET", "/readyz").status) == 200
                }
                #expect(ready, "\(a.output)")
                // Ready means caught up: the logout made while A was not listening is applied.
                #expect(try onA.get("/protected", bearer: session.access).status == 401)
                onA.close()
                onB.close()
                #expect(a.stop() == 0, "\(a.output)")
                #expect(b.stop() == 0, "\(b.output)")
                // Logged once when lost (not at every attempt), and once when back.
                for instance in [a, b] {
                    let log = instance.output
                    #expect(log.components(separatedBy: "revocation listener lost its connection").count == 2, "\(log)")
                    #expect(log.components(separatedBy: "revocation listener connected again").count == 2, "\(log)")
                }
            }
        }
    }
}
