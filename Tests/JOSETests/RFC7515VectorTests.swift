import JOSE
import JSON
import Testing

@Suite("RFC 7515 Appendix A.1 (HS256)")
struct RFC7515VectorTests {
    struct Vector {
        let secret: [UInt8]
        let signingInput: String
        let signature: String
        let compact: String
        let protectedHeader: String
        let payload: String

        init() throws {
            let object = try Vectors.load("rfc7515-a1-hs256")
            #expect(try object.string("source") == "RFC 7515, Appendix A.1")
            let jwk = try #require(object["jwk"]?.objectValue)
            #expect(try jwk.string("kty") == "oct")
            secret = try #require(Base64URL.decode(try jwk.string("k")))
            signingInput = try object.string("signingInput")
            signature = try object.string("signature")
            compact = try object.string("compact")
            protectedHeader = try object.string("protectedHeader")
            payload = try object.string("payload")
        }
    }

    @Test("the parts encode the header and payload texts")
    func encoding() throws {
        let vector = try Vector()
        #expect(
            vector.signingInput
                == Base64URL.encode(Array(vector.protectedHeader.utf8)) + "."
                + Base64URL.encode(Array(vector.payload.utf8)))
        #expect(vector.compact == vector.signingInput + "." + vector.signature)
    }

    @Test("HMAC of the signing input is the signature")
    func knownAnswer() throws {
        let vector = try Vector()
        let key = try HMACKey(secret: vector.secret, algorithm: .hs256)
        let mac = key.authenticationCode(for: Array(vector.signingInput.utf8))
        #expect(Base64URL.encode(mac) == vector.signature)
        #expect(constantTimeEquals(mac, try #require(Base64URL.decode(vector.signature))))
    }

    @Test("the compact JWS verifies before its exp, with the ring's signing key (no kid)")
    func verifies() throws {
        let vector = try Vector()
        let key = try SigningKey.hmac(secret: vector.secret, algorithm: .hs256)
        let verifier = JWTVerifier(keyRing: KeyRing(signingKey: key), policy: VerificationPolicy(issuer: "joe"))
        let token = try verifier.verify(vector.compact, now: 1_300_819_000)
        #expect(token.header["typ"] == "JWT")
        #expect(token.header["alg"] == "HS256")
        #expect(token.keyID == nil)
        #expect(token.claims["iss"] == "joe")
        #expect(token.claims["http://example.com/is_root"] == true)
        #expect(token.expiresAt == 1_300_819_380)
        #expect(token.issuer == "joe")
    }

    @Test("and is refused once expired, and under another key")
    func refusals() throws {
        let vector = try Vector()
        let key = try SigningKey.hmac(secret: vector.secret, algorithm: .hs256)
        let verifier = JWTVerifier(keyRing: KeyRing(signingKey: key), policy: VerificationPolicy())
        #expect(throws: JOSEError.expired()) { try verifier.verify(vector.compact, now: 1_300_819_380 + 31) }
        let other = try SigningKey.hmac(secret: SecureRandom.bytes(64), algorithm: .hs256)
        let stranger = JWTVerifier(keyRing: KeyRing(signingKey: other), policy: VerificationPolicy())
        #expect(throws: JOSEError.badSignature()) { try stranger.verify(vector.compact, now: 1_300_819_000) }
    }
}
