import Foundation
import JSON
import Testing
import TestSupport

/// The tutorial's API over a real socket, against the real daemon.
@Suite struct TutorialFlowTests {
    @Test func registerLoginProtectedWithBearerAndBareToken() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let registered = try client.send(
                "POST", "/register", json: ["username": "alice", "password": "correct horse battery"])
            #expect(registered.status == 201)
            let body = try registered.json()
            #expect(body.objectValue?["message"] == "User registered successfully!")
            let user = try #require(body.objectValue?["user"]?.objectValue)
            #expect(user["username"] == "alice")
            #expect(user["id"]?.stringValue?.count == 36)

            let login = try client.send(
                "POST", "/login", json: ["username": "alice", "password": "correct horse battery"])
            #expect(login.status == 200)
            #expect(login.header("Cache-Control") == "no-store")
            let tokens = try #require(try login.json().objectValue)
            let token = try #require(tokens["token"]?.stringValue)
            #expect(tokens["access_token"]?.stringValue == token)
            #expect(tokens["token_type"] == "Bearer")
            #expect(tokens["expires_in"] == 3600)
            #expect((tokens["refresh_token"]?.stringValue?.count ?? 0) >= 43)

            for authorization in ["Bearer \(token)", "bearer \(token)", token] {
                let protected = try client.send("GET", "/protected", headers: [("Authorization", authorization)])
                #expect(protected.status == 200)
                #expect(
                    try protected.json()
                        == ["message": "This is a protected route!", "user": "alice"])
            }
        }
    }

    @Test func accessTokenCarriesTheDesignedClaims() async throws {
        try await withGatehouse { gatehouse in
            let token = try registerAndLogin(gatehouse, "claims.user")
            let parts = token.split(separator: ".")
            #expect(parts.count == 3)
            let header = try JSONValue.parse(try #require(base64URLDecode(parts[0]))).objectValue
            #expect(header?["alg"] == "HS256")
            #expect(header?["typ"] == "JWT")
            #expect(header?["kid"]?.stringValue?.isEmpty == false)
            let payload = try #require(base64URLDecode(parts[1]))
            let claims = try #require(try JSONValue.parse(payload).objectValue)
            for name in ["iss", "sub", "user", "iat", "exp", "jti", "sid"] {
                #expect(claims[name] != nil, "missing claim \(name)")
            }
            #expect(claims["iss"] == "gatehouse")
            #expect(claims["user"] == "claims.user")
            let iat = try #require(claims["iat"]?.numberValue)
            #expect(claims["exp"]?.numberValue == iat + 3600)
        }
    }

    @Test func protectedRefusesMissingAndBadTokens() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let missing = try client.send("GET", "/protected")
            #expect(missing.status == 401)
            #expect(try missing.json().objectValue?["error"] == "token_missing")
            #expect(missing.header("WWW-Authenticate") == #"Bearer realm="gatehouse""#)

            let token = try registerAndLogin(gatehouse, "bob")
            let tampered = String(token.dropLast(2)) + (token.hasSuffix("AA") ? "BB" : "AA")
            for bad in ["Bearer not.a.token", "Bearer \(tampered)", "Basic Ym9iOnB3", "Bearer a b"] {
                let response = try client.send("GET", "/protected", headers: [("Authorization", bad)])
                #expect(response.status == 401, "\(bad)")
                #expect(try response.json().objectValue?["error"] == "invalid_token", "\(bad)")
                let challenge = response.header("WWW-Authenticate") ?? ""
                #expect(challenge.hasPrefix(#"Bearer realm="gatehouse", error="invalid_token""#), "\(bad)")
            }
        }
    }

    @Test func expiredAccessTokenIsRefusedAfterTheClockMoves() async throws {
        try await withGatehouse({ $0.accessTTL = 60 }) { gatehouse in
            let token = try registerAndLogin(gatehouse, "carol")
            let client = try gatehouse.client()
            gatehouse.clock.advance(by: 60 + 29)  // inside the 30 s leeway
            #expect(try client.send("GET", "/protected", headers: [("Authorization", "Bearer \(token)")]).status == 200)
            gatehouse.clock.advance(by: 2)
            let expired = try client.send("GET", "/protected", headers: [("Authorization", "Bearer \(token)")])
            #expect(expired.status == 401)
            #expect(expired.header("WWW-Authenticate")?.contains("expired") == true)
        }
    }

    @Test func tokenFromAnotherSecretOrIssuerIsRefused() async throws {
        let foreign = try await withGatehouse({ $0.jwtSecret = String(repeating: "x", count: 40) }) { gatehouse in
            try registerAndLogin(gatehouse, "mallory")
        }
        try await withGatehouse({ $0.jwtSecret = String(repeating: "y", count: 40) }) { gatehouse in
            let response = try gatehouse.client().send(
                "GET", "/protected", headers: [("Authorization", "Bearer \(foreign)")])
            #expect(response.status == 401)
        }
        let otherIssuer = try await withGatehouse({
            $0.jwtSecret = String(repeating: "z", count: 40)
            $0.issuer = "someone-else"
        }) { gatehouse in try registerAndLogin(gatehouse, "mallory") }
        try await withGatehouse({ $0.jwtSecret = String(repeating: "z", count: 40) }) { gatehouse in
            let response = try gatehouse.client().send(
                "GET", "/protected", headers: [("Authorization", "Bearer \(otherIssuer)")])
            #expect(response.status == 401)
            #expect(response.header("WWW-Authenticate")?.contains("issuer") == true)
        }
    }

    @Test func rootAndHealth() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let root = try client.send("GET", "/")
            #expect(root.status == 200)
            #expect(try root.json().objectValue?["service"] == "gatehouse")
            let health = try client.send("GET", "/healthz")
            #expect(health.status == 200)
            #expect(try health.json() == ["status": "ok"])
            #expect(health.header("Content-Type") == "application/json")
            #expect(health.header("X-Content-Type-Options") == "nosniff")
        }
    }
}

/// Registers `username` (password `password-of-<username>`) and returns an access token.
func registerAndLogin(_ gatehouse: GatehouseInstance, _ username: String) throws -> String {
    let client = try gatehouse.client()
    let password = "password-of-\(username)"
    let registered = try client.send("POST", "/register", json: ["username": .string(username), "password": .string(password)])
    guard registered.status == 201 else { throw HarnessError("register \(username): \(registered.status) \(registered.text)") }
    let login = try client.send("POST", "/login", json: ["username": .string(username), "password": .string(password)])
    guard login.status == 200, let token = try login.json().objectValue?["access_token"]?.stringValue else {
        throw HarnessError("login \(username): \(login.status) \(login.text)")
    }
    return token
}

func base64URLDecode(_ text: Substring) -> Data? {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: base64)
}
