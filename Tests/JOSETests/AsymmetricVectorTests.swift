import JOSE
import JSON
import Testing

/// Known answers for RS256, ES256 and EdDSA from the RFCs (files in `Vectors/`).
@Suite("RFC 7515, 7638 and 8037 asymmetric known answers")
struct AsymmetricVectorTests {
    /// One JWS example: its key, signing input, signature and compact form.
    struct Example {
        let key: AsymmetricKey
        let signingInput: [UInt8]
        let signature: [UInt8]
        let compact: String
        let protectedHeader: String
        let payload: String
        let signatureText: String

        init(_ name: String, source: String, jwkMember: String = "jwk", algorithm: JWSAlgorithm) throws {
            let object = try Vectors.load(name)
            #expect(try object.string("source").hasPrefix(source))
            let jwk = try #require(object[jwkMember]?.objectValue)
            key = try AsymmetricKey(jwk: jwk)
            #expect(key.algorithm == algorithm)
            signingInput = Array(try object.string("signingInput").utf8)
            signatureText = try object.string("signature")
            signature = try #require(Base64URL.decode(signatureText))
            compact = try object.string("compact")
            protectedHeader = try object.string("protectedHeader")
            payload = try object.string("payload")
            #expect(
                object["signingInput"]?.stringValue
                    == Base64URL.encode(Array(protectedHeader.utf8)) + "." + Base64URL.encode(Array(payload.utf8)))
            #expect(compact == String(decoding: signingInput, as: UTF8.self) + "." + signatureText)
        }
    }

    static let a1Payload = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"

    @Test("RFC 7515 A.2 (RS256): the signature verifies, and signing the input again reproduces it")
    func rs256() throws {
        let example = try Example("rfc7515-a2-rs256", source: "RFC 7515, Appendix A.2", algorithm: .rs256)
        #expect(example.payload == Self.a1Payload)
        #expect(example.key.hasPrivateKey)
        #expect(example.key.signatureLength == 256)
        #expect(example.key.isValidSignature(example.signature, for: example.signingInput))
        // PKCS#1 v1.5 is deterministic.
        #expect(try example.key.signature(for: example.signingInput) == example.signature)
        // The public half alone verifies too.
        let publicKey = try AsymmetricKey(jwk: example.key.publicJWK)
        #expect(!publicKey.hasPrivateKey)
        #expect(publicKey.isValidSignature(example.signature, for: example.signingInput))
        var other = example.signingInput
        other[other.count - 1] ^= 1
        #expect(!publicKey.isValidSignature(example.signature, for: other))
    }

    @Test("RFC 7515 A.3 (ES256): the R || S signature verifies; a fresh one round-trips")
    func es256() throws {
        let example = try Example("rfc7515-a3-es256", source: "RFC 7515, Appendix A.3", algorithm: .es256)
        #expect(example.signature.count == 64)
        #expect(example.key.isValidSignature(example.signature, for: example.signingInput))
        // ECDSA is randomised: a new signature differs, and verifies.
        let fresh = try example.key.signature(for: example.signingInput)
        #expect(fresh.count == 64)
        #expect(fresh != example.signature)
        #expect(example.key.isValidSignature(fresh, for: example.signingInput))
        // The same signature in DER form is refused.
        #expect(!example.key.isValidSignature(derECDSASignature(example.signature), for: example.signingInput))
        // The published JWK has exactly the example's public members.
        let jwk = try #require(Vectors.load("rfc7515-a3-es256")["jwk"]?.objectValue)
        let x = try #require(jwk["x"])
        let y = try #require(jwk["y"])
        #expect(example.key.publicJWK == ["kty": "EC", "crv": "P-256", "x": x, "y": y])
    }

    @Test("RFC 7515 A.2 and A.3 compact tokens pass JWTVerifier before their exp (no kid: the signing key)")
    func compactTokens() throws {
        for (name, algorithm) in [("rfc7515-a2-rs256", JWSAlgorithm.rs256), ("rfc7515-a3-es256", .es256)] {
            let example = try Example(name, source: "RFC 7515", algorithm: algorithm)
            let ring = KeyRing(signingKey: .asymmetric(example.key))
            let verifier = JWTVerifier(keyRing: ring, policy: VerificationPolicy(issuer: "joe"))
            let token = try verifier.verify(example.compact, now: 1_300_819_000)
            #expect(token.header["alg"] == .string(algorithm.rawValue))
            #expect(token.claims["http://example.com/is_root"] == true)
            #expect(token.expiresAt == 1_300_819_380)
            #expect(throws: JOSEError.expired()) { try verifier.verify(example.compact, now: 1_300_819_380 + 31) }
        }
    }

    @Test("RFC 8037 A.1-A.5 (Ed25519): key, public key, thumbprint, deterministic signature, verification")
    func ed25519() throws {
        let vector = try Vectors.load("rfc8037-ed25519")
        #expect(try vector.string("source").hasPrefix("RFC 8037, Appendix A"))
        let example = try Example(
            "rfc8037-ed25519", source: "RFC 8037", jwkMember: "privateJWK", algorithm: .edDSA)
        // A.2: the public key.
        let publicJWK = try #require(vector["publicJWK"]?.objectValue)
        #expect(example.key.publicJWK == publicJWK)
        // A.3: the thumbprint, and the text it hashes.
        #expect(example.key.thumbprint == (try vector.string("thumbprint")))
        let input = try vector.string("thumbprintInput")
        #expect(hex(Digest.sha256(Array(input.utf8))) == (try vector.string("thumbprintSHA256Hex")))
        #expect(Base64URL.encode(Digest.sha256(Array(input.utf8))) == example.key.thumbprint)
        #expect(example.payload == "Example of Ed25519 signing")
        // A.4: Ed25519 is deterministic.
        #expect(try example.key.signature(for: example.signingInput) == example.signature)
        // A.5: verification, with the private key and with the public key alone.
        #expect(example.key.isValidSignature(example.signature, for: example.signingInput))
        let publicKey = try AsymmetricKey(jwk: publicJWK)
        #expect(!publicKey.hasPrivateKey)
        #expect(publicKey.thumbprint == example.key.thumbprint)
        #expect(publicKey.isValidSignature(example.signature, for: example.signingInput))
        var forged = example.signature
        forged[7] ^= 1
        #expect(!publicKey.isValidSignature(forged, for: example.signingInput))
    }

    @Test("RFC 7638 section 3.1: the RSA key's thumbprint")
    func rfc7638Thumbprint() throws {
        let vector = try Vectors.load("rfc7638-rsa-thumbprint")
        #expect(try vector.string("source") == "RFC 7638, Section 3.1")
        let jwk = try #require(vector["jwk"]?.objectValue)
        let key = try AsymmetricKey(jwk: jwk)
        #expect(key.algorithm == .rs256)
        #expect(!key.hasPrivateKey)
        #expect(key.thumbprint == (try vector.string("thumbprint")))
        // The definition: SHA-256 of the required members, sorted, no whitespace.
        let canonical = try vector.string("canonicalJWK")
        #expect(Base64URL.encode(Digest.sha256(Array(canonical.utf8))) == key.thumbprint)
        // Only the public members are kept (not the JWK's alg or kid).
        let n = try #require(jwk["n"])
        #expect(key.publicJWK == ["kty": "RSA", "n": n, "e": "AQAB"])
        // The default kid of a SigningKey is the thumbprint.
        #expect(SigningKey.asymmetric(key).kid == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    }

    @Test("the RFC 7515 A.2 and A.3 keys read from PEM are the keys the JWKs give")
    func pemMatchesJWK() throws {
        let rsa = try TestKeys.rfc(.rs256)
        let ec = try TestKeys.rfc(.es256)
        for name in ["rsaA2PKCS8", "rsaA2Traditional", "rsaA2Public"] {
            let key = try AsymmetricKey(pem: TestKeys.pem(name), algorithm: .rs256)
            #expect(key.thumbprint == rsa.thumbprint, "\(name)")
            #expect(key.publicJWK == rsa.publicJWK, "\(name)")
            #expect(key.hasPrivateKey == !name.hasSuffix("Public"), "\(name)")
        }
        for name in ["ecA3PKCS8", "ecA3TraditionalWithParameters", "ecA3Public"] {
            let key = try AsymmetricKey(pem: TestKeys.pem(name), algorithm: .es256)
            #expect(key.thumbprint == ec.thumbprint, "\(name)")
            #expect(key.publicJWK == ec.publicJWK, "\(name)")
        }
    }
}
