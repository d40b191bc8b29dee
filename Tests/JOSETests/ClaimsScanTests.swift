import JOSE
import JSON
import Testing

/// The verifier reads the registered claims by scanning the payload instead
/// of building the claims object; what it accepts, refuses and returns must
/// be what the built object would give.
@Suite("Claims read without building the claims set")
struct ClaimsScanTests {
    private func verify(
        payload: String, header: String = #"{"alg":"HS256","typ":"JWT","kid":"test-key"}"#,
        policy: VerificationPolicy = VerificationPolicy()
    ) throws -> VerifiedToken {
        let forge = try TokenForge()
        let token = try forge.token(header: header, payload: payload)
        return try JWTVerifier(keyRing: forge.ring, policy: policy).verify(token, now: TokenForge.now)
    }

    private func refusal(
        payload: String, policy: VerificationPolicy = VerificationPolicy()
    ) throws -> JOSEError.Code? {
        do {
            _ = try verify(payload: payload, policy: policy)
            return nil
        } catch let error as JOSEError {
            return error.code
        }
    }

    @Test("a Gatehouse access token: accessors, and claims built on request")
    func gatehouseToken() throws {
        let payload =
            #"{"iss":"gatehouse","sub":"3f1c2a9e-7b41-4c55-9d1e-2b7a6c0f8e12","user":"alice","iat":1700000000,"#
            + #""exp":1700000900,"jti":"Y_MRkVO7Y5eVRDmqbtPZ3g","sid":"fyZRxBkX8Wl8WLSNAcOjRg"}"#
        let verified = try verify(payload: payload, policy: VerificationPolicy(issuer: "gatehouse"))
        #expect(verified.subject == "3f1c2a9e-7b41-4c55-9d1e-2b7a6c0f8e12")
        #expect(verified.username == "alice")
        #expect(verified.tokenID == "Y_MRkVO7Y5eVRDmqbtPZ3g")
        #expect(verified.sessionID == "fyZRxBkX8Wl8WLSNAcOjRg")
        #expect(verified.issuer == "gatehouse")
        #expect(verified.issuedAt == 1_700_000_000)
        #expect(verified.notBefore == nil)
        #expect(verified.expiresAt == 1_700_000_900)
        #expect(verified.keyID == "test-key")
        #expect(verified.claims == (try JSONValue.parse(payload).objectValue))
        #expect(verified.claims.keys == ["iss", "sub", "user", "iat", "exp", "jti", "sid"])
    }

    @Test("one claim read on its own is what the built claims set holds")
    func oneClaim() throws {
        let payload =
            #"{"iss":"gatehouse","exp":1700000900,"roles":["admin","ops:read"],"#
            + #""app_metadata":{"plan":"pro","seats":[1,2]},"r\u006fles2":"x","caf\u00e9":1}"#
        let verified = try verify(payload: payload)
        let claims = verified.claims
        for name in ["roles", "app_metadata", "iss", "exp", "roles2", "café"] {
            #expect(verified.claim(name) == claims[name], "\(name)")
            #expect(verified.claim(name) != nil, "\(name)")
        }
        #expect(verified.claim("role") == nil)
        #expect(verified.claim("rolesX") == nil)
        #expect(verified.claim("") == nil)
        #expect(verified.claim("roles")?.arrayValue?.compactMap(\.stringValue) == ["admin", "ops:read"])
    }

    @Test("claim names and values written with escapes or in other normal forms are the same claims")
    func escapedClaims() throws {
        let verified = try verify(
            payload: #"{"\u0065xp":1700000600,"s\u0075b":"a\"b\u00e9\\","us\u0065r":"zo\u00eb","n\u0062f":1699999000,"#
                + #""\u0069at":1.7e9,"iss":"gate\u0068ouse","sid":"s\/1","jti":"\ud83d\ude00"}"#,
            policy: VerificationPolicy(issuer: "gatehouse"))
        #expect(verified.expiresAt == 1_700_000_600)
        #expect(verified.subject == "a\"bé\\")
        #expect(verified.username == "zoë")
        #expect(verified.notBefore == 1_699_999_000)
        #expect(verified.issuedAt == 1_700_000_000)
        #expect(verified.issuer == "gatehouse")
        #expect(verified.sessionID == "s/1")
        #expect(verified.tokenID == "😀")

        // An escaped exp in the past is still exp.
        #expect(try refusal(payload: #"{"\u0065xp":1699999000}"#) == .expired)
        // And written twice, once escaped, it is a duplicate.
        #expect(try refusal(payload: #"{"exp":1700000600,"\u0065xp":1700000600}"#) == .malformed)
        #expect(try refusal(payload: #"{"sub":"a","s\u0075b":"b","exp":1700000600}"#) == .malformed)
    }

    @Test("issuer and audience compare as String ==, whatever the normal form or escapes")
    func nonASCIIIssuer() throws {
        let policy = VerificationPolicy(issuer: "gåtehouse", audience: "é-api")
        let accepted = [
            #"{"exp":1700000600,"iss":"gåtehouse","aud":"é-api"}"#,
            #"{"exp":1700000600,"iss":"g\u00e5tehouse","aud":"e\u0301-api"}"#,
            #"{"exp":1700000600,"iss":"ga\u030atehouse","aud":["x","\u00e9-api"]}"#,
        ]
        for payload in accepted {
            #expect(try verify(payload: payload, policy: policy).issuer?.unicodeScalars.first == "g")
        }
        let wrongIssuer = #"{"exp":1700000600,"iss":"gatehouse","aud":"é-api"}"#
        #expect(try refusal(payload: wrongIssuer, policy: policy) == .wrongIssuer)
        let wrongAudience = #"{"exp":1700000600,"iss":"gåtehouse","aud":"e-api"}"#
        #expect(try refusal(payload: wrongAudience, policy: policy) == .wrongAudience)
        // ASCII policy, claim with escapes; and near misses.
        let gatehouse = VerificationPolicy(issuer: "gatehouse")
        let escaped = #"{"exp":1700000600,"iss":"\u0067atehouse"}"#
        #expect(try verify(payload: escaped, policy: gatehouse).issuer == "gatehouse")
        #expect(try refusal(payload: #"{"exp":1700000600,"iss":"gatehousE"}"#, policy: gatehouse) == .wrongIssuer)
        #expect(try refusal(payload: #"{"exp":1700000600,"iss":"gatehouse "}"#, policy: gatehouse) == .wrongIssuer)
        #expect(try refusal(payload: #"{"exp":1700000600,"iss":"gatehous"}"#, policy: gatehouse) == .wrongIssuer)
    }

    @Test("accessors give nil for a claim of another type, as the claims object would")
    func wrongTypes() throws {
        let verified = try verify(
            payload: #"{"exp":1700000600,"sub":1,"sid":null,"user":["alice"],"jti":{"a":1},"iss":true}"#)
        #expect(verified.subject == nil)
        #expect(verified.sessionID == nil)
        #expect(verified.username == nil)
        #expect(verified.tokenID == nil)
        #expect(verified.issuer == nil)
        #expect(verified.claims["sub"] == 1)
        #expect(verified.claims["user"] == ["alice"])
    }

    @Test(
        "the payload is still checked as strictly as the parser checks",
        arguments: [
            #"{"exp":1700000600,"x":01}"#,
            #"{"exp":1700000600,"x":"\ud800"}"#,
            #"{"exp":1700000600,"x":[1,]}"#,
            #"{"exp":1700000600,"x":{"a":1,"a":2}}"#,
            #"{"exp":1700000600} "# + "x",
            #"{"exp":1700000600,"x":1e400}"#,
            #"{"exp":1700000600,"x":NaN}"#,
            #"{"exp":1700000600"#,
            "{\"exp\":1700000600,\"x\":\"a\u{1}b\"}",
            String(repeating: "[", count: 70) + String(repeating: "]", count: 70),
            #"{"exp":1700000600,"x":"# + String(repeating: "[", count: 64) + String(repeating: "]", count: 64) + "}",
        ])
    func strictPayload(_ payload: String) throws {
        #expect(try refusal(payload: payload) == .malformed)
    }

    @Test("invalid UTF-8 anywhere in the payload is refused")
    func invalidUTF8Payload() throws {
        let forge = try TokenForge()
        let verifier = JWTVerifier(keyRing: forge.ring, policy: VerificationPolicy())
        for bad: [UInt8] in [[0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80]] {
            let payload = Array(#"{"exp":1700000600,"sub":"ab"#.utf8) + bad + Array(#"cd"}"#.utf8)
            let header = Base64URL.encode(Array(#"{"alg":"HS256","kid":"test-key"}"#.utf8))
            let input = header + "." + Base64URL.encode(payload)
            let key = try HMACKey(secret: TokenForge.secret, algorithm: .hs256)
            let mac = key.authenticationCode(for: Array(input.utf8))
            #expect(throws: JOSEError.malformed("token payload is not a JSON object")) {
                try verifier.verify(input + "." + Base64URL.encode(mac), now: TokenForge.now)
            }
        }
    }

    @Test("time claims keep their order of checks, and numbers of every spelling count")
    func timeClaims() throws {
        #expect(try refusal(payload: #"{"exp":"soon","nbf":"x"}"#) == .invalidClaim)
        #expect(try refusal(payload: #"{"exp":1,"nbf":"x"}"#) == .invalidClaim)
        #expect(try refusal(payload: #"{"exp":1,"iat":"x"}"#) == .invalidClaim)
        #expect(try refusal(payload: #"{"exp":1}"#) == .expired)
        #expect(try refusal(payload: #"{"exp":17.0000006e8}"#) == nil)
        #expect(try refusal(payload: #"{"exp":1700000600.0,"nbf":-0,"iat":0}"#) == nil)
        #expect(try refusal(payload: #"{"exp":1.7000006E9}"#) == nil)
        #expect(try refusal(payload: #"{"exp":1e400}"#) == .malformed)
    }

    @Test("a signature of any length: malformed if it is not base64url, else a bad signature")
    func signatureLengths() throws {
        let forge = try TokenForge()
        let verifier = JWTVerifier(keyRing: forge.ring, policy: VerificationPolicy())
        let parts = forge.parts(of: try forge.token())
        for length in [2, 3, 42, 43, 44, 86, 87, 88, 200] {
            let signature = String(repeating: "A", count: length)
            let expected: JOSEError.Code = length % 4 == 1 ? .malformed : .badSignature
            do {
                _ = try verifier.verify(parts[0] + "." + parts[1] + "." + signature, now: TokenForge.now)
                Issue.record("accepted a signature of \(length) characters")
            } catch {
                #expect(error.code == expected, "\(length): \(error)")
            }
            // A character outside the alphabet makes it malformed, whatever the length.
            do {
                let foreign = parts[0] + "." + parts[1] + "." + signature.dropLast() + "*"
                _ = try verifier.verify(foreign, now: TokenForge.now)
                Issue.record("accepted")
            } catch {
                #expect(error.code == .malformed, "\(length): \(error)")
            }
        }
    }
}
