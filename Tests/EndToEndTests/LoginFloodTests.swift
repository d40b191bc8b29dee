import Foundation
import JSON
import Testing
import TestSupport

/// A bounded credential-stuffing run against the real binary with its default
/// rate limits: 5,000 wrong-password logins for 5,000 usernames from ten
/// addresses, while a normal user logs in from another.
@Suite(.serialized) struct LoginFloodTests {
    static func residentKiB(of pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    @Test func theNormalUserGetsInAndTheAttackerGets429sWithinBoundedMemory() async throws {
        try await withTemporaryDirectory { directory in
            let gatehouse = try GatehouseProcess(
                environment: ProcessTests.environment(directory), logPath: directory + "/gatehouse.log")
            defer { gatehouse.stop() }
            let port = try gatehouse.waitUntilListening()
            let pid = gatehouse.process.processIdentifier

            let user = try HTTPTestClient(port: port, bindAddress: "127.0.0.50")
            #expect(try user.send("POST", "/register", json: ["username": "normal-user", "password": "a good password"]).status == 201)
            #expect(try user.login("normal-user", "a good password").access.isEmpty == false)
            let before = Self.residentKiB(of: pid)

            // Ten attacking addresses, 500 wrong-password logins each, one
            // username per attempt.
            let started = Date()
            async let attack: [Int: Int] = withThrowingTaskGroup(of: [Int: Int].self) { group in
                for address in 1...10 {
                    group.addTask {
                        try await blockingIO {
                            let client = try HTTPTestClient(port: port, bindAddress: "127.0.1.\(address)")
                            var statuses: [Int: Int] = [:]
                            for attempt in 0..<500 {
                                let response = try client.send(
                                    "POST", "/login",
                                    json: ["username": .string("victim-\(address)-\(attempt)"), "password": "Password1!"])
                                statuses[response.status, default: 0] += 1
                            }
                            return statuses
                        }
                    }
                }
                var total: [Int: Int] = [:]
                for try await statuses in group { total.merge(statuses, uniquingKeysWith: +) }
                return total
            }
            // Meanwhile the normal user logs in, on a fresh connection each time.
            var userStatuses: [Int] = []
            for _ in 0..<5 {
                let status = try await blockingIO {
                    let client = try HTTPTestClient(port: port, bindAddress: "127.0.0.50")
                    return try client.send(
                        "POST", "/login", json: ["username": "normal-user", "password": "a good password"]
                    ).status
                }
                userStatuses.append(status)
                try await Task.sleep(for: .milliseconds(100))
            }
            let statuses = try await attack
            let elapsed = Date().timeIntervalSince(started)
            let after = Self.residentKiB(of: pid)

            #expect(userStatuses == [200, 200, 200, 200, 200])
            #expect(statuses.values.reduce(0, +) == 5000)
            // 30 attempts per minute per address: ten addresses get at most
            // 300 answers from the password check, plus what the buckets
            // refill while the run lasts (half a token a second each; under
            // a sanitizer the run is slow enough for that to show); every
            // other answer is 429.
            let checks = 10 * (30 + Int((elapsed * 0.5).rounded(.up)))
            #expect((statuses[401] ?? 0) <= checks)
            #expect((statuses[429] ?? 0) >= 5000 - checks)
            #expect(Set(statuses.keys).isSubset(of: [401, 429]))
            #expect(after - before < 32 * 1024, "RSS grew from \(before) KiB to \(after) KiB")
            print("login flood: \(statuses) in \(String(format: "%.1f", elapsed)) s; RSS \(before) -> \(after) KiB")
            // Still serving, and the refusals were logged as security events.
            #expect(try user.send("GET", "/healthz").status == 200)
            #expect(gatehouse.output.contains("event=rate_limited"))
        }
    }
}
