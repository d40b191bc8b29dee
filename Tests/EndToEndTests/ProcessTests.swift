import Foundation
import JSON
import Testing
import TestSupport

/// The real `gatehouse` binary as a child process: start-up with no
/// configuration, restarts, signals, the command line.
@Suite(.serialized) struct ProcessTests {
    /// Environment for a child: its own data directory, a free port, cheap hashing.
    static func environment(_ directory: String, _ extra: [String: String] = [:]) -> [String: String] {
        var environment = [
            "GATEHOUSE_DATA_DIR": directory + "/data",
            "GATEHOUSE_PORT": "0",
            "GATEHOUSE_ARGON2_MEMORY_KIB": "1024",
            "GATEHOUSE_ARGON2_ITERATIONS": "1",
        ]
        environment.merge(extra) { $1 }
        return environment
    }

    @Test func walkthroughSurvivesARestart() async throws {
        try await withTemporaryDirectory { directory in
            let first = try GatehouseProcess(environment: Self.environment(directory), logPath: directory + "/1.log")
            let port = try first.waitUntilListening()
            let client = try HTTPTestClient(port: port)
            #expect(try client.send("POST", "/register", json: ["username": "alice", "password": "secret-password"]).status == 201)
            let login = try client.send("POST", "/login", json: ["username": "alice", "password": "secret-password"])
            let token = try #require(try login.json().objectValue?["token"]?.stringValue)
            client.close()
            #expect(first.stop() == 0)
            #expect(first.output.contains("stopped"))

            // The generated secret was kept, private to its owner.
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/data/jwt-secret")
            #expect((attributes[.posixPermissions] as? Int) == 0o600)

            let second = try GatehouseProcess(environment: Self.environment(directory), logPath: directory + "/2.log")
            let secondPort = try second.waitUntilListening()
            let again = try HTTPTestClient(port: secondPort)
            let protected = try again.send("GET", "/protected", headers: [("Authorization", "Bearer \(token)")])
            #expect(protected.status == 200)
            #expect(try protected.json().objectValue?["user"] == "alice")
            #expect(try again.send("POST", "/login", json: ["username": "alice", "password": "secret-password"]).status == 200)
            #expect(try again.send("POST", "/register", json: ["username": "alice", "password": "other-password"]).status == 409)
            again.close()
            #expect(second.stop() == 0)
        }
    }

    @Test func sessionsAndRevocationsSurviveARestart() async throws {
        try await withTemporaryDirectory { directory in
            let first = try GatehouseProcess(environment: Self.environment(directory), logPath: directory + "/1.log")
            let client = try HTTPTestClient(port: try first.waitUntilListening())
            #expect(try client.send("POST", "/register", json: ["username": "bob", "password": "secret-password"]).status == 201)
            let ended = try client.login("bob", "secret-password")
            let kept = try client.login("bob", "secret-password")
            #expect(try client.post("/logout", bearer: ended.access).status == 204)
            client.close()
            #expect(first.stop() == 0)

            let second = try GatehouseProcess(environment: Self.environment(directory), logPath: directory + "/2.log")
            let again = try HTTPTestClient(port: try second.waitUntilListening())
            #expect(try again.get("/protected", bearer: ended.access).status == 401)
            #expect(try again.refresh(ended.refresh).status == 401)
            #expect(try again.get("/protected", bearer: kept.access).status == 200)
            #expect(try again.refresh(kept.refresh).status == 200)
            again.close()
            #expect(second.stop() == 0)
        }
    }

    @Test func shortSecretStopsStartUpWithAMessage() async throws {
        try await withTemporaryDirectory { directory in
            let server = try GatehouseProcess(
                environment: Self.environment(directory, ["GATEHOUSE_JWT_SECRET": "too-short"]),
                logPath: directory + "/server.log")
            #expect(server.waitForExit(timeout: 10) == 2)
            #expect(server.output.contains("GATEHOUSE_JWT_SECRET is 9 bytes"))
        }
    }

    @Test(arguments: [
        (["--port", "99999"], "GATEHOUSE_PORT"),
        (["--access-ttl=soon"], "--access-ttl"),
        (["--frobnicate", "1"], "unknown option"),
        (["--cors-origins", "ftp://x"], "--cors-origins"),
    ])
    func badFlagsExitWithAMessage(_ row: ([String], String)) async throws {
        try await withTemporaryDirectory { directory in
            let server = try GatehouseProcess(
                arguments: row.0, environment: Self.environment(directory), logPath: directory + "/server.log")
            #expect(server.waitForExit(timeout: 10) == 2)
            #expect(server.output.contains(row.1) || server.output.contains("--port"), "\(server.output)")
        }
    }

    @Test func helpListsEverySetting() async throws {
        try await withTemporaryDirectory { directory in
            let help = try GatehouseProcess(
                arguments: ["--help"], environment: [:], logPath: directory + "/help.log")
            #expect(help.waitForExit(timeout: 10) == 0)
            for name in [
                "GATEHOUSE_HOST", "GATEHOUSE_PORT", "GATEHOUSE_DATA_DIR", "GATEHOUSE_DATABASE_URL",
                "GATEHOUSE_JWT_SECRET", "GATEHOUSE_ACCESS_TTL", "GATEHOUSE_REFRESH_TTL", "GATEHOUSE_ISSUER",
                "GATEHOUSE_CORS_ORIGINS", "GATEHOUSE_THREADS", "GATEHOUSE_ARGON2_MEMORY_KIB", "--access-ttl",
            ] {
                #expect(help.output.contains(name), "missing \(name)")
            }
        }
    }

    @Test func healthcheckSubcommandReportsUpAndDown() async throws {
        try await withTemporaryDirectory { directory in
            let server = try GatehouseProcess(environment: Self.environment(directory), logPath: directory + "/s.log")
            let port = try server.waitUntilListening()
            let up = try GatehouseProcess(
                arguments: ["healthcheck"], environment: ["GATEHOUSE_PORT": String(port)],
                logPath: directory + "/up.log")
            #expect(up.waitForExit(timeout: 10) == 0)
            #expect(server.stop() == 0)
            let down = try GatehouseProcess(
                arguments: ["healthcheck"], environment: ["GATEHOUSE_PORT": String(port)],
                logPath: directory + "/down.log")
            #expect(down.waitForExit(timeout: 10) == 1)
        }
    }
}
