import JOSE
import JSON
import Testing

@Suite("Sign then verify")
struct SignVerifyTests {
    static let now: Double = 1_700_000_000

    static func claims(expiresIn seconds: Double = 900) -> JSONObject {
        [
            "sub": "42",
            "sid": "session-7",
            "user": "alice",
            "jti": "token-1",
            "iat": .number(now),
            "exp": .number(now + seconds),
        ]
    }

    /// A new signing key for `algorithm` (a shared generated one for the public-key algorithms).
    static func signingKey(_ algorithm: JWSAlgorithm, kid: String? = nil) throws -> SigningKey {
        if algorithm.isSymmetric {
            return try SigningKey.hmac(secret: SecureRandom.bytes(algorithm.macLength), algorithm: algorithm, kid: kid)
        }
        return SigningKey.asymmetric(try TestKeys.generated(algorithm), kid: kid)
    }

    /// The length of a signature by `key`.
    static func signatureLength(_ key: SigningKey) -> Int {
        key.asymmetricKey?.signatureLength ?? key.algorithm.macLength
    }

    @Test("round trip", arguments: JWSAlgorithm.allCases)
    func roundTrip(algorithm: JWSAlgorithm) throws {
        let key = try Self.signingKey(algorithm)
        let ring = KeyRing(signingKey: key)
        let token = JWTSigner(keyRing: ring).sign(Self.claims())
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        try #require(parts.count == 3)
        let headerText = String(decoding: try #require(Base64URL.decode(parts[0])), as: UTF8.self)
        #expect(headerText == #"{"alg":"\#(algorithm.rawValue)","typ":"JWT","kid":"\#(key.kid)"}"#)
        #expect(try #require(Base64URL.decode(parts[2])).count == Self.signatureLength(key))

        let verified = try JWTVerifier(keyRing: ring, policy: VerificationPolicy()).verify(token, now: Self.now)
        #expect(verified.claims == Self.claims())
        #expect(verified.subject == "42")
        #expect(verified.sessionID == "session-7")
        #expect(verified.username == "alice")
        #expect(verified.tokenID == "token-1")
        #expect(verified.issuedAt == Self.now)
        #expect(verified.expiresAt == Self.now + 900)
        #expect(verified.keyID == key.kid)
        #expect(verified.header == ["alg": .string(algorithm.rawValue), "typ": "JWT", "kid": .string(key.kid)])
        // The header the verifier recognises by its bytes is the one parsing would give.
        #expect(verified.header == (try JSONValue.parse(Base64URL.decode(parts[0]) ?? []).objectValue))
    }

    @Test("accepts a Substring and a UTF-8 buffer")
    func otherInputs() throws {
        let key = try SigningKey.hmac(secret: SecureRandom.bytes(32))
        let ring = KeyRing(signingKey: key)
        let token = JWTSigner(keyRing: ring).sign(Self.claims())
        let verifier = JWTVerifier(keyRing: ring, policy: VerificationPolicy())
        let header = "Bearer " + token
        let fromSubstring = try verifier.verify(header.dropFirst(7), now: Self.now)
        #expect(fromSubstring.subject == "42")
        let bytes = Array(token.utf8)
        let fromBuffer = try bytes.withUnsafeBufferPointer { (buffer) throws(JOSEError) in
            try verifier.verify(utf8: buffer, now: Self.now)
        }
        #expect(fromBuffer.claims == fromSubstring.claims)
    }

    @Test("tampering is refused", arguments: JWSAlgorithm.allCases)
    func tampering(algorithm: JWSAlgorithm) throws {
        let key = try Self.signingKey(algorithm, kid: "k1")
        let ring = KeyRing(signingKey: key)
        let verifier = JWTVerifier(keyRing: ring, policy: VerificationPolicy())
        let token = JWTSigner(keyRing: ring).sign(Self.claims())
        let parts = token.split(separator: ".").map(String.init)

        // Payload: a longer life, same signature.
        let payload = Base64URL.encode(JSONValue.object(Self.claims(expiresIn: 86_400)).serialized())
        #expect(throws: JOSEError.badSignature()) {
            try verifier.verify([parts[0], payload, parts[2]].joined(separator: "."), now: Self.now)
        }
        // Header: same alg and kid, one more member.
        let header = Base64URL.encode(
            Array(#"{"alg":"\#(algorithm.rawValue)","typ":"JWT","kid":"k1","x":1}"#.utf8))
        #expect(throws: JOSEError.badSignature()) {
            try verifier.verify([header, parts[1], parts[2]].joined(separator: "."), now: Self.now)
        }
        // Signature: first character changed (the last one also holds padding bits).
        var signature = Array(parts[2].utf8)
        signature[0] = signature[0] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let forged = [parts[0], parts[1], String(decoding: signature, as: UTF8.self)].joined(separator: ".")
        #expect(throws: JOSEError.badSignature()) { try verifier.verify(forged, now: Self.now) }
        // And the untouched token still passes.
        #expect(try verifier.verify(token, now: Self.now).subject == "42")
    }

    @Test("key rotation across algorithms: HS256 to ES256 to EdDSA, the retired keys public only")
    func rotationAcrossAlgorithms() throws {
        let hmac = try SigningKey.hmac(secret: SecureRandom.bytes(32), kid: "2024")
        let ec = try TestKeys.generated(.es256)
        let ed = try TestKeys.generated(.edDSA)
        let hmacToken = JWTSigner(keyRing: KeyRing(signingKey: hmac)).sign(Self.claims())
        let ecToken = JWTSigner(keyRing: KeyRing(signingKey: .asymmetric(ec, kid: "2025"))).sign(Self.claims())
        let ring = KeyRing(
            signingKey: .asymmetric(ed, kid: "2026"),
            additionalVerificationKeys: [.asymmetric(try TestKeys.publicOnly(ec), kid: "2025"), hmac])
        let verifier = JWTVerifier(keyRing: ring, policy: VerificationPolicy(), signatureCacheCapacity: 64)
        #expect(try verifier.verify(hmacToken, now: Self.now).keyID == "2024")
        #expect(try verifier.verify(ecToken, now: Self.now).keyID == "2025")
        let edToken = JWTSigner(keyRing: ring).sign(Self.claims())
        #expect(try verifier.verify(edToken, now: Self.now).header["alg"] == "EdDSA")
        #expect(ring.jwks["keys"]?.arrayValue?.count == 2)
    }

    @Test("key rotation: old keys verify by kid, new tokens use the signing key")
    func rotation() throws {
        let old = try SigningKey.hmac(secret: SecureRandom.bytes(32), kid: "2025")
        let new = try SigningKey.hmac(secret: SecureRandom.bytes(32), algorithm: .hs512, kid: "2026")
        let oldToken = JWTSigner(keyRing: KeyRing(signingKey: old)).sign(Self.claims())
        let rotated = KeyRing(signingKey: new, additionalVerificationKeys: [old])
        #expect(rotated.signingKey.kid == "2026")
        #expect(rotated.key(withID: "2025")?.algorithm == .hs256)
        #expect(rotated.key(withID: "2024") == nil)

        let verifier = JWTVerifier(keyRing: rotated, policy: VerificationPolicy())
        #expect(try verifier.verify(oldToken, now: Self.now).keyID == "2025")
        let newToken = JWTSigner(keyRing: rotated).sign(Self.claims())
        #expect(try verifier.verify(newToken, now: Self.now).keyID == "2026")

        let retired = JWTVerifier(keyRing: KeyRing(signingKey: new), policy: VerificationPolicy())
        #expect(throws: JOSEError.unknownKey()) { try retired.verify(oldToken, now: Self.now) }
    }

    @Test("a duplicate kid in the ring does not shadow the signing key")
    func duplicateKid() throws {
        let first = try SigningKey.hmac(secret: SecureRandom.bytes(32), kid: "same")
        let second = try SigningKey.hmac(secret: SecureRandom.bytes(32), kid: "same")
        let ring = KeyRing(signingKey: first, additionalVerificationKeys: [second])
        let verifier = JWTVerifier(keyRing: ring, policy: VerificationPolicy())
        let fromSecond = JWTSigner(keyRing: KeyRing(signingKey: second)).sign(Self.claims())
        #expect(throws: JOSEError.badSignature()) { try verifier.verify(fromSecond, now: Self.now) }
        #expect(try verifier.verify(JWTSigner(keyRing: ring).sign(Self.claims()), now: Self.now).subject == "42")
    }
}
