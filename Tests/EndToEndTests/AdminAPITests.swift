import AuthService
import Foundation
import JOSE
import JSON
import MicroHTTP
import Testing
import TestSupport

extension GatehouseInstance {
    /// `gatehouse users grant NAME ROLE`, as the command line runs it, against this instance's store.
    func grant(_ username: String, _ role: String) throws {
        _ = try UserCommands.run(
            .grant(username: username, role: role), configuration: application.configuration,
            audit: AuditLog(logger: Logger(sink: MemoryLogSink()), proxies: TrustedProxies()))
    }

    /// Registers `username` and returns its id.
    @discardableResult
    func register(_ username: String, over client: HTTPTestClient, password: String = AdminAPITests.password)
        throws -> String
    {
        let response = try client.send(
            "POST", "/register", json: ["username": .string(username), "password": .string(password)])
        guard response.status == 201,
            let id = try response.json().objectValue?["user"]?.objectValue?["id"]?.stringValue
        else { throw HarnessError("register \(username): \(response.status) \(response.text)") }
        return id
    }

    /// A registered user with the admin role, logged in after the grant.
    func administrator(_ username: String, over client: HTTPTestClient) throws -> (id: String, tokens: Tokens) {
        let id = try register(username, over: client)
        try grant(username, "admin")
        return (id, try client.login(username, AdminAPITests.password))
    }
}

/// The claims of a compact JWS, unverified (the service verified it already).
func claims(of token: String) throws -> JSONObject {
    let parts = token.split(separator: ".")
    let payload = try #require(parts.count == 3 ? Base64URL.decode(parts[1]) : nil)
    return try #require(try JSONValue.parse(payload).objectValue)
}

extension HTTPTestClient {
    func admin(_ method: String, _ path: String, bearer token: String, json: JSONValue? = nil) throws -> TestResponse {
        let headers = [("Authorization", "Bearer \(token)")]
        if let json { return try send(method, path, headers: headers, json: json) }
        return try send(method, path, headers: headers)
    }
}

/// The admin API over a real socket: who may use it, paging, changes and
/// what they do to sessions and tokens, bad input, locking, deletion, the
/// audit trail.
@Suite struct AdminAPITests {
    static let password = "admin-test-password"

    @Test func noTokenIs401AndANonAdministratorIs403OnEveryRoute() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let id = try gatehouse.register("plain", over: client)
            let plain = try client.login("plain", Self.password)
            let routes: [(String, String, JSONValue?)] = [
                ("GET", "/admin/users", nil), ("GET", "/admin/users/\(id)", nil),
                ("PATCH", "/admin/users/\(id)", ["roles": ["admin"]]), ("DELETE", "/admin/users/\(id)", nil),
                ("POST", "/admin/users/\(id)/logout", nil),
            ]
            for (method, path, body) in routes {
                let anonymous =
                    if let body { try client.send(method, path, json: body) } else { try client.send(method, path) }
                #expect(anonymous.status == 401, "\(method) \(path)")
                #expect(try anonymous.json().objectValue?["error"] == "token_missing")
                let refused = try client.admin(method, path, bearer: plain.access, json: body)
                #expect(refused.status == 403, "\(method) \(path)")
                #expect(try refused.json().objectValue?["error"] == "forbidden")
            }
            // Nothing changed: the user is still there, without roles, and its token works.
            #expect(try client.get("/me", bearer: plain.access).json().objectValue?["roles"] == .array([]))
            #expect(gatehouse.logs.lines.filter { $0.contains("event=admin_forbidden") }.count == routes.count)
        }
    }

    @Test func pagingReturnsEveryUserExactlyOnceInAStableOrder() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("root-admin", over: client)
            var expected: Set<String> = ["root-admin"]
            for number in 0..<23 {
                let name = number % 2 == 0 ? "User\(number)" : "member-\(number)"
                try gatehouse.register(name, over: client)
                expected.insert(name)
            }
            for limit in [1, 5, 24, 100] {
                var seen: [String] = []
                var cursor: String?
                var pages = 0
                repeat {
                    let query = "limit=\(limit)" + (cursor.map { "&cursor=\($0)" } ?? "")
                    let response = try client.admin("GET", "/admin/users?\(query)", bearer: admin.tokens.access)
                    #expect(response.status == 200, "\(response.text)")
                    let body = try #require(try response.json().objectValue)
                    let users = try #require(body["users"]?.arrayValue)
                    #expect(users.count <= limit)
                    for user in users {
                        let object = try #require(user.objectValue)
                        #expect(object["password_hash"] == nil)
                        seen.append(try #require(object["username"]?.stringValue))
                    }
                    cursor = body["next_cursor"]?.stringValue
                    pages += 1
                } while cursor != nil && pages < 100
                #expect(seen.count == expected.count, "limit \(limit)")
                #expect(Set(seen) == expected, "limit \(limit)")
                #expect(seen == seen.sorted { $0.lowercased() < $1.lowercased() })
            }
            // q: a case-insensitive substring of the username.
            let found = try client.admin("GET", "/admin/users?q=USER1", bearer: admin.tokens.access).json()
            let names = try #require(found.objectValue?["users"]?.arrayValue).compactMap {
                $0.objectValue?["username"]?.stringValue
            }
            #expect(Set(names) == ["User10", "User12", "User14", "User16", "User18"])
        }
    }

    @Test(
        "bad list parameters are 400",
        arguments: [
            "limit=0", "limit=101", "limit=abc", "limit=-1", "limit=1.5", "limit=", "cursor=%2A%2A%2A", "cursor=abc",
            "cursor=dTo", "q=" + String(repeating: "a", count: 65),
        ])
    func badListParameters(_ query: String) async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("lister", over: client)
            let response = try client.admin("GET", "/admin/users?\(query)", bearer: admin.tokens.access)
            #expect(response.status == 400, "\(query): \(response.text)")
            #expect(try response.json().objectValue?["error"] == "invalid_request")
        }
    }

    static let badPatches: [(String, JSONValue)] = [
        ("role with capitals", ["roles": ["Admin"]]),
        ("role with a space", ["roles": ["two words"]]),
        ("empty role", ["roles": [""]]),
        ("role too long", ["roles": .array([.string(String(repeating: "r", count: 65))])]),
        ("33 roles", ["roles": .array((0..<33).map { .string("role\($0)") })]),
        ("roles not an array", ["roles": "admin"]),
        ("roles holding a number", ["roles": [1]]),
        ("app_metadata over 4 KiB", ["app_metadata": ["blob": .string(String(repeating: "x", count: 4100))]]),
        ("app_metadata an array", ["app_metadata": ["a"]]),
        ("locked not a boolean", ["locked": "yes"]),
        ("an unknown field", ["username": "renamed"]),
        ("nothing to change", [:]),
        ("a valid change beside an invalid one", ["locked": true, "roles": ["BAD"]]),
    ]

    @Test(arguments: badPatches)
    func anInvalidPatchIs400AndChangesNothing(_ name: String, _ body: JSONValue) async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("patcher", over: client)
            let id = try gatehouse.register("target", over: client)
            let target = try client.login("target", Self.password)
            let before = try client.admin("GET", "/admin/users/\(id)", bearer: admin.tokens.access)
            let response = try client.admin("PATCH", "/admin/users/\(id)", bearer: admin.tokens.access, json: body)
            #expect(response.status == 400, "\(name): \(response.text)")
            #expect(try response.json().objectValue?["error"] == "invalid_request")
            let after = try client.admin("GET", "/admin/users/\(id)", bearer: admin.tokens.access)
            #expect(after.text == before.text, "\(name)")
            // No session ended.
            #expect(try client.get("/protected", bearer: target.access).status == 200, "\(name)")
        }
    }

    @Test func changingRolesAndAppMetadataEndsSessionsAndTheNextTokensCarryThem() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("changer", over: client)
            let id = try gatehouse.register("carol", over: client)
            let old = try client.login("carol", Self.password)
            #expect(try claims(of: old.access)["roles"] == .array([]))
            #expect(try claims(of: old.access)["app_metadata"] == nil)

            let patch: JSONValue = ["roles": ["editor", "billing:read"], "app_metadata": ["plan": "pro", "seats": 5]]
            let response = try client.admin("PATCH", "/admin/users/\(id)", bearer: admin.tokens.access, json: patch)
            #expect(response.status == 200, "\(response.text)")
            let user = try #require(try response.json().objectValue)
            #expect(user["roles"] == ["billing:read", "editor"])
            #expect(user["app_metadata"] == ["plan": "pro", "seats": 5])
            #expect(user["locked"] == false)

            // The old access and refresh tokens are refused at once.
            #expect(try client.get("/protected", bearer: old.access).status == 401)
            #expect(try client.refresh(old.refresh).status == 401)
            let new = try client.login("carol", Self.password)
            #expect(try claims(of: new.access)["roles"] == ["billing:read", "editor"])
            #expect(try claims(of: new.access)["app_metadata"] == ["plan": "pro", "seats": 5])
            let me = try #require(try client.get("/me", bearer: new.access).json().objectValue)
            #expect(me["roles"] == ["billing:read", "editor"])
            #expect(me["app_metadata"] == ["plan": "pro", "seats": 5])
            // A refresh issues the current roles too.
            let refreshed = try Tokens(client.refresh(new.refresh))
            #expect(try claims(of: refreshed.access)["roles"] == ["billing:read", "editor"])

            // The same values again change nothing and end nothing.
            let again = try client.admin("PATCH", "/admin/users/\(id)", bearer: admin.tokens.access, json: patch)
            #expect(again.status == 200)
            #expect(try client.get("/protected", bearer: refreshed.access).status == 200)

            // app_metadata: null removes the claim.
            let cleared = try client.admin(
                "PATCH", "/admin/users/\(id)", bearer: admin.tokens.access, json: ["app_metadata": .null])
            #expect(try cleared.json().objectValue?["app_metadata"] == .null)
            #expect(try client.get("/protected", bearer: refreshed.access).status == 401)
            #expect(try claims(of: client.login("carol", Self.password).access)["app_metadata"] == nil)
        }
    }

    @Test func aLockedUserCannotLogInOrRefreshAndItsTokensAreRefused() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("locker", over: client)
            let id = try gatehouse.register("dave", over: client)
            let tokens = try client.login("dave", Self.password)
            let lock = try client.admin(
                "PATCH", "/admin/users/\(id)", bearer: admin.tokens.access, json: ["locked": true])
            #expect(lock.status == 200)
            #expect(try lock.json().objectValue?["locked"] == true)

            #expect(try client.get("/protected", bearer: tokens.access).status == 401)
            #expect(try client.refresh(tokens.refresh).status == 401)
            let locked = try client.send(
                "POST", "/login", json: ["username": "dave", "password": .string(Self.password)])
            let wrong = try client.send("POST", "/login", json: ["username": "dave", "password": "not-the-password"])
            #expect(locked.status == 401)
            #expect(locked.text == wrong.text)
            #expect(try locked.json().objectValue?["error"] == "invalid_credentials")

            let unlock = try client.admin(
                "PATCH", "/admin/users/\(id)", bearer: admin.tokens.access, json: ["locked": false])
            #expect(unlock.status == 200)
            #expect(try client.get("/protected", bearer: client.login("dave", Self.password).access).status == 200)
        }
    }

    @Test func unknownIdsAre404() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("finder", over: client)
            let unknown = "00000000-0000-4000-8000-000000000000"
            for (method, path, body) in [
                ("GET", "/admin/users/\(unknown)", nil), ("PATCH", "/admin/users/\(unknown)", ["locked": true]),
                ("DELETE", "/admin/users/\(unknown)", nil), ("POST", "/admin/users/\(unknown)/logout", nil),
            ] as [(String, String, JSONValue?)] {
                let response = try client.admin(method, path, bearer: admin.tokens.access, json: body)
                #expect(response.status == 404, "\(method) \(path)")
                #expect(try response.json().objectValue?["error"] == "not_found")
            }
        }
    }

    @Test func endingSessionsAndDeletingAUserRefuseItsTokens() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("ender", over: client)
            let id = try gatehouse.register("erin", over: client)
            let first = try client.login("erin", Self.password)
            let second = try client.login("erin", Self.password)
            let logout = try client.admin("POST", "/admin/users/\(id)/logout", bearer: admin.tokens.access)
            #expect(logout.status == 204)
            for tokens in [first, second] {
                #expect(try client.get("/protected", bearer: tokens.access).status == 401)
                #expect(try client.refresh(tokens.refresh).status == 401)
            }
            let third = try client.login("erin", Self.password)
            let deleted = try client.admin("DELETE", "/admin/users/\(id)", bearer: admin.tokens.access)
            #expect(deleted.status == 204)
            #expect(try client.get("/protected", bearer: third.access).status == 401)
            #expect(try client.admin("GET", "/admin/users/\(id)", bearer: admin.tokens.access).status == 404)
            let login = try client.send(
                "POST", "/login", json: ["username": "erin", "password": .string(Self.password)])
            #expect(login.status == 401)
        }
    }

    @Test func anAdministratorCannotLockOutOrDeleteThemselvesThroughTheAPI() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("self", over: client)
            let path = "/admin/users/\(admin.id)"
            for body: JSONValue in [["locked": true], ["roles": ["editor"]], ["roles": []]] {
                let response = try client.admin("PATCH", path, bearer: admin.tokens.access, json: body)
                #expect(response.status == 409, "\(body)")
                #expect(try response.json().objectValue?["error"] == "conflict")
            }
            #expect(try client.admin("DELETE", path, bearer: admin.tokens.access).status == 409)
            // Still an administrator, session intact.
            let me = try client.admin("GET", path, bearer: admin.tokens.access)
            #expect(me.status == 200)
            #expect(try me.json().objectValue?["roles"] == ["admin"])
        }
    }

    @Test func adminActionsAreSecurityEventsWithActorActionAndTargetButNoSecrets() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("auditor", over: client)
            let id = try gatehouse.register("frank", over: client)
            let frank = try client.login("frank", Self.password)
            let secret = "s3cr3t-app-value"
            _ = try client.admin(
                "PATCH", "/admin/users/\(id)", bearer: admin.tokens.access,
                json: ["roles": ["ops"], "app_metadata": ["api_key": .string(secret)]])
            _ = try client.admin("POST", "/admin/users/\(id)/logout", bearer: admin.tokens.access)
            _ = try client.admin("DELETE", "/admin/users/\(id)", bearer: admin.tokens.access)

            let events = gatehouse.logs.lines.filter { $0.contains("event=admin_action") }
            for action in ["update_user", "end_sessions", "delete_user"] {
                let line = try #require(events.first { $0.contains("action=\(action)") }, "\(action)")
                #expect(line.contains("actor=auditor"))
                #expect(line.contains("actor_id=\(admin.id)"))
                #expect(line.contains("target=frank"))
                #expect(line.contains("target_id=\(id)"))
            }
            let update = try #require(events.first { $0.contains("action=update_user") })
            #expect(update.contains("roles=ops"))
            #expect(update.contains("app_metadata=set"))
            for line in gatehouse.logs.lines {
                #expect(!line.contains(secret))
                #expect(!line.contains(Self.password))
                #expect(!line.contains(admin.tokens.access))
                #expect(!line.contains(frank.access))
            }
        }
    }

    @Test func requestMetricsLabelTheAdminRoutesByTemplateNotById() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let admin = try gatehouse.administrator("meterer", over: client)
            for _ in 0..<3 {
                let unknown = UUID().uuidString.lowercased()
                #expect(try client.admin("GET", "/admin/users/\(unknown)", bearer: admin.tokens.access).status == 404)
            }
            #expect(try client.admin("GET", "/admin/users/\(admin.id)", bearer: admin.tokens.access).status == 200)
            let scrape = try await PrometheusExposition.parse(try client.send("GET", "/metrics").text)
            let labels = ["route": "/admin/users/{id}", "method": "GET"]
            #expect(scrape.value("gatehouse_http_requests_total", labels.merging(["status": "404"]) { $1 }) == 3)
            #expect(scrape.value("gatehouse_http_requests_total", labels.merging(["status": "200"]) { $1 }) == 1)
            #expect(
                !scrape.samples("gatehouse_http_requests_total").contains {
                    $0.labels["route"]?.contains(admin.id) ?? false
                })
        }
    }

    @Test func newAccountsGetTheDefaultRoles() async throws {
        try await withGatehouse({ $0.defaultRoles = ["reader", "billing:read"] }) { gatehouse in
            let client = try gatehouse.client()
            try gatehouse.register("newbie", over: client)
            let token = try client.login("newbie", Self.password).access
            #expect(try claims(of: token)["roles"] == ["billing:read", "reader"])
            #expect(try client.get("/me", bearer: token).json().objectValue?["roles"] == ["billing:read", "reader"])
            // Default roles are roles like any other: not admin.
            #expect(try client.get("/admin/users", bearer: token).status == 403)
        }
    }
}
