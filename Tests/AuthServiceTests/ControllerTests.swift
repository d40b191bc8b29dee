import AuthService
import Foundation
import JOSE
import JSON
import MicroHTTP
import Testing
import TestSupport

/// The controllers called with `Request` values: no socket, no daemon.
struct ControllerFixture {
    let store: SQLiteStore
    let tokens: TokenService
    let clock: ManualClock
    let accounts: AccountController
    let sessions: SessionController
    let protected: ProtectedController
    let logs = MemoryLogSink()

    init(directory: String, accessTTL: Int = 3600) throws {
        store = try SQLiteStore(path: directory + "/test.db")
        clock = ManualClock(start: 1_800_000_000)
        let key = try SigningKey.hmac(secret: Array(String(repeating: "k", count: 32).utf8))
        tokens = TokenService(
            keyRing: KeyRing(signingKey: key), accessTTL: accessTTL, issuer: "gatehouse", audience: nil, leeway: 30,
            clock: clock.clock)
        // Handlers are called directly here; the pool is only what their routes name.
        let hasher = try PasswordHasher(parameters: Argon2Parameters(memoryKiB: 256, iterations: 1, parallelism: 1))
        let pool = try WorkerPool(workers: 1, queueLimit: 1)
        let audit = AuditLog(logger: Logger(level: .debug, sink: logs), proxies: TrustedProxies())
        let limits = RateLimits(.disabled, audit: audit, clock: clock.clock)
        accounts = AccountController(
            store: store, hasher: hasher, hashingPool: pool, storePool: pool, tokens: tokens, refreshTTL: 86_400,
            clock: clock.clock, limits: limits, audit: audit)
        sessions = SessionController(
            store: store, hasher: hasher, hashingPool: pool, storePool: pool, tokens: tokens, refreshTTL: 86_400,
            clock: clock.clock, limits: limits, audit: audit)
        protected = ProtectedController(tokens: tokens)
    }

    static func json(_ path: String, _ value: JSONValue) -> Request {
        Request(
            method: .post, path: path, headers: ["Content-Type": "application/json"], body: value.serialized())
    }

    /// Calls a handler and renders a thrown error the way the server does.
    static func respond(_ handler: () throws -> Response) -> Response {
        do {
            return try handler()
        } catch let error as any HTTPResponseError {
            return error.response
        } catch {
            return Response(status: 500)
        }
    }

    func register(_ username: String, _ password: String) -> Response {
        Self.respond { try accounts.register(Self.json("/register", ["username": .string(username), "password": .string(password)])) }
    }

    func login(_ username: String, _ password: String) -> Response {
        Self.respond { try sessions.login(Self.json("/login", ["username": .string(username), "password": .string(password)])) }
    }

    func protectedRoute(_ authorization: String?) -> Response {
        var request = Request(method: .get, path: "/protected")
        if let authorization { request.headers.add("Authorization", authorization) }
        return Self.respond { try protected.protected(request) }
    }
}

@Suite struct ControllerTests {
    @Test func registerCreatesAUserAndRefusesADuplicate() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try ControllerFixture(directory: directory)
            let created = fixture.register("Alice", "long password")
            #expect(created.status == 201)
            let user = try created.jsonBody().objectValue?["user"]?.objectValue
            #expect(user?["username"] == "Alice")
            let stored = try #require(try fixture.store.user(named: "alice"))
            #expect(stored.passwordHash.hasPrefix("$argon2id$"))
            #expect(user?["id"]?.stringValue == stored.id)

            let duplicate = fixture.register("ALICE", "other password")
            #expect(duplicate.status == 409)
            #expect(try fixture.store.user(named: "alice")?.passwordHash == stored.passwordHash)
        }
    }

    @Test(arguments: [
        ("ab", "long password", "invalid_request"),
        (String(repeating: "a", count: 65), "long password", "invalid_request"),
        ("has space", "long password", "invalid_request"),
        ("ok.name_-@x", "short", "weak_password"),
        ("samesame", "SameSame", "weak_password"),
        ("ok.name", String(repeating: "p", count: 1025), "invalid_request"),
    ])
    func registerValidatesCredentials(_ row: (String, String, String)) async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try ControllerFixture(directory: directory)
            let response = fixture.register(row.0, row.1)
            #expect(response.status == 400)
            #expect(try response.jsonBody().objectValue?["error"]?.stringValue == row.2)
            #expect(try fixture.store.user(named: row.0) == nil)
        }
    }

    @Test func registerNeedsJSONContentType() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try ControllerFixture(directory: directory)
            let request = Request(
                method: .post, path: "/register", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                body: Array("username=a&password=b".utf8))
            let response = ControllerFixture.respond { try fixture.accounts.register(request) }
            #expect(response.status == 415)
            let charset = Request(
                method: .post, path: "/register", headers: ["Content-Type": "Application/JSON; charset=utf-8"],
                body: JSONValue.object(["username": "charset", "password": "long password"]).serialized())
            #expect(ControllerFixture.respond { try fixture.accounts.register(charset) }.status == 201)
        }
    }

    @Test func loginIssuesTokensThatTheProtectedRouteAccepts() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try ControllerFixture(directory: directory)
            _ = fixture.register("bob", "bob's password")
            let login = fixture.login("BOB", "bob's password")
            #expect(login.status == 200)
            #expect(login.headers["Cache-Control"] == "no-store")
            let body = try #require(try login.jsonBody().objectValue)
            let token = try #require(body["access_token"]?.stringValue)
            #expect(body["token"]?.stringValue == token)
            #expect(body["token_type"] == "Bearer")

            let protected = fixture.protectedRoute("Bearer \(token)")
            #expect(protected.status == 200)
            #expect(try protected.jsonBody() == ["message": "This is a protected route!", "user": "bob"])
            #expect(fixture.protectedRoute(token).status == 200)
        }
    }

    @Test func failedLoginsAreIndistinguishable() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try ControllerFixture(directory: directory)
            _ = fixture.register("carol", "carol's password")
            let wrong = fixture.login("carol", "not carol's password")
            let unknown = fixture.login("nobody", "not carol's password")
            #expect(wrong.status == 401)
            #expect(wrong.body == unknown.body)
            #expect(wrong.headers == unknown.headers)
        }
    }

    @Test func protectedRefusesExpiredTokensByTheInjectedClock() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try ControllerFixture(directory: directory, accessTTL: 100)
            _ = fixture.register("dave", "dave's password")
            let token = try #require(
                try fixture.login("dave", "dave's password").jsonBody().objectValue?["token"]?.stringValue)
            fixture.clock.advance(by: 129)
            #expect(fixture.protectedRoute("Bearer \(token)").status == 200)
            fixture.clock.advance(by: 2)
            let expired = fixture.protectedRoute("Bearer \(token)")
            #expect(expired.status == 401)
            #expect(try expired.jsonBody().objectValue?["error"] == "invalid_token")
        }
    }

    @Test(arguments: [
        (nil, "token_missing"), ("", "token_missing"), ("Bearer", "invalid_token"), ("Bearer ", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "invalid_token"), ("Bearer x.y.z", "invalid_token"), ("Bearer a b", "invalid_token"),
    ] as [(String?, String)])
    func protectedRefusesBadAuthorizationHeaders(_ row: (String?, String)) async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try ControllerFixture(directory: directory)
            let response = fixture.protectedRoute(row.0)
            #expect(response.status == 401)
            #expect(try response.jsonBody().objectValue?["error"]?.stringValue == row.1)
            #expect(response.headers["WWW-Authenticate"]?.hasPrefix("Bearer realm=\"gatehouse\"") == true)
        }
    }

    @Test func tokenClaimsAreTheDesignedOnes() throws {
        let clock = ManualClock(start: 1_800_000_000)
        let key = try SigningKey.hmac(secret: Array(String(repeating: "s", count: 32).utf8))
        let tokens = TokenService(
            keyRing: KeyRing(signingKey: key), accessTTL: 600, issuer: "issuer-x", audience: "api", leeway: 30,
            clock: clock.clock)
        let token = tokens.issueAccessToken(userID: "user-1", username: "erin", sessionID: "session-1")
        let verified = try JWTVerifier(
            keyRing: KeyRing(signingKey: key), policy: VerificationPolicy(issuer: "issuer-x", audience: "api")
        ).verify(token, now: 1_800_000_000)
        #expect(verified.claims["sub"] == "user-1")
        #expect(verified.claims["user"] == "erin")
        #expect(verified.claims["sid"] == "session-1")
        #expect(verified.claims["iat"] == 1_800_000_000)
        #expect(verified.claims["exp"] == 1_800_000_600)
        #expect(verified.claims["aud"] == "api")
        #expect(verified.header["kid"]?.stringValue == key.kid)
        let caller = try tokens.authenticate(token: Substring(token))
        #expect(caller.userID == "user-1")
        #expect(caller.sessionID == "session-1")
        // Roles are always there, possibly empty; app_metadata only when set.
        #expect(verified.claims["roles"] == .array([]))
        #expect(verified.claims["app_metadata"] == nil)
        #expect(caller.roles == [])

        let user = User(
            id: "user-2", username: "fay", passwordHash: "-", createdAt: 0, roles: ["admin", "ops"],
            appMetadata: ["tenant": "t1"])
        let withRoles = tokens.issueAccessToken(for: user, sessionID: "session-2")
        let claims = try JWTVerifier(
            keyRing: KeyRing(signingKey: key), policy: VerificationPolicy(issuer: "issuer-x", audience: "api")
        ).verify(withRoles, now: 1_800_000_000).claims
        #expect(claims["roles"] == ["admin", "ops"])
        #expect(claims["app_metadata"] == ["tenant": "t1"])
        let admin = try tokens.authenticate(token: withRoles)
        #expect(admin.hasRole("admin"))
        #expect(!admin.hasRole("editor"))
        // Without asking for them, the roles are not read.
        let request = Request(method: .get, path: "/", headers: ["Authorization": "Bearer \(withRoles)"])
        #expect(try tokens.authenticate(request).roles == nil)
        #expect(try tokens.authenticate(request, readingRoles: true).roles == ["admin", "ops"])
    }
}
