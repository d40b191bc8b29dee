import Foundation
import JSON
import Testing
import TestSupport

/// `gatehouse users ...` with the real binary beside a running service on
/// the same data directory: the change is in the store at once, and the
/// service refuses the tokens of the sessions it ended within a second.
@Suite(.serialized) struct UserCommandsProcessTests {
    static let password = "cli-test-password"

    static func run(_ arguments: [String], _ environment: [String: String], in directory: String) throws -> (
        status: Int32, output: String
    ) {
        try KeyRotationProcessTests.run(arguments, environment, in: directory)
    }

    @Test func aRoleGrantedByTheCommandLineEndsOldTokensWithinASecondAndNewLoginsCarryIt() async throws {
        try await withTemporaryDirectory { directory in
            let environment = ProcessTests.environment(directory)
            let service = try GatehouseProcess(environment: environment, logPath: directory + "/service.log")
            let client = try HTTPTestClient(port: try service.waitUntilListening())
            defer { client.close() }
            #expect(
                try client.send("POST", "/register", json: ["username": "ivy", "password": .string(Self.password)])
                    .status == 201)
            let old = try client.login("ivy", Self.password)
            #expect(try client.get("/admin/users", bearer: old.access).status == 403)

            let grant = try Self.run(["users", "grant", "ivy", "admin"], environment, in: directory)
            #expect(grant.status == 0, "\(grant.output)")
            #expect(grant.output.contains("granted admin"))
            #expect(grant.output.contains("event=admin_action via=cli"))
            // Within a second (RevocationFeedTimingTests holds it to that on a quiet machine).
            #expect(
                await waitUntil(timeout: 5, interval: .milliseconds(20)) {
                    (try? client.get("/protected", bearer: old.access).status) == 401
                })
            #expect(try client.refresh(old.refresh).status == 401)

            let new = try client.login("ivy", Self.password)
            #expect(try claims(of: new.access)["roles"] == ["admin"])
            #expect(try client.get("/admin/users", bearer: new.access).status == 200)

            // Lock: no log-in, the token goes; unlock: log-in works again.
            let lock = try Self.run(["users", "lock", "ivy"], environment, in: directory)
            #expect(lock.status == 0, "\(lock.output)")
            #expect(
                await waitUntil(timeout: 5, interval: .milliseconds(20)) {
                    (try? client.get("/protected", bearer: new.access).status) == 401
                })
            let refused = try client.send(
                "POST", "/login", json: ["username": "ivy", "password": .string(Self.password)])
            #expect(refused.status == 401)
            #expect(try refused.json().objectValue?["error"] == "invalid_credentials")
            #expect(try Self.run(["users", "unlock", "ivy"], environment, in: directory).status == 0)
            let back = try client.login("ivy", Self.password)

            // Revoke: the role goes from the next token, and the current one is refused.
            #expect(try Self.run(["users", "revoke", "ivy", "admin"], environment, in: directory).status == 0)
            #expect(
                await waitUntil(timeout: 5, interval: .milliseconds(20)) {
                    (try? client.get("/protected", bearer: back.access).status) == 401
                })
            #expect(try claims(of: client.login("ivy", Self.password).access)["roles"] == .array([]))

            let list = try Self.run(["users", "list"], environment, in: directory)
            #expect(list.status == 0)
            #expect(list.output.contains("USERNAME"))
            #expect(list.output.contains("ivy"))
            let show = try Self.run(["users", "show", "IVY"], environment, in: directory)
            #expect(show.status == 0)
            #expect(show.output.contains("username:     ivy"))
            #expect(show.output.contains("locked:       no"))
            #expect(service.stop() == 0)
        }
    }

    @Test func mistakesAreReportedWithAnExitStatus() async throws {
        try await withTemporaryDirectory { directory in
            let environment = ProcessTests.environment(directory)
            // No database yet.
            let early = try Self.run(["users", "list"], environment, in: directory)
            #expect(early.status == 1)
            #expect(early.output.contains("no database"))

            let service = try GatehouseProcess(environment: environment, logPath: directory + "/service.log")
            try service.waitUntilListening()
            #expect(service.stop() == 0)
            for (arguments, status, text) in [
                (["users"], Int32(2), "subcommand"),
                (["users", "frobnicate"], 2, "unknown users subcommand"),
                (["users", "grant", "nobody"], 2, "NAME ROLE"),
                (["users", "grant", "nobody", "admin"], 1, "no user named 'nobody'"),
                (["users", "show", "nobody"], 1, "no user named"),
                (["users", "grant", "nobody", "Not A Role"], 1, "is not a role name"),
                (["users", "list", "--no-such-flag", "1"], 2, "unknown option"),
            ] as [([String], Int32, String)] {
                let result = try Self.run(arguments, environment, in: directory)
                #expect(result.status == status, "\(arguments): \(result.output)")
                #expect(result.output.contains(text), "\(arguments): \(result.output)")
            }
            #expect(try Self.run(["users", "list"], environment, in: directory).output == "No users yet.\n")
        }
    }
}

/// The bound itself: a session the command line ends is refused by the
/// running service within a second. Timed, so `make test` runs it with the
/// other timing suites (TIMING_TESTS), not beside the whole suite.
@Suite(.serialized) struct RevocationFeedTimingTests {
    @Test func aSessionEndedByTheCommandLineIsRefusedWithinASecond() async throws {
        try await withTemporaryDirectory { directory in
            let environment = ProcessTests.environment(directory)
            let service = try GatehouseProcess(environment: environment, logPath: directory + "/service.log")
            let client = try HTTPTestClient(port: try service.waitUntilListening())
            defer { client.close() }
            let password = UserCommandsProcessTests.password
            #expect(
                try client.send("POST", "/register", json: ["username": "joan", "password": .string(password)]).status
                    == 201)
            for round in 0..<3 {
                let token = try client.login("joan", password).access
                #expect(try client.get("/protected", bearer: token).status == 200)
                let lock = try UserCommandsProcessTests.run(["users", "lock", "joan"], environment, in: directory)
                #expect(lock.status == 0, "\(lock.output)")
                // Polled without suspending, so the measure is the service's delay, not the wait for a
                // turn on the test runner's (two-thread) cooperative pool.
                let locked = Date()
                var refusedAfter: Double?
                while refusedAfter == nil, Date().timeIntervalSince(locked) < 5 {
                    if try client.get("/protected", bearer: token).status == 401 {
                        refusedAfter = Date().timeIntervalSince(locked)
                    } else {
                        usleep(10_000)
                    }
                }
                let delay = try #require(refusedAfter, "round \(round): still accepted after 5 s")
                #expect(delay < 1.0, "round \(round)")
                let unlock = try UserCommandsProcessTests.run(["users", "unlock", "joan"], environment, in: directory)
                #expect(unlock.status == 0)
            }
            #expect(service.stop() == 0)
        }
    }
}
