import Foundation
import JSON
import MicroHTTP
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Writes the service acknowledged, collected by the load while it ran: what must still hold
/// after any crash.
final class AcknowledgedWrites: Sendable {
    private struct State {
        var users: [(username: String, password: String)] = []
        var endedAccessTokens: [String] = []
        var deadRefreshTokens: [String] = []
    }

    private let state = LockedValue(State())

    /// A 201 to `/register`: the user must be able to log in from now on.
    func registered(_ username: String, _ password: String) { state.withLock { $0.users.append((username, password)) } }

    /// A 204 to `/logout`: every access token of the session must be refused from now on, and its
    /// last refresh token too.
    func loggedOut(accessTokens: [String], refreshToken: String) {
        state.withLock {
            $0.endedAccessTokens += accessTokens
            $0.deadRefreshTokens.append(refreshToken)
        }
    }

    /// A 200 to `/refresh`: the refresh token it consumed must never work again.
    func rotated(_ consumed: String) { state.withLock { $0.deadRefreshTokens.append(consumed) } }

    var users: [(username: String, password: String)] { state.withLock { $0.users } }
    var endedAccessTokens: [String] { state.withLock { $0.endedAccessTokens } }
    var deadRefreshTokens: [String] { state.withLock { $0.deadRefreshTokens } }
    var counts: (users: Int, endedAccessTokens: Int, deadRefreshTokens: Int) {
        state.withLock { ($0.users.count, $0.endedAccessTokens.count, $0.deadRefreshTokens.count) }
    }
}

/// What the load's threads share: the stop signal and a request count.
final class LoadControl: Sendable {
    let stopped = Atomic<Bool>(false)
    let requests = Atomic<Int>(0)
}

/// SIGKILL in the middle of write load, restart on the same data: nothing acknowledged is lost
/// and the service starts cleanly, three times over.
@Suite(.serialized) struct CrashSafetyTests {
    static let workers = 4
    /// When each cycle's SIGKILL lands after the load starts: fixed, so runs are comparable.
    static let killDelays: [Double] = [0.6, 1.0, 1.4]

    static func environment(_ directory: String) -> [String: String] {
        [
            "GATEHOUSE_DATA_DIR": directory + "/data",
            "GATEHOUSE_PORT": "0",
            "GATEHOUSE_ARGON2_MEMORY_KIB": "1024",
            "GATEHOUSE_ARGON2_ITERATIONS": "1",
            // The load comes from one address at hundreds of requests a second.
            "GATEHOUSE_RATE_LOGIN_PER_IP": "0",
            "GATEHOUSE_RATE_LOGIN_PER_USERNAME": "0",
            "GATEHOUSE_RATE_REGISTER_PER_IP": "0",
            "GATEHOUSE_RATE_REFRESH_PER_IP": "0",
        ]
    }

    @Test(.timeLimit(.minutes(2)))
    func acknowledgedWritesSurviveThreeKills() async throws {
        let started = ContinuousClock.now
        try await withTemporaryDirectory { directory in
            let facts = AcknowledgedWrites()
            for (cycle, delay) in Self.killDelays.enumerated() {
                let server = try GatehouseProcess(
                    environment: Self.environment(directory), logPath: "\(directory)/cycle-\(cycle).log")
                defer { server.stop(signal: SIGKILL) }
                let port = try server.waitUntilListening()
                try Self.expectCleanStart(server, port: port, directory: directory)
                try await Self.verify(facts, port: port, cycle: cycle)

                let before = facts.counts
                // Killed after `delay`, and not before the cycle has written enough to check (on a
                // loaded machine that can take longer).
                let enough: @Sendable () -> Bool = {
                    let now = facts.counts
                    return now.users - before.users >= 5 && now.endedAccessTokens - before.endedAccessTokens >= 5
                        && now.deadRefreshTokens - before.deadRefreshTokens >= 10
                }
                let killed = try await Self.load(
                    port: port, cycle: cycle, facts: facts, killAfter: delay, once: enough
                ) {
                    kill(server.process.processIdentifier, SIGKILL)
                    return server.waitForExit(timeout: 10)
                }
                #expect(killed == SIGKILL, "cycle \(cycle): the server did not die of SIGKILL (\(killed))")
                let after = facts.counts
                // The load must have written something worth checking in every cycle.
                #expect(after.users - before.users >= 5, "cycle \(cycle): \(after.users - before.users) users")
                #expect(after.endedAccessTokens - before.endedAccessTokens >= 5)
                #expect(after.deadRefreshTokens - before.deadRefreshTokens >= 10)
            }

            // The last restart checks the last cycle's writes, then stops gracefully.
            let server = try GatehouseProcess(
                environment: Self.environment(directory), logPath: "\(directory)/final.log")
            defer { server.stop(signal: SIGKILL) }
            let port = try server.waitUntilListening()
            try Self.expectCleanStart(server, port: port, directory: directory)
            try await Self.verify(facts, port: port, cycle: Self.killDelays.count)
            #expect(server.stop() == 0)
            #expect(Self.errorLines(server.output).isEmpty, "\(Self.errorLines(server.output))")
            let counts = facts.counts
            print(
                "crash safety: \(counts.users) users, \(counts.endedAccessTokens) ended access tokens, "
                    + "\(counts.deadRefreshTokens) dead refresh tokens checked after each restart")
        }
        #expect(ContinuousClock.now - started < .seconds(100))
    }

    // MARK: - Load

    /// Runs `workers` clients doing registrations, logins, refreshes and logouts, recording every
    /// acknowledged write, and calls `crash` after `killAfter` seconds, once `once` holds (waiting
    /// for it at most 15 s more). A request the kill cut off was not acknowledged and is not recorded.
    /// - Returns: what `crash` returned.
    static func load(
        port: UInt16, cycle: Int, facts: AcknowledgedWrites, killAfter: Double,
        once: @escaping @Sendable () -> Bool = { true },
        crash: @escaping @Sendable () -> Int32
    ) async throws -> Int32 {
        let control = LoadControl()
        return try await withThrowingTaskGroup(of: Int32?.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    await blockingIO {
                        runWorker(port: port, name: "c\(cycle)w\(worker)", facts: facts, control: control)
                    }
                    return nil
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int(killAfter * 1000)))
                _ = await waitUntil(timeout: 15, interval: .milliseconds(20), once)
                // Killed while the load is surely running: it has been sending all along.
                let sentBeforeKill = control.requests.load(ordering: .relaxed)
                let status = await blockingIO { crash() }
                control.stopped.store(true, ordering: .relaxed)
                #expect(sentBeforeKill > 0)
                return status
            }
            var status: Int32 = -1
            for try await result in group { if let result { status = result } }
            return status
        }
    }

    /// One client's loop until the server is gone: register a user, log in, refresh twice, log out.
    static func runWorker(
        port: UInt16, name: String, facts: AcknowledgedWrites, control: LoadControl
    ) {
        guard let client = try? HTTPTestClient(port: port, timeout: 5) else { return }
        defer { client.close() }
        var iteration = 0
        while !control.stopped.load(ordering: .relaxed) {
            iteration += 1
            let username = "\(name)n\(iteration)"
            let password = "password of \(username)"
            do {
                control.requests.add(1, ordering: .relaxed)
                let registered = try client.send(
                    "POST", "/register", json: ["username": .string(username), "password": .string(password)])
                guard registered.status == 201 else { continue }
                facts.registered(username, password)

                let login = try client.send(
                    "POST", "/login", json: ["username": .string(username), "password": .string(password)])
                guard var tokens = tokenPair(login) else { continue }
                var accessTokens = [tokens.access]
                for _ in 0..<2 {
                    let rotated = try client.send("POST", "/refresh", json: ["refresh_token": .string(tokens.refresh)])
                    guard let next = tokenPair(rotated) else { break }
                    facts.rotated(tokens.refresh)
                    tokens = next
                    accessTokens.append(next.access)
                }
                let logout = try client.send("POST", "/logout", headers: [("Authorization", "Bearer \(tokens.access)")])
                if logout.status == 204 { facts.loggedOut(accessTokens: accessTokens, refreshToken: tokens.refresh) }
            } catch {
                return  // The server is gone (or going): nothing more is acknowledged.
            }
        }
    }

    static func tokenPair(_ response: TestResponse) -> (access: String, refresh: String)? {
        guard response.status == 200, let body = try? response.json().objectValue,
            let access = body["access_token"]?.stringValue, let refresh = body["refresh_token"]?.stringValue
        else { return nil }
        return (access, refresh)
    }

    // MARK: - Checks

    /// Every acknowledged write holds: each user logs in, each ended session's access tokens and
    /// each consumed or ended refresh token are refused. Checked by `workers` clients in parallel.
    static func verify(_ facts: AcknowledgedWrites, port: UInt16, cycle: Int) async throws {
        let users = facts.users
        let accessTokens = facts.endedAccessTokens
        let refreshTokens = facts.deadRefreshTokens
        let failures = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<workers {
                group.addTask {
                    try await blockingIO {
                        let client = try HTTPTestClient(port: port, timeout: 10)
                        defer { client.close() }
                        var failures: [String] = []
                        for (username, password) in users.enumerated().filter({ $0.offset % workers == worker })
                            .map(\.element)
                        {
                            let login = try client.send(
                                "POST", "/login",
                                json: ["username": .string(username), "password": .string(password)])
                            if login.status != 200 { failures.append("user \(username) cannot log in: \(login.status)") }
                        }
                        for token in accessTokens.enumerated().filter({ $0.offset % workers == worker }).map(\.element) {
                            let response = try client.send(
                                "GET", "/protected", headers: [("Authorization", "Bearer \(token)")])
                            if response.status != 401 { failures.append("a logged-out access token got \(response.status)") }
                        }
                        for token in refreshTokens.enumerated().filter({ $0.offset % workers == worker }).map(\.element) {
                            let response = try client.send("POST", "/refresh", json: ["refresh_token": .string(token)])
                            if response.status != 401 { failures.append("a used refresh token got \(response.status)") }
                        }
                        return failures
                    }
                }
            }
            var all: [String] = []
            for try await failures in group { all += failures }
            return all
        }
        #expect(
            failures.isEmpty,
            "after restart \(cycle): \(failures.count) acknowledged writes lost: \(failures.prefix(10))")
    }

    /// The process came up without an error and with no warning but the expected one (the cheap
    /// Argon2 cost of the test), and its own health check says it is up.
    static func expectCleanStart(_ server: GatehouseProcess, port: UInt16, directory: String) throws {
        let output = server.output
        let startup = output.split(separator: "\n").prefix { !$0.contains(" listening ") }
        let unexpected = startup.filter { !$0.contains(" info ") && !$0.contains("Argon2 memory cost is below") }
        #expect(unexpected.isEmpty, "start-up logged: \(unexpected)")
        #expect(errorLines(output).isEmpty, "\(errorLines(output))")
        let check = try GatehouseProcess(
            arguments: ["healthcheck"], environment: ["GATEHOUSE_PORT": String(port)],
            logPath: "\(directory)/healthcheck-\(port).log")
        #expect(check.waitForExit(timeout: 10) == 0, "healthcheck: \(check.output)")
    }

    /// Log lines at level error, and anything a crashing Swift runtime prints.
    static func errorLines(_ output: String) -> [Substring] {
        output.split(separator: "\n").filter {
            $0.split(separator: " ", maxSplits: 2).dropFirst().first == "error" || $0.contains("Fatal error")
        }
    }
}
