import Foundation
import JSON
import Testing
import TestSupport

/// Tokens a login hands out.
struct Tokens {
    let access: String
    let refresh: String

    init(_ response: TestResponse) throws {
        guard response.status == 200, let body = try response.json().objectValue,
            let access = body["access_token"]?.stringValue, let refresh = body["refresh_token"]?.stringValue
        else { throw HarnessError("expected tokens, got \(response.status) \(response.text)") }
        self.access = access
        self.refresh = refresh
    }
}

extension HTTPTestClient {
    func login(_ username: String, _ password: String) throws -> Tokens {
        try Tokens(send("POST", "/login", json: ["username": .string(username), "password": .string(password)]))
    }

    func refresh(_ token: String) throws -> TestResponse {
        try send("POST", "/refresh", json: ["refresh_token": .string(token)])
    }

    func get(_ path: String, bearer token: String) throws -> TestResponse {
        try send("GET", path, headers: [("Authorization", "Bearer \(token)")])
    }

    func post(_ path: String, bearer token: String, json: JSONValue? = nil) throws -> TestResponse {
        if let json { return try send("POST", path, headers: [("Authorization", "Bearer \(token)")], json: json) }
        return try send("POST", path, headers: [("Authorization", "Bearer \(token)")])
    }
}

/// Sessions over a real socket: refresh rotation, reuse detection, logout,
/// password change, account deletion, expiry by the injected clock.
@Suite struct SessionLifecycleTests {
    static let password = "a fine password"

    /// Registers `username` and returns a client on one connection.
    func registered(_ gatehouse: GatehouseInstance, _ username: String) throws -> HTTPTestClient {
        let client = try gatehouse.client()
        let response = try client.send(
            "POST", "/register", json: ["username": .string(username), "password": .string(Self.password)])
        guard response.status == 201 else { throw HarnessError("register: \(response.status) \(response.text)") }
        return client
    }

    @Test func refreshRotatesAndTheOldRefreshTokenIsRefused() async throws {
        try await withGatehouse { gatehouse in
            let client = try registered(gatehouse, "rotor")
            let first = try client.login("rotor", Self.password)
            let rotated = try client.refresh(first.refresh)
            #expect(rotated.status == 200)
            #expect(rotated.header("Cache-Control") == "no-store")
            let second = try Tokens(rotated)
            #expect(second.refresh != first.refresh)
            #expect(second.access != first.access)
            #expect(try client.get("/protected", bearer: second.access).status == 200)
            // Same session: the new access token carries the old sid.
            #expect(try sessionID(of: second.access) == sessionID(of: first.access))

            let replay = try client.refresh(first.refresh)
            #expect(replay.status == 401)
            #expect(try replay.json().objectValue?["error"] == "invalid_token")
        }
    }

    @Test func replayingAConsumedRefreshTokenRevokesTheWholeSession() async throws {
        try await withGatehouse { gatehouse in
            let client = try registered(gatehouse, "victim")
            let stolen = try client.login("victim", Self.password)
            let other = try client.login("victim", Self.password)
            let legitimate = try Tokens(try client.refresh(stolen.refresh))
            // The thief replays the consumed token: everything of that session dies.
            #expect(try client.refresh(stolen.refresh).status == 401)
            #expect(try client.refresh(legitimate.refresh).status == 401)
            #expect(try client.get("/protected", bearer: legitimate.access).status == 401)
            #expect(try client.get("/protected", bearer: stolen.access).status == 401)
            #expect(try client.get("/me", bearer: legitimate.access).status == 401)
            // Another session of the same user is untouched.
            #expect(try client.get("/protected", bearer: other.access).status == 200)
            #expect(try client.refresh(other.refresh).status == 200)
            #expect(gatehouse.logs.lines.contains { $0.contains("event=refresh_reuse_detected") })
        }
    }

    @Test func twoConcurrentRefreshesWithOneTokenGiveExactlyOneSuccess() async throws {
        try await withGatehouse { gatehouse in
            let client = try registered(gatehouse, "racer")
            for _ in 0..<5 {
                let tokens = try client.login("racer", Self.password)
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<2 {
                        group.addTask {
                            try await blockingIO {
                                try httpRequest(
                                    port: gatehouse.port, "POST", "/refresh",
                                    headers: [("Content-Type", "application/json")],
                                    body: JSONValue.object(["refresh_token": .string(tokens.refresh)]).serialized()
                                ).status
                            }
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses.sorted() == [200, 401])
            }
        }
    }

    @Test(arguments: [
        #"{"refresh_token": "not-a-token"}"#, #"{"refresh_token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
    ])
    func unknownOrMalformedRefreshTokensAre401(_ body: String) async throws {
        try await withGatehouse { gatehouse in
            let response = try gatehouse.client().send(
                "POST", "/refresh", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
            #expect(response.status == 401)
            #expect(try response.json().objectValue?["error"] == "invalid_token")
        }
    }

    @Test func refreshWithoutTheFieldIs400() async throws {
        try await withGatehouse { gatehouse in
            let response = try gatehouse.client().send("POST", "/refresh", json: ["token": "x"])
            #expect(response.status == 400)
            #expect(try response.json().objectValue?["error"] == "invalid_request")
        }
    }

    @Test func logoutEndsThatSessionOnly() async throws {
        try await withGatehouse { gatehouse in
            let client = try registered(gatehouse, "leaver")
            let phone = try client.login("leaver", Self.password)
            let laptop = try client.login("leaver", Self.password)
            let logout = try client.post("/logout", bearer: phone.access)
            #expect(logout.status == 204)
            for path in ["/protected", "/me"] {
                let refused = try client.get(path, bearer: phone.access)
                #expect(refused.status == 401, "\(path)")
                #expect(refused.header("WWW-Authenticate")?.contains("invalid_token") == true)
            }
            #expect(try client.post("/logout", bearer: phone.access).status == 401)
            #expect(try client.refresh(phone.refresh).status == 401)
            #expect(try client.get("/protected", bearer: laptop.access).status == 200)
            #expect(try client.refresh(laptop.refresh).status == 200)
        }
    }

    @Test func logoutAllEndsEverySessionOfTheUser() async throws {
        try await withGatehouse { gatehouse in
            let client = try registered(gatehouse, "everywhere")
            _ = try client.send("POST", "/register", json: ["username": "bystander", "password": .string(Self.password)])
            let sessions = try (0..<3).map { _ in try client.login("everywhere", Self.password) }
            let bystander = try client.login("bystander", Self.password)
            #expect(try client.post("/logout?all=true", bearer: sessions[1].access).status == 204)
            for session in sessions {
                #expect(try client.get("/protected", bearer: session.access).status == 401)
                #expect(try client.refresh(session.refresh).status == 401)
            }
            #expect(try client.get("/protected", bearer: bystander.access).status == 200)
            // Logging in again opens a fresh, working session.
            let fresh = try client.login("everywhere", Self.password)
            #expect(try client.get("/protected", bearer: fresh.access).status == 200)
        }
    }

    @Test func meShowsTheAccount() async throws {
        try await withGatehouse { gatehouse in
            let client = try registered(gatehouse, "Myself")
            let tokens = try client.login("myself", Self.password)
            let me = try client.get("/me", bearer: tokens.access)
            #expect(me.status == 200)
            let body = try #require(try me.json().objectValue)
            #expect(body["username"] == "Myself")
            #expect(body["id"]?.stringValue?.count == 36)
            let created = try #require(body["created_at"]?.stringValue)
            #expect(created.hasSuffix("Z") && created.contains("T"))
            #expect(try client.send("GET", "/me").status == 401)
        }
    }

    @Test func passwordChangeKeepsTheCurrentSessionAndEndsTheOthers() async throws {
        try await withGatehouse { gatehouse in
            let client = try registered(gatehouse, "changer")
            let current = try client.login("changer", Self.password)
            let other = try client.login("changer", Self.password)
            let wrong = try client.post(
                "/password", bearer: current.access,
                json: ["current_password": "not the password", "new_password": "a brand new password"])
            #expect(wrong.status == 401)
            #expect(try wrong.json().objectValue?["error"] == "invalid_credentials")
            let weak = try client.post(
                "/password", bearer: current.access,
                json: ["current_password": .string(Self.password), "new_password": "short"])
            #expect(weak.status == 400)
            #expect(try weak.json().objectValue?["error"] == "weak_password")

            let changed = try client.post(
                "/password", bearer: current.access,
                json: ["current_password": .string(Self.password), "new_password": "a brand new password"])
            #expect(changed.status == 204)
            #expect(try client.get("/protected", bearer: current.access).status == 200)
            #expect(try client.refresh(current.refresh).status == 200)
            #expect(try client.get("/protected", bearer: other.access).status == 401)
            #expect(try client.refresh(other.refresh).status == 401)
            #expect(try client.send("POST", "/login", json: ["username": "changer", "password": .string(Self.password)]).status == 401)
            #expect(try client.send("POST", "/login", json: ["username": "changer", "password": "a brand new password"]).status == 200)
        }
    }

    @Test func deletingTheAccountEndsEverything() async throws {
        try await withGatehouse { gatehouse in
            let client = try registered(gatehouse, "goner")
            let tokens = try client.login("goner", Self.password)
            let other = try client.login("goner", Self.password)
            let refused = try client.send(
                "DELETE", "/me", headers: [("Authorization", "Bearer \(tokens.access)")],
                json: ["password": "wrong password"])
            #expect(refused.status == 401)
            let deleted = try client.send(
                "DELETE", "/me", headers: [("Authorization", "Bearer \(tokens.access)")],
                json: ["password": .string(Self.password)])
            #expect(deleted.status == 204)
            #expect(try client.get("/protected", bearer: tokens.access).status == 401)
            #expect(try client.get("/protected", bearer: other.access).status == 401)
            #expect(try client.refresh(other.refresh).status == 401)
            #expect(try client.send("POST", "/login", json: ["username": "goner", "password": .string(Self.password)]).status == 401)
            // The name is free again.
            #expect(try client.send("POST", "/register", json: ["username": "goner", "password": "another password"]).status == 201)
        }
    }

    @Test func accessAndRefreshTokensExpireByTheClock() async throws {
        try await withGatehouse({
            $0.accessTTL = 60
            $0.refreshTTL = 600
        }) { gatehouse in
            let client = try registered(gatehouse, "timely")
            let tokens = try client.login("timely", Self.password)
            gatehouse.clock.advance(by: 91)  // past exp + 30 s leeway
            #expect(try client.get("/protected", bearer: tokens.access).status == 401)
            // The refresh token still works and gives a working access token.
            let renewed = try Tokens(try client.refresh(tokens.refresh))
            #expect(try client.get("/protected", bearer: renewed.access).status == 200)
            gatehouse.clock.advance(by: 600)
            #expect(try client.refresh(renewed.refresh).status == 401)
        }
    }

    @Test func revocationsAreHeldInMemoryAndPruned() async throws {
        try await withGatehouse({
            $0.accessTTL = 60
            $0.refreshTTL = 120
        }) { gatehouse in
            let client = try registered(gatehouse, "pruned")
            let tokens = try client.login("pruned", Self.password)
            #expect(try client.post("/logout", bearer: tokens.access).status == 204)
            let revocations = gatehouse.application.tokens.revocations
            #expect(revocations.count == 1)
            gatehouse.clock.advance(by: 121)
            revocations.prune(now: gatehouse.clock.clock.seconds)
            #expect(revocations.count == 0)
            #expect(try client.get("/protected", bearer: tokens.access).status == 401)
        }
    }
}

/// The `sid` claim of a token, read without verifying it.
func sessionID(of token: String) throws -> String {
    let parts = token.split(separator: ".")
    guard parts.count == 3, let payload = base64URLDecode(parts[1]),
        let sid = try JSONValue.parse(payload).objectValue?["sid"]?.stringValue
    else { throw HarnessError("no sid in \(token)") }
    return sid
}
