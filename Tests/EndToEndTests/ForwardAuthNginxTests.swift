import AuthService
import Foundation
import JSON
import MicroHTTP
import Testing
import TestSupport

/// Forward auth, end to end: `docker/nginx.conf` itself, run in a real nginx
/// (Debian's `nginx`, `make test-deps`) in front of an in-process Gatehouse
/// and a demo application; and `/auth/verify` asked directly with every method.
///
/// The demo application is a second server in the same nginx that answers
/// with what it was told: `user=<X-Auth-User> subject=<X-Auth-Subject>
/// session=<X-Auth-Session>`, plus `X-App-Method` and `X-App-Content-Length`
/// headers naming the request that reached it. It logs to `logs/app.log`, so a
/// test can see whether a request got through to it at all.
@Suite struct ForwardAuthNginxTests {
    static let password = "a fine password"

    /// The example under test, found from this file: Tests/EndToEndTests/ -> the package root.
    static var exampleURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docker/nginx.conf")
    }

    /// The http-context configuration nginx runs: the example with its
    /// upstreams pointed at the test's Gatehouse and demo app and its `listen`
    /// at the first port, then the demo app listening on the second port.
    static func httpConfiguration(gatehousePort: UInt16, ports: [UInt16]) throws -> String {
        var site = try String(contentsOf: exampleURL, encoding: .utf8)
        site = try replacingNginxDirective(
            "server gatehouse:8080;", with: "server 127.0.0.1:\(gatehousePort);", in: site)
        site = try replacingNginxDirective("server app:8000;", with: "server 127.0.0.1:\(ports[1]);", in: site)
        site = try replacingNginxDirective("listen 80;", with: "listen 127.0.0.1:\(ports[0]);", in: site)
        return site + """

            # The application behind the proxy (test only): it says what it was told.
            server {
                listen 127.0.0.1:\(ports[1]);
                access_log logs/app.log;
                default_type text/plain;
                location / {
                    add_header X-App-Method $request_method always;
                    add_header X-App-Content-Length $content_length always;
                    add_header X-App-Roles $http_x_auth_roles always;
                    return 200 "user=$http_x_auth_user subject=$http_x_auth_subject session=$http_x_auth_session\\n";
                }
            }

            """
    }

    /// Runs `body` with a Gatehouse that trusts 127.0.0.1 as its proxy (as
    /// GATEHOUSE_TRUSTED_PROXIES would be set behind nginx) and nginx in front
    /// of it running the example; stops both afterwards, nginx first.
    func withProxy(_ body: (GatehouseInstance, NginxProcess) async throws -> Void) async throws {
        try await withGatehouse({ $0.trustedProxies = TrustedProxies(parsing: "127.0.0.1") ?? TrustedProxies() }) {
            gatehouse in
            try await withNginx(
                portCount: 2, http: { try Self.httpConfiguration(gatehousePort: gatehouse.port, ports: $0) }
            ) { nginx in
                try await body(gatehouse, nginx)
            }
        }
    }

    /// A registered user, as seen through `client`.
    struct Account {
        let username: String
        let id: String
        let tokens: Tokens
    }

    /// Registers and logs in `username` over `client` (connected to nginx or to Gatehouse).
    func account(_ username: String, over client: HTTPTestClient) throws -> Account {
        let registered = try client.send(
            "POST", "/register", json: ["username": .string(username), "password": .string(Self.password)])
        guard registered.status == 201,
            let id = try registered.json().objectValue?["user"]?.objectValue?["id"]?.stringValue
        else { throw HarnessError("register \(username): \(registered.status) \(registered.text)") }
        return Account(username: username, id: id, tokens: try client.login(username, Self.password))
    }

    /// Lines the demo application logged so far.
    func appRequests(_ nginx: NginxProcess) -> [Substring] {
        let log = (try? String(contentsOfFile: "\(nginx.prefix)/logs/app.log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n")
    }

    // MARK: - Through nginx

    @Test func registerAndLoginThroughNginxThenTheAppSeesTheCaller() async throws {
        try await withProxy { _, nginx in
            let client = try HTTPTestClient(port: nginx.port)
            let alice = try account("alice", over: client)
            let expected = "user=alice subject=\(alice.id) session=\(try sessionID(of: alice.tokens.access))\n"
            for authorization in ["Bearer \(alice.tokens.access)", alice.tokens.access] {
                let response = try client.send("GET", "/api/orders?page=2", headers: [("Authorization", authorization)])
                #expect(response.status == 200, "\(response.text)")
                #expect(response.text == expected)
                #expect(response.header("X-App-Method") == "GET")
            }
            #expect(appRequests(nginx).count == 2)
        }
    }

    @Test func missingOrBadTokensGet401FromNginxWithGatehousesChallenge() async throws {
        try await withProxy { _, nginx in
            let client = try HTTPTestClient(port: nginx.port)
            let bob = try account("bob", over: client)
            let missing = try client.send("GET", "/api/orders")
            #expect(missing.status == 401)
            #expect(missing.header("WWW-Authenticate") == #"Bearer realm="gatehouse""#)

            let token = bob.tokens.access
            let tampered = String(token.dropLast(2)) + (token.hasSuffix("AA") ? "BB" : "AA")
            for bad in ["Bearer garbage", "garbage", "Bearer a.b.c", "Bearer \(tampered)", "Basic Ym9iOnB3"] {
                let refused = try client.send(
                    "GET", "/api/orders", headers: [("Authorization", bad), ("X-Auth-User", "admin")])
                #expect(refused.status == 401, "\(bad)")
                let challenge = refused.header("WWW-Authenticate") ?? ""
                #expect(
                    challenge.hasPrefix(#"Bearer realm="gatehouse", error="invalid_token""#), "\(bad): \(challenge)")
            }
            // Refused requests never reach the application.
            #expect(appRequests(nginx).isEmpty)
        }
    }

    @Test func aClientCannotNameItselfToTheApp() async throws {
        try await withProxy { _, nginx in
            let client = try HTTPTestClient(port: nginx.port)
            let mallory = try account("mallory", over: client)
            // (Not under /api/admin/: that location requires the admin role; see below.)
            let response = try client.send(
                "GET", "/api/settings",
                headers: [
                    ("Authorization", "Bearer \(mallory.tokens.access)"), ("X-Auth-User", "admin"),
                    ("x-auth-user", "root"), ("X-Auth-Subject", "00000000-0000-0000-0000-000000000000"),
                    ("X-Auth-Session", "forged"), ("X-Auth-Roles", "admin"),
                ])
            #expect(response.status == 200)
            #expect(response.header("X-App-Roles") == nil)
            #expect(
                response.text
                    == "user=mallory subject=\(mallory.id) session=\(try sessionID(of: mallory.tokens.access))\n")
            #expect(
                !response.text.contains("admin") && !response.text.contains("root") && !response.text.contains("forged")
            )
        }
    }

    @Test func aPostWithABodyGoesThroughToTheApp() async throws {
        try await withProxy { _, nginx in
            let client = try HTTPTestClient(port: nginx.port)
            let carol = try account("carol", over: client)
            // 100 KiB: over Gatehouse's 64 KiB body limit and nginx's in-memory
            // buffer; the check never sees it, the app gets all of it.
            let body = [UInt8](repeating: UInt8(ascii: "x"), count: 100 * 1024)
            let response = try client.send(
                "POST", "/api/upload",
                headers: [("Authorization", "Bearer \(carol.tokens.access)"), ("Content-Type", "text/plain")],
                body: body)
            #expect(response.status == 200, "\(response.text)")
            #expect(response.text.hasPrefix("user=carol "))
            #expect(response.header("X-App-Method") == "POST")
            #expect(response.header("X-App-Content-Length") == "102400")

            let refused = try client.send("POST", "/api/upload", headers: [("Content-Type", "text/plain")], body: body)
            #expect(refused.status == 401)
            #expect(appRequests(nginx).count == 1)
        }
    }

    @Test(arguments: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"])
    func everyMethodIsCheckedThroughNginx(_ method: String) async throws {
        try await withProxy { _, nginx in
            let client = try HTTPTestClient(port: nginx.port)
            let dave = try account("dave", over: client)
            let allowed = try client.send(
                method, "/api/items/7", headers: [("Authorization", "Bearer \(dave.tokens.access)")])
            #expect(allowed.status == 200)
            #expect(allowed.header("X-App-Method") == method)
            if method != "HEAD" { #expect(allowed.text.hasPrefix("user=dave ")) }
            let refused = try client.send(method, "/api/items/7")
            #expect(refused.status == 401)
            #expect(refused.header("WWW-Authenticate") == #"Bearer realm="gatehouse""#)
            #expect(appRequests(nginx).count == 1)
        }
    }

    @Test func refreshAndLogoutThroughNginxEndTheTokenAtTheProxy() async throws {
        try await withProxy { _, nginx in
            let client = try HTTPTestClient(port: nginx.port)
            let erin = try account("erin", over: client)
            let me = try client.get("/me", bearer: erin.tokens.access)
            #expect(me.status == 200)
            #expect(try me.json().objectValue?["username"] == "erin")

            let refreshed = try client.refresh(erin.tokens.refresh)
            #expect(refreshed.status == 200)
            #expect(refreshed.header("Cache-Control") == "no-store")
            let rotated = try Tokens(refreshed)
            let api = try client.get("/api/profile", bearer: rotated.access)
            #expect(api.status == 200)
            #expect(api.text.hasPrefix("user=erin "))

            #expect(try client.post("/logout", bearer: rotated.access).status == 204)
            let afterLogout = try client.get("/api/profile", bearer: rotated.access)
            #expect(afterLogout.status == 401)
            #expect(afterLogout.header("WWW-Authenticate")?.contains(#"error="invalid_token""#) == true)
            // The first access token is of the same session: it ended too.
            #expect(try client.get("/api/profile", bearer: erin.tokens.access).status == 401)
            #expect(try client.get("/me", bearer: rotated.access).status == 401)
        }
    }

    @Test func gatehouseRoutesGoToGatehouseAndNothingElseIsExposed() async throws {
        try await withProxy { _, nginx in
            let client = try HTTPTestClient(port: nginx.port)
            // Gatehouse marks every response with nosniff; nginx's own pages do not have it.
            let health = try client.send("GET", "/healthz")
            #expect(health.status == 200)
            #expect(health.header("X-Content-Type-Options") == "nosniff")
            let jwks = try client.send("GET", "/.well-known/jwks.json")
            #expect(jwks.header("X-Content-Type-Options") == "nosniff", "\(jwks.status) \(jwks.text)")
            for path in ["/metrics", "/protected", "/auth/verify", "/_gatehouse_verify", "/admin/users", "/"] {
                let response = try client.send("GET", path)
                #expect(response.status == 404, "\(path)")
                #expect(response.header("X-Content-Type-Options") == nil, "\(path) reached Gatehouse")
            }
        }
    }

    @Test func gatehouseSeesTheClientAddressThroughTheTrustedProxy() async throws {
        try await withProxy { gatehouse, nginx in
            // The client is 127.0.0.2 and claims to be 203.0.113.9; nginx
            // appends the real peer, Gatehouse takes the right-most untrusted one.
            let client = try HTTPTestClient(port: nginx.port, bindAddress: "127.0.0.2")
            let registered = try client.send(
                "POST", "/register", headers: [("X-Forwarded-For", "203.0.113.9")],
                json: ["username": "frank", "password": .string(Self.password)])
            #expect(registered.status == 201)
            let line = gatehouse.logs.lines.first { $0.contains("event=register") } ?? ""
            #expect(line.contains("client_ip=127.0.0.2"), "\(line)")
        }
    }

    @Test func gatehouseUnreachableFailsClosed() async throws {
        // Nothing listens on the port the example's gatehouse upstream names.
        let deadPort = try reserveLoopbackPorts(1)[0]
        try await withNginx(portCount: 2, http: { try Self.httpConfiguration(gatehousePort: deadPort, ports: $0) }) {
            nginx in
            let client = try HTTPTestClient(port: nginx.port)
            let response = try client.send("GET", "/api/orders", headers: [("Authorization", "Bearer x.y.z")])
            #expect(response.status == 500)
            #expect(appRequests(nginx).isEmpty)
            #expect(nginx.errorLog.contains("auth request unexpected status: 502"))
        }
    }

    @Test func aPortTakenByAnotherProcessIsReportedForARetry() async throws {
        // withNginx retries on AddressInUse; a port someone else holds (this
        // Gatehouse's) must come back as exactly that, not as a vague failure.
        try await withGatehouse { gatehouse in
            await withTemporaryDirectory { directory in
                let http = "server {\n    listen 127.0.0.1:\(gatehouse.port);\n}\n"
                #expect(throws: NginxProcess.AddressInUse.self) {
                    try NginxProcess(prefix: directory, ports: [gatehouse.port], http: http)
                }
            }
        }
    }

    // MARK: - /auth/verify directly

    /// One way to ask `/auth/verify`.
    struct VerifyRequest: Sendable, CustomTestStringConvertible {
        let method: String
        /// Bytes of body to send with it (0: none).
        let bodySize: Int
        /// Send the body with chunked coding instead of Content-Length.
        var chunked = false

        var testDescription: String {
            bodySize == 0 ? method : "\(method) with a \(bodySize / 1024) KiB\(chunked ? " chunked" : "") body"
        }

        func send(_ client: HTTPTestClient, authorization: String?) throws -> TestResponse {
            var headers: [(String, String)] = []
            if let authorization { headers.append(("Authorization", authorization)) }
            guard bodySize > 0 else { return try client.send(method, "/auth/verify", headers: headers) }
            let body = [UInt8](repeating: UInt8(ascii: "y"), count: bodySize)
            headers.append(("Content-Type", "application/octet-stream"))
            if chunked {
                headers.append(("Transfer-Encoding", "chunked"))
                return try client.send(
                    method, "/auth/verify", headers: headers, body: EndToEndTests.chunked(body, size: 8192))
            }
            return try client.send(method, "/auth/verify", headers: headers, body: body)
        }
    }

    static let verifyRequests: [VerifyRequest] = [
        VerifyRequest(method: "GET", bodySize: 0), VerifyRequest(method: "HEAD", bodySize: 0),
        VerifyRequest(method: "POST", bodySize: 0), VerifyRequest(method: "POST", bodySize: 100 * 1024),
        VerifyRequest(method: "POST", bodySize: 100 * 1024, chunked: true),
        VerifyRequest(method: "PUT", bodySize: 1024), VerifyRequest(method: "PATCH", bodySize: 0),
        VerifyRequest(method: "DELETE", bodySize: 0), VerifyRequest(method: "OPTIONS", bodySize: 0),
        VerifyRequest(method: "PROPFIND", bodySize: 0),
    ]

    @Test(arguments: verifyRequests)
    func verifyAnswersEveryMethodDirectly(_ row: VerifyRequest) async throws {
        try await withGatehouse { gatehouse in
            let grace = try account("grace", over: try gatehouse.client())
            let sid = try sessionID(of: grace.tokens.access)

            for authorization in ["Bearer \(grace.tokens.access)", grace.tokens.access] {
                let client = try gatehouse.client()
                let allowed = try row.send(client, authorization: authorization)
                #expect(allowed.status == 200, "\(allowed.text)")
                #expect(allowed.body.isEmpty)
                #expect(allowed.header("X-Auth-User") == "grace")
                #expect(allowed.header("X-Auth-Subject") == grace.id)
                #expect(allowed.header("X-Auth-Session") == sid)
                #expect(allowed.header("Cache-Control") == "no-store")
                // Not a CORS preflight, even for OPTIONS.
                #expect(allowed.header("Access-Control-Allow-Methods") == nil)
                try expectNextRequestWorks(on: client, after: allowed)
            }

            let client = try gatehouse.client()
            let missing = try row.send(client, authorization: nil)
            #expect(missing.status == 401)
            #expect(missing.header("WWW-Authenticate") == #"Bearer realm="gatehouse""#)
            #expect(missing.header("X-Auth-User") == nil)
            if row.method != "HEAD" { #expect(try missing.json().objectValue?["error"] == "token_missing") }
            try expectNextRequestWorks(on: client, after: missing)

            for bad in ["Bearer garbage", "Bearer \(grace.tokens.access)x", "Basic Z3JhY2U6cHc="] {
                let client = try gatehouse.client()
                let refused = try row.send(client, authorization: bad)
                #expect(refused.status == 401, "\(bad)")
                #expect(
                    refused.header("WWW-Authenticate")?.hasPrefix(#"Bearer realm="gatehouse", error="invalid_token""#)
                        == true, "\(bad)")
                #expect(refused.header("X-Auth-User") == nil)
                if row.method != "HEAD" { #expect(try refused.json().objectValue?["error"] == "invalid_token") }
                try expectNextRequestWorks(on: client, after: refused)
            }
        }
    }

    /// The connection is still in step after `response`: no body was sent
    /// for a HEAD, no unread request body is taken for the next request.
    func expectNextRequestWorks(on client: HTTPTestClient, after response: TestResponse) throws {
        guard !response.closesConnection else { return }
        let next = try client.send("GET", "/healthz")
        #expect(next.status == 200)
        #expect(try next.json() == ["status": "ok"])
    }

    @Test func expiredTokenIsRefusedByVerify() async throws {
        try await withGatehouse({ $0.accessTTL = 60 }) { gatehouse in
            let client = try gatehouse.client()
            let heidi = try account("heidi", over: client)
            let authorization = [("Authorization", "Bearer \(heidi.tokens.access)")]
            #expect(try client.send("GET", "/auth/verify", headers: authorization).status == 200)
            gatehouse.clock.advance(by: 60 + 31)  // past the 30 s leeway
            let expired = try client.send("GET", "/auth/verify", headers: authorization)
            #expect(expired.status == 401)
            #expect(expired.header("WWW-Authenticate")?.contains(#"error="invalid_token""#) == true)
            #expect(expired.header("WWW-Authenticate")?.contains("expired") == true)
            #expect(expired.header("X-Auth-User") == nil)
        }
    }
}

// MARK: - Role-gated locations

extension ForwardAuthNginxTests {
    /// `/api/admin/` in the example asks `/auth/verify` with
    /// `X-Auth-Require-Role: admin`: an administrator gets through with the
    /// roles passed on, anyone else gets nginx's 403 and the app never sees
    /// the request; a client cannot lift the requirement with its own header.
    @Test func theAdminLocationLetsOnlyAdministratorsThrough() async throws {
        try await withProxy { gatehouse, nginx in
            let client = try HTTPTestClient(port: nginx.port)
            _ = try account("ada", over: client)
            try gatehouse.grant("ada", "admin")
            try gatehouse.grant("ada", "billing")
            let ada = try client.login("ada", Self.password)
            let eve = try account("eve", over: client)

            let allowed = try client.send(
                "GET", "/api/admin/users", headers: [("Authorization", "Bearer \(ada.access)")])
            #expect(allowed.status == 200, "\(allowed.text)")
            #expect(allowed.text.hasPrefix("user=ada "))
            #expect(allowed.header("X-App-Roles") == "admin,billing")
            #expect(appRequests(nginx).count == 1)

            for headers in [
                [("Authorization", "Bearer \(eve.tokens.access)")],
                [("Authorization", "Bearer \(eve.tokens.access)"), ("X-Auth-Require-Role", "")],
                [("Authorization", "Bearer \(eve.tokens.access)"), ("X-Auth-Roles", "admin")],
            ] {
                let refused = try client.send("GET", "/api/admin/users", headers: headers)
                #expect(refused.status == 403, "\(headers)")
            }
            #expect(try client.send("GET", "/api/admin/users").status == 401)
            // Without the slash, nginx redirects into the gated location.
            let bare = try client.send("GET", "/api/admin", headers: [("Authorization", "Bearer \(eve.tokens.access)")])
            #expect(bare.status == 301)
            #expect(appRequests(nginx).count == 1)

            // The ordinary location passes the (empty) roles on and requires none.
            let plain = try client.send(
                "GET", "/api/orders", headers: [("Authorization", "Bearer \(eve.tokens.access)")])
            #expect(plain.status == 200)
            #expect((plain.header("X-App-Roles") ?? "") == "")
        }
    }
}
