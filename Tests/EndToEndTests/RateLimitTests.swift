import AuthService
import Foundation
import JSON
import MicroHTTP
import Testing
import TestSupport

/// Rate limits and security events over real sockets. Every 127.x.y.z address
/// is loopback on Linux: a client bound to 127.0.0.2 is another address to the
/// server than one bound to 127.0.0.3.
@Suite struct RateLimitTests {
    static func client(_ gatehouse: GatehouseInstance, from address: String) throws -> HTTPTestClient {
        try HTTPTestClient(port: gatehouse.port, bindAddress: address)
    }

    static func login(_ client: HTTPTestClient, _ username: String, _ password: String) throws -> TestResponse {
        try client.send("POST", "/login", json: ["username": .string(username), "password": .string(password)])
    }

    @Test func loginsOverThePerAddressLimitGet429WithRetryAfter() async throws {
        try await withGatehouse({ $0.rateLimits.loginPerIP = 3 }) { gatehouse in
            let attacker = try Self.client(gatehouse, from: "127.0.0.2")
            for number in 0..<3 {
                #expect(try Self.login(attacker, "user\(number)", "wrong password").status == 401)
            }
            let refused = try Self.login(attacker, "user9", "wrong password")
            #expect(refused.status == 429)
            #expect(try refused.json().objectValue?["error"] == "rate_limited")
            let retryAfter = try #require(refused.header("Retry-After").flatMap(Int.init))
            #expect((1...20).contains(retryAfter))
            // Another address is not affected.
            let other = try Self.client(gatehouse, from: "127.0.0.3")
            #expect(try Self.login(other, "user9", "wrong password").status == 401)
            // Time passes (the injected clock): the budget comes back.
            gatehouse.clock.advance(by: 20)
            #expect(try Self.login(attacker, "user9", "wrong password").status == 401)
        }
    }

    @Test func failuresAtOneUsernameFromManyAddressesAreLimitedAndASuccessDoesNotResetThem() async throws {
        try await withGatehouse({ $0.rateLimits.loginPerUsername = 4 }) { gatehouse in
            let owner = try Self.client(gatehouse, from: "127.0.0.10")
            _ = try owner.send("POST", "/register", json: ["username": "victim", "password": "correct horse"])
            // Three failures from three addresses.
            for number in 2...4 {
                let attacker = try Self.client(gatehouse, from: "127.0.0.\(number)")
                #expect(try Self.login(attacker, "victim", "guess \(number)").status == 401)
            }
            // The owner logs in: the success uses no failure budget...
            #expect(try Self.login(owner, "VICTIM", "correct horse").status == 200)
            // ...and restores none: one failure left, then 429 from anywhere.
            let attacker = try Self.client(gatehouse, from: "127.0.0.5")
            #expect(try Self.login(attacker, "victim", "guess 5").status == 401)
            #expect(try Self.login(attacker, "victim", "guess 6").status == 429)
            let fresh = try Self.client(gatehouse, from: "127.0.0.6")
            #expect(try Self.login(fresh, "Victim", "guess 7").status == 429)
            // Other usernames are not affected.
            #expect(try Self.login(fresh, "someone", "guess 8").status == 401)
        }
    }

    @Test func registrationAndRefreshArePerAddress() async throws {
        try await withGatehouse({
            $0.rateLimits.registerPerIP = 2
            $0.rateLimits.refreshPerIP = 2
        }) { gatehouse in
            let client = try Self.client(gatehouse, from: "127.0.0.2")
            for name in ["reg-one", "reg-two"] {
                let response = try client.send("POST", "/register", json: ["username": .string(name), "password": "long enough"])
                #expect(response.status == 201)
            }
            let refused = try client.send("POST", "/register", json: ["username": "reg-three", "password": "long enough"])
            #expect(refused.status == 429)
            #expect(refused.header("Retry-After") != nil)
            // Refused before any work: the user does not exist.
            #expect(try Self.login(client, "reg-three", "long enough").status == 401)

            var tokens = try Tokens(try Self.login(client, "reg-one", "long enough"))
            for _ in 0..<2 {
                let refreshed = try client.refresh(tokens.refresh)
                #expect(refreshed.status == 200)
                tokens = try Tokens(refreshed)
            }
            #expect(try client.refresh(tokens.refresh).status == 429)
            // The refused refresh consumed nothing: it works from another address.
            let other = try Self.client(gatehouse, from: "127.0.0.3")
            #expect(try other.refresh(tokens.refresh).status == 200)
        }
    }

    @Test func forwardedForIsBelievedFromATrustedProxyOnly() async throws {
        try await withGatehouse({
            $0.rateLimits.loginPerIP = 1
            $0.trustedProxies = TrustedProxies(parsing: "127.0.0.9")!
        }) { gatehouse in
            let proxy = try Self.client(gatehouse, from: "127.0.0.9")
            for client in ["198.51.100.1", "198.51.100.2"] {
                let response = try proxy.send(
                    "POST", "/login", headers: [("X-Forwarded-For", "10.9.9.9, \(client)")],
                    json: ["username": "someone", "password": "wrong password"])
                #expect(response.status == 401)
            }
            let again = try proxy.send(
                "POST", "/login", headers: [("X-Forwarded-For", "198.51.100.1")],
                json: ["username": "someone", "password": "wrong password"])
            #expect(again.status == 429)
            #expect(gatehouse.logs.lines.contains { $0.contains("event=rate_limited") && $0.contains("client_ip=198.51.100.1") })

            // A client that is not a proxy cannot pick its address.
            let direct = try Self.client(gatehouse, from: "127.0.0.4")
            for fake in ["203.0.113.1", "203.0.113.2"] {
                _ = try direct.send(
                    "POST", "/login", headers: [("X-Forwarded-For", fake)],
                    json: ["username": "someone", "password": "wrong password"])
            }
            #expect(gatehouse.logs.lines.contains { $0.contains("event=rate_limited") && $0.contains("client_ip=127.0.0.4") })
            #expect(!gatehouse.logs.lines.contains { $0.contains("203.0.113.") })
        }
    }

    @Test func securityEventsAreOneLineEachAndCarryNoSecrets() async throws {
        try await withGatehouse({ $0.rateLimits.loginPerUsername = 2 }) { gatehouse in
            let client = try Self.client(gatehouse, from: "127.0.0.7")
            let password = "Secret-Pa55word"
            _ = try client.send("POST", "/register", json: ["username": "carol", "password": .string(password)])
            #expect(try Self.login(client, "carol", "Wrong-Pa55word").status == 401)
            #expect(try Self.login(client, "nobody", "Wrong-Pa55word").status == 401)
            let tokens = try Tokens(try Self.login(client, "carol", password))
            let rotated = try Tokens(try client.refresh(tokens.refresh))
            #expect(try client.refresh(tokens.refresh).status == 401)  // replay: reuse detected
            _ = try Self.login(client, "carol", "Wrong-Pa55word")
            #expect(try Self.login(client, "carol", "Wrong-Pa55word").status == 429)  // over the username budget
            // While the budget is spent, the owner waits too: that is what
            // stops a guesser who spreads over addresses.
            #expect(try Self.login(client, "carol", password).status == 429)
            gatehouse.clock.advance(by: 60)
            let again = try Tokens(try Self.login(client, "carol", password))
            _ = try client.post("/logout", bearer: again.access)

            let events = gatehouse.logs.lines.filter { $0.contains(" security ") }
            func event(_ name: String, _ fields: [String]) -> Bool {
                events.contains { line in
                    line.contains("event=\(name) ") && line.contains("client_ip=127.0.0.7")
                        && fields.allSatisfy { line.contains($0) }
                }
            }
            #expect(event("register", ["username=carol", "user_id="]))
            #expect(event("login_failed", ["username=carol", "reason=wrong_password"]))
            #expect(event("login_failed", ["username=nobody", "reason=unknown_user"]))
            #expect(event("login", ["username=carol", "session_id="]))
            #expect(event("refresh_reuse_detected", ["session_id=", "user_id=", "action=session_revoked"]))
            #expect(!events.contains { $0.contains("event=refresh_reuse_detected") && $0.contains("user_id=-") })
            #expect(event("rate_limited", ["limit=login_username", "username=carol"]))
            #expect(event("logout", ["username=carol"]))
            for line in gatehouse.logs.lines {
                #expect(!line.contains(password))
                #expect(!line.contains("Wrong-Pa55word"))
                #expect(!line.contains(tokens.access))
                #expect(!line.contains(tokens.refresh))
                #expect(!line.contains(rotated.refresh))
                #expect(!line.contains("\n"))
            }
        }
    }

    @Test func aPasswordTypedAsTheUsernameNeverReachesTheLog() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            #expect(try Self.login(client, "my secret pass!", "whatever1").status == 401)
            let line = try #require(gatehouse.logs.lines.first { $0.contains("event=login_failed") })
            #expect(line.contains("username=(invalid)"))
            #expect(!line.contains("my secret pass!"))
        }
    }
}
