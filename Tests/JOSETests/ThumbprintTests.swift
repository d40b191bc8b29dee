import JOSE
import JSON
import Testing

@Suite("RFC 7638 thumbprints of symmetric keys")
struct ThumbprintTests {
    @Test("published oct-key thumbprint")
    func publishedVector() throws {
        let vector = try Vectors.load("oct-jwk-thumbprint")
        let secret = try #require(vector["secret"]?.arrayValue).map { value in
            try #require(value.numberValue.flatMap { UInt8(exactly: $0) })
        }
        #expect(SigningKey.thumbprint(ofSymmetricSecret: secret) == (try vector.string("thumbprint")))
    }

    @Test("matches the definition: SHA-256 of the required members, sorted, no whitespace")
    func definition() throws {
        let vector = try Vectors.load("oct-jwk-thumbprint")
        let secret = try #require(vector["secret"]?.arrayValue).map { value in
            try #require(value.numberValue.flatMap { UInt8(exactly: $0) })
        }
        // Build the canonical JWK with the JSON module (members written in
        // the order given, which is lexicographic here).
        let jwk: JSONObject = ["k": .string(Base64URL.encode(secret)), "kty": "oct"]
        let canonical = JSONValue.object(jwk).serializedString
        #expect(canonical == (try vector.string("canonicalJWK")))
        let expected = Base64URL.encode(Digest.sha256(Array(canonical.utf8)))
        #expect(SigningKey.thumbprint(ofSymmetricSecret: secret) == expected)
    }

    @Test("is the default kid")
    func defaultKid() throws {
        let secret = SecureRandom.bytes(32)
        let key = try SigningKey.hmac(secret: secret)
        #expect(key.kid == SigningKey.thumbprint(ofSymmetricSecret: secret))
        #expect(key.kid.utf8.count == 43)
        #expect(try SigningKey.hmac(secret: secret, kid: "chosen").kid == "chosen")
    }
}
