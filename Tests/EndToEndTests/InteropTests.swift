import AuthService
import Foundation
import JOSE
import JSON
import Testing
import TestSupport

/// Gatehouse's tokens checked by PyJWT, a JWT library nobody on this project
/// wrote, the way an API behind Gatehouse would check them: against the live
/// `/.well-known/jwks.json` (HS256: with the shared secret), with the issuer,
/// audience, expiry and issue time checked. And the other way round: tokens
/// PyJWT signs with keys Gatehouse never had are refused by Gatehouse.
///
/// Needs the test venv (`make venv`; `make test` makes it): without it these
/// tests fail, naming the command, and never skip.
@Suite struct InteropTests {
    static let algorithms: [JWSAlgorithm] = [.hs256, .rs256, .es256, .edDSA]
    static let password = "interop password"
    /// The HS256 secret, set explicitly so PyJWT can be given it.
    static let secret = "interop-test-secret-0123456789abcdef-0123456789"
    /// JWK members that hold private or secret key material (RFC 7518 section 6).
    static let privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]

    /// Signs with `algorithm` (HS256 with `secret`, which PyJWT is given too), for `audience` if set.
    static func configure(_ algorithm: JWSAlgorithm, audience: String? = nil) -> (inout Configuration) -> Void {
        { configuration in
            configuration.signingAlgorithm = algorithm
            if algorithm == .hs256 { configuration.jwtSecret = secret }
            configuration.audience = audience
        }
    }

    /// Where PyJWT gets the key: the live JWKS, or for HS256 the secret.
    static func pyJWTKey(_ gatehouse: GatehouseInstance, _ algorithm: JWSAlgorithm) -> PyJWT.Key {
        algorithm == .hs256 ? .secret(secret) : .jwks(url: "http://127.0.0.1:\(gatehouse.port)/.well-known/jwks.json")
    }

    @Test(arguments: algorithms)
    func pyJWTVerifiesTheAccessTokenAgainstTheLiveKeys(_ algorithm: JWSAlgorithm) async throws {
        try await withGatehouse(Self.configure(algorithm)) { gatehouse in
            let client = try gatehouse.client()
            let user = try registerInteropUser(client, "interop-\(algorithm.rawValue.lowercased())")
            let token = try client.login(user.name, Self.password).access
            let header = try #require(JWSParts(token)).header

            let verdict = try await PyJWT.verify(
                token, key: Self.pyJWTKey(gatehouse, algorithm), issuer: "gatehouse",
                algorithms: [algorithm.rawValue])
            let claims = try #require(verdict.claims, "\(verdict)")
            #expect(verdict.header == header)
            #expect(header["alg"] == .string(algorithm.rawValue))
            #expect(header["typ"] == "JWT")
            #expect(header["kid"]?.stringValue?.isEmpty == false)
            #expect(claims["iss"] == "gatehouse")
            #expect(claims["sub"] == .string(user.id))
            #expect(claims["user"] == .string(user.name))
            #expect(claims["sid"]?.stringValue?.isEmpty == false)
            #expect(claims["jti"]?.stringValue?.isEmpty == false)
            #expect(claims["aud"] == nil)
            let issuedAt = try #require(claims["iat"]?.numberValue)
            #expect(claims["exp"]?.numberValue == issuedAt + 3600)

            // Gatehouse takes the token PyJWT took.
            #expect(try client.get("/protected", bearer: token).status == 200)
            let verified = try client.get("/auth/verify", bearer: token)
            #expect(verified.status == 200)
            #expect(verified.header("X-Auth-User") == user.name)
            #expect(verified.header("X-Auth-Subject") == user.id)
            #expect(verified.header("X-Auth-Session") == claims["sid"]?.stringValue)
        }
    }

    @Test(arguments: algorithms)
    func theJWKSPublishesTheSigningKeyAndNothingPrivate(_ algorithm: JWSAlgorithm) async throws {
        try await withGatehouse(Self.configure(algorithm)) { gatehouse in
            let client = try gatehouse.client()
            let user = try registerInteropUser(client, "jwks-\(algorithm.rawValue.lowercased())")
            let token = try client.login(user.name, Self.password).access
            let kid = try #require(JWSParts(token)?.header["kid"]?.stringValue)

            let response = try client.send("GET", "/.well-known/jwks.json")
            #expect(response.status == 200)
            #expect(response.header("Content-Type")?.hasPrefix("application/json") == true)
            let cacheControl = try #require(response.header("Cache-Control"))
            let directives = cacheControl.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(directives.contains("public"), "\(cacheControl)")
            let maxAge = directives.first { $0.hasPrefix("max-age=") }.flatMap { Int($0.dropFirst("max-age=".count)) }
            #expect((maxAge ?? 0) > 0, "\(cacheControl)")

            let body = try #require(try response.json().objectValue)
            #expect(body.keys == ["keys"])
            let keys = try #require(body["keys"]?.arrayValue).compactMap(\.objectValue)
            #expect(keys.count == body["keys"]?.arrayValue?.count)
            guard algorithm != .hs256 else {
                // An HMAC secret is never published.
                #expect(response.text.filter { !$0.isWhitespace } == #"{"keys":[]}"#)
                return
            }
            for key in keys {
                for member in Self.privateMembers { #expect(key[member] == nil, "\(member) in \(key.keys)") }
            }
            let key = try #require(keys.first { $0["kid"]?.stringValue == kid }, "no key with the token's kid \(kid)")
            #expect(key["alg"] == .string(algorithm.rawValue))
            #expect(key["use"] == "sig")
            switch algorithm {
            case .rs256: #expect(key["kty"] == "RSA")
            case .es256:
                #expect(key["kty"] == "EC")
                #expect(key["crv"] == "P-256")
            case .edDSA:
                #expect(key["kty"] == "OKP")
                #expect(key["crv"] == "Ed25519")
            default: Issue.record("no expectation for \(algorithm)")
            }
            #expect(try rfc7638Thumbprint(key) == kid, "kid is not the RFC 7638 thumbprint")
        }
    }

    @Test(arguments: algorithms)
    func pyJWTRefusesATamperedAndAnExpiredToken(_ algorithm: JWSAlgorithm) async throws {
        try await withGatehouse(Self.configure(algorithm)) { gatehouse in
            let client = try gatehouse.client()
            let user = try registerInteropUser(client, "refused-\(algorithm.rawValue.lowercased())")
            let valid = try client.login(user.name, Self.password).access
            let tampered = try #require(JWSParts(valid)).flippingSignatureByte()
            // Issued 3700 s ago by Gatehouse's clock, so expired 100 s ago by
            // the wall clock PyJWT reads (and Gatehouse's, once it is back).
            gatehouse.clock.advance(by: -3700)
            let expired = try client.login(user.name, Self.password).access
            gatehouse.clock.advance(by: 3700)

            let verdicts = try await PyJWT.verify(
                tokens: [valid, tampered, expired], key: Self.pyJWTKey(gatehouse, algorithm), issuer: "gatehouse",
                algorithms: [algorithm.rawValue], leeway: 0)
            #expect(verdicts[0].isVerified, "\(verdicts[0])")
            #expect(verdicts[1].errorType == "InvalidSignatureError", "\(verdicts[1])")
            #expect(verdicts[2].errorType == "ExpiredSignatureError", "\(verdicts[2])")
            // The same expired token within a leeway that covers it: expiry was the only fault.
            let lenient = try await PyJWT.verify(
                expired, key: Self.pyJWTKey(gatehouse, algorithm), issuer: "gatehouse",
                algorithms: [algorithm.rawValue], leeway: 300)
            #expect(lenient.isVerified, "\(lenient)")

            // Gatehouse agrees on both. The valid token goes first, so a
            // signature cache that remembered it must not take the tampered one.
            #expect(try client.get("/auth/verify", bearer: valid).status == 200)
            for token in [tampered, expired] {
                #expect(try client.get("/protected", bearer: token).status == 401)
                #expect(try client.get("/auth/verify", bearer: token).status == 401)
            }
        }
    }

    @Test(arguments: algorithms)
    func pyJWTChecksTheConfiguredAudience(_ algorithm: JWSAlgorithm) async throws {
        try await withGatehouse(Self.configure(algorithm, audience: "orders-api")) { gatehouse in
            let client = try gatehouse.client()
            let user = try registerInteropUser(client, "audience-\(algorithm.rawValue.lowercased())")
            let token = try client.login(user.name, Self.password).access
            let key = Self.pyJWTKey(gatehouse, algorithm)

            let right = try await PyJWT.verify(
                token, key: key, issuer: "gatehouse", audience: "orders-api", algorithms: [algorithm.rawValue])
            #expect(right.claims?["aud"] == "orders-api", "\(right)")
            let wrong = try await PyJWT.verify(
                token, key: key, issuer: "gatehouse", audience: "billing-api", algorithms: [algorithm.rawValue])
            #expect(wrong.errorType == "InvalidAudienceError", "\(wrong)")
            // A verifier that expects no audience must not take a token meant for one.
            let none = try await PyJWT.verify(token, key: key, issuer: "gatehouse", algorithms: [algorithm.rawValue])
            #expect(none.errorType == "InvalidAudienceError", "\(none)")
            let otherIssuer = try await PyJWT.verify(
                token, key: key, issuer: "someone-else", audience: "orders-api", algorithms: [algorithm.rawValue])
            #expect(otherIssuer.errorType == "InvalidIssuerError", "\(otherIssuer)")
        }
    }

    @Test(arguments: algorithms)
    func gatehouseRefusesTokensSignedWithAKeyItNeverHad(_ algorithm: JWSAlgorithm) async throws {
        try await withGatehouse(Self.configure(algorithm)) { gatehouse in
            let client = try gatehouse.client()
            let user = try registerInteropUser(client, "forged-\(algorithm.rawValue.lowercased())")
            let real = try client.login(user.name, Self.password).access
            let parts = try #require(JWSParts(real))
            let kid = try #require(parts.header["kid"]?.stringValue)
            // Verified first, so it sits in any signature cache.
            #expect(try client.get("/auth/verify", bearer: real).status == 200)

            // The real token's claims and kid, signed by a fresh EC key, and by
            // a fresh key (or secret) of Gatehouse's own algorithm.
            var forgeries = [try await PyJWT.sign(claims: parts.claims, algorithm: "ES256", kid: kid)]
            if algorithm != .es256 {
                forgeries.append(try await PyJWT.sign(claims: parts.claims, algorithm: algorithm.rawValue, kid: kid))
            }
            for forged in forgeries {
                let header = try #require(JWSParts(forged)).header
                #expect(header["kid"] == .string(kid))
                for method in ["GET", "POST"] {
                    let verify = try client.send(
                        method, "/auth/verify", headers: [("Authorization", "Bearer \(forged)")])
                    #expect(verify.status == 401, "\(method) /auth/verify took a forgery (\(header))")
                    #expect(verify.header("X-Auth-User") == nil)
                }
                let protected = try client.get("/protected", bearer: forged)
                #expect(protected.status == 401, "/protected took a forgery (\(header))")
                #expect(protected.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            }
            // PyJWT, given Gatehouse's keys, refuses them too; the real token still works.
            for verdict in try await PyJWT.verify(
                tokens: forgeries, key: Self.pyJWTKey(gatehouse, algorithm), issuer: "gatehouse",
                algorithms: [algorithm.rawValue])
            {
                #expect(!verdict.isVerified, "\(verdict)")
            }
            #expect(try client.get("/auth/verify", bearer: real).status == 200)
        }
    }

    /// A kid (or secret) that starts with "-", as one RFC 7638 thumbprint in 64 does, reaches
    /// the Python scripts as a value, not as an option (a CI run once failed on exactly that).
    @Test func valuesStartingWithADashReachTheScriptsIntact() async throws {
        let claims: JSONObject = ["sub": "x", "iss": "gatehouse", "iat": 1, "exp": 4_000_000_000]
        let secret = "-secret-that-looks-like-an-option-0123456789"
        let token = try await PyJWT.sign(claims: claims, algorithm: "HS256", kid: "-kid", secret: secret)
        let verdict = try await PyJWT.verify(token, key: .secret(secret), issuer: "gatehouse", algorithms: ["HS256"])
        #expect(verdict.header?["kid"]?.stringValue == "-kid", "\(verdict)")
    }
}

// MARK: - Helpers

/// A registered user.
private struct InteropUser {
    let id: String
    let name: String
}

/// Registers `username` with `InteropTests.password`.
private func registerInteropUser(_ client: HTTPTestClient, _ username: String) throws -> InteropUser {
    let response = try client.send(
        "POST", "/register", json: ["username": .string(username), "password": .string(InteropTests.password)])
    guard response.status == 201, let id = try response.json().objectValue?["user"]?.objectValue?["id"]?.stringValue
    else { throw HarnessError("register \(username): \(response.status) \(response.text)") }
    return InteropUser(id: id, name: username)
}

/// A compact JWS split into its parts, header and claims decoded (not verified).
private struct JWSParts {
    let header: JSONObject
    let claims: JSONObject
    let segments: [Substring]

    init?(_ token: String) {
        segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3, let header = Base64URL.decode(segments[0]).flatMap({ try? JSONValue.parse($0) }),
            let claims = Base64URL.decode(segments[1]).flatMap({ try? JSONValue.parse($0) }),
            let headerObject = header.objectValue, let claimsObject = claims.objectValue
        else { return nil }
        self.header = headerObject
        self.claims = claimsObject
    }

    /// The same token with one bit of one signature byte flipped (in the
    /// decoded bytes, so the change is never lost in base64url padding bits).
    func flippingSignatureByte() throws -> String {
        guard var signature = Base64URL.decode(segments[2]), !signature.isEmpty else {
            throw HarnessError("token without a signature")
        }
        signature[signature.count / 2] ^= 0x01
        return "\(segments[0]).\(segments[1]).\(Base64URL.encode(signature))"
    }
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required
/// members, sorted, without whitespace (section 3.2), base64url.
private func rfc7638Thumbprint(_ jwk: JSONObject) throws -> String {
    let required: [String] =
        switch jwk["kty"]?.stringValue {
        case "RSA": ["e", "kty", "n"]
        case "EC": ["crv", "kty", "x", "y"]
        case "OKP": ["crv", "kty", "x"]
        default: throw HarnessError("unexpected kty in \(jwk.keys)")
        }
    let members = try required.map { name in
        guard let value = jwk[name]?.stringValue else { throw HarnessError("JWK without \(name)") }
        return "\"\(name)\":\"\(value)\""
    }
    return Base64URL.encode(Digest.sha256(Array("{\(members.joined(separator: ","))}".utf8)))
}
