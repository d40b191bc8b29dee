import JOSE
import JSON
import Testing

@Suite("Asymmetric keys: generation, PEM, JWK, JWK Sets")
struct AsymmetricKeyTests {
    static let algorithms = TestKeys.asymmetricAlgorithms

    /// The RFC 7638 thumbprint of `jwk`, computed here from its definition.
    static func thumbprint(of jwk: JSONObject) throws -> String {
        let required: [String]
        switch jwk["kty"]?.stringValue {
        case "RSA": required = ["e", "kty", "n"]
        case "EC": required = ["crv", "kty", "x", "y"]
        default: required = ["crv", "kty", "x"]
        }
        let members = try required.map { name in (name, try #require(jwk[name])) }
        let canonical = JSONValue.object(JSONObject(members)).serialized()
        return Base64URL.encode(Digest.sha256(canonical))
    }

    @Test("generate: a private key of the algorithm's type that signs and verifies", arguments: algorithms)
    func generate(algorithm: JWSAlgorithm) throws {
        let key = try TestKeys.generated(algorithm)
        #expect(key.algorithm == algorithm)
        #expect(key.hasPrivateKey)
        let message = Array("a message".utf8)
        let signature = try key.signature(for: message)
        #expect(signature.count == key.signatureLength)
        #expect(key.signatureLength == (algorithm == .rs256 ? 256 : 64))
        #expect(key.isValidSignature(signature, for: message))
        #expect(!key.isValidSignature(signature, for: message + [0]))
        // An empty message is a message too.
        #expect(key.isValidSignature(try key.signature(for: []), for: []))
        // The thumbprint is the RFC 7638 one of the public JWK.
        #expect(key.thumbprint == (try Self.thumbprint(of: key.publicJWK)))
        #expect(key.thumbprint.utf8.count == 43)
        switch algorithm {
        case .rs256:
            #expect(key.publicJWK.keys == ["kty", "n", "e"])
            #expect(key.publicJWK["e"] == "AQAB")
            #expect(Base64URL.decode(key.publicJWK["n"]?.stringValue ?? "")?.count == 256)
        case .es256:
            #expect(key.publicJWK.keys == ["kty", "crv", "x", "y"])
            #expect(key.publicJWK["crv"] == "P-256")
        default:
            #expect(key.publicJWK.keys == ["kty", "crv", "x"])
            #expect(key.publicJWK["crv"] == "Ed25519")
            #expect(Base64URL.decode(key.publicJWK["x"]?.stringValue ?? "")?.count == 32)
        }
        // Two generated keys differ (RSA left out: making one takes a while).
        if algorithm != .rs256 {
            #expect(try AsymmetricKey.generate(for: algorithm).thumbprint != key.thumbprint)
        }
    }

    @Test("generate refuses HMAC algorithms", arguments: [JWSAlgorithm.hs256, .hs384, .hs512])
    func generateHMAC(algorithm: JWSAlgorithm) {
        #expect(throws: JOSEError.self) { try AsymmetricKey.generate(for: algorithm) }
    }

    @Test("PEM round trip: PKCS#8 private and SPKI public keys", arguments: algorithms)
    func pemRoundTrip(algorithm: JWSAlgorithm) throws {
        let key = try TestKeys.generated(algorithm)
        let privatePEM = try key.privateKeyPEM()
        #expect(privatePEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(privatePEM.hasSuffix("-----END PRIVATE KEY-----\n"))
        let publicPEM = try key.publicKeyPEM()
        #expect(publicPEM.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        #expect(!publicPEM.contains("PRIVATE"))

        let reread = try AsymmetricKey(pem: privatePEM, algorithm: algorithm)
        #expect(reread.hasPrivateKey)
        #expect(reread.thumbprint == key.thumbprint)
        #expect(reread.publicJWK == key.publicJWK)
        #expect(try reread.privateKeyPEM() == privatePEM)

        let publicOnly = try AsymmetricKey(pem: publicPEM, algorithm: algorithm)
        #expect(!publicOnly.hasPrivateKey)
        #expect(publicOnly.thumbprint == key.thumbprint)
        #expect(try publicOnly.publicKeyPEM() == publicPEM)
        // A public key verifies what the private one signed, but cannot sign.
        let message = Array("signed by the private key".utf8)
        #expect(publicOnly.isValidSignature(try reread.signature(for: message), for: message))
        do {
            _ = try publicOnly.privateKeyPEM()
            Issue.record("a public key gave a private PEM")
        } catch {
            #expect(error.code == .invalidKey)
        }
        #expect(throws: JOSEError.self) { try publicOnly.signature(for: message) }
    }

    @Test("JWK round trip: the public JWK reads back as a public key", arguments: algorithms)
    func jwkRoundTrip(algorithm: JWSAlgorithm) throws {
        let key = try TestKeys.generated(algorithm)
        let publicKey = try AsymmetricKey(jwk: key.publicJWK)
        #expect(publicKey.algorithm == algorithm)
        #expect(!publicKey.hasPrivateKey)
        #expect(publicKey.publicJWK == key.publicJWK)
        #expect(publicKey.thumbprint == key.thumbprint)
        let message = Array("jwk".utf8)
        #expect(publicKey.isValidSignature(try key.signature(for: message), for: message))
        // With the algorithm given, or named in the JWK, or through a SigningKey's JWK.
        #expect(try AsymmetricKey(jwk: key.publicJWK, algorithm: algorithm).algorithm == algorithm)
        var named = key.publicJWK
        named["alg"] = .string(algorithm.rawValue)
        named["use"] = "sig"
        named["kid"] = "k"
        #expect(try AsymmetricKey(jwk: named).thumbprint == key.thumbprint)
        let published = try #require(SigningKey.asymmetric(key).publicJWK)
        #expect(try AsymmetricKey(jwk: published).thumbprint == key.thumbprint)
    }

    @Test("RFC private JWKs read as private keys, with or without the RSA CRT members")
    func privateJWKs() throws {
        for algorithm in Self.algorithms {
            let key = try TestKeys.rfc(algorithm)
            #expect(key.hasPrivateKey)
            #expect(key.isValidSignature(try key.signature(for: [1, 2, 3]), for: [1, 2, 3]))
        }
        var rsa = try TestKeys.rfcJWK(.rs256)
        for name in ["p", "q", "dp", "dq", "qi"] { rsa[name] = nil }
        let withoutCRT = try AsymmetricKey(jwk: rsa)
        #expect(withoutCRT.hasPrivateKey)
        let vector = try Vectors.load("rfc7515-a2-rs256")
        let signature = try withoutCRT.signature(for: Array(try vector.string("signingInput").utf8))
        #expect(Base64URL.encode(signature) == (try vector.string("signature")))
    }

    @Test("EC coordinates are exactly 32 bytes, left-padded with zeros")
    func ecCoordinatePadding() throws {
        // About one key in 128 has a coordinate under 2^248.
        var padded = 0
        for _ in 0..<1_000 where padded == 0 {
            let key = try AsymmetricKey.generate(for: .es256)
            for name in ["x", "y"] {
                let bytes = try #require(Base64URL.decode(key.publicJWK[name]?.stringValue ?? ""))
                #expect(bytes.count == 32)
                if bytes[0] == 0 {
                    padded += 1
                    // And it reads back as the same key.
                    #expect(try AsymmetricKey(jwk: key.publicJWK).thumbprint == key.thumbprint)
                }
            }
        }
        #expect(padded > 0)
    }

    // MARK: - Refused keys

    struct RefusedPEM: Sendable, CustomTestStringConvertible {
        let fixture: String
        let algorithm: JWSAlgorithm
        let expected: JOSEError.Code
        var testDescription: String { "\(fixture) for \(algorithm.rawValue)" }
    }

    static let refusedPEMs: [RefusedPEM] = [
        RefusedPEM(fixture: "ecA3PKCS8", algorithm: .rs256, expected: .invalidKey),
        RefusedPEM(fixture: "ecA3Public", algorithm: .edDSA, expected: .invalidKey),
        RefusedPEM(fixture: "rsaA2PKCS8", algorithm: .es256, expected: .invalidKey),
        RefusedPEM(fixture: "rsaA2Public", algorithm: .edDSA, expected: .invalidKey),
        RefusedPEM(fixture: "p384", algorithm: .es256, expected: .invalidKey),
        RefusedPEM(fixture: "p384Public", algorithm: .es256, expected: .invalidKey),
        RefusedPEM(fixture: "secp256k1", algorithm: .es256, expected: .invalidKey),
        RefusedPEM(fixture: "x25519", algorithm: .edDSA, expected: .invalidKey),
        RefusedPEM(fixture: "x25519Public", algorithm: .edDSA, expected: .invalidKey),
        RefusedPEM(fixture: "ed448", algorithm: .edDSA, expected: .invalidKey),
        RefusedPEM(fixture: "rsaPSS", algorithm: .rs256, expected: .invalidKey),
        RefusedPEM(fixture: "rsa1024", algorithm: .rs256, expected: .weakKey),
        RefusedPEM(fixture: "rsa1024Public", algorithm: .rs256, expected: .weakKey),
        RefusedPEM(fixture: "rsaExponent3", algorithm: .rs256, expected: .invalidKey),
        RefusedPEM(fixture: "rsaA2Encrypted", algorithm: .rs256, expected: .invalidKey),
        RefusedPEM(fixture: "rsaA2PKCS1Public", algorithm: .rs256, expected: .invalidKey),
        RefusedPEM(fixture: "rsaA2PKCS8", algorithm: .hs256, expected: .invalidKey),
    ]

    @Test("PEM of the wrong type, curve or size is refused", arguments: refusedPEMs)
    func refusedPEM(_ row: RefusedPEM) throws {
        let pem = try TestKeys.pem(row.fixture)
        do {
            let key = try AsymmetricKey(pem: pem, algorithm: row.algorithm)
            Issue.record("accepted as \(key.algorithm.rawValue)")
        } catch {
            #expect(error.code == row.expected, "\(error)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test(
        "garbage is refused as PEM",
        arguments: [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            String(repeating: "A", count: 70_000),
        ])
    func garbagePEM(_ text: String) {
        for algorithm in Self.algorithms {
            do {
                _ = try AsymmetricKey(pem: text, algorithm: algorithm)
                Issue.record("accepted garbage as \(algorithm.rawValue)")
            } catch {
                #expect(error.code == .invalidKey, "\(error)")
            }
        }
    }

    /// A JWK that must be refused, built from an RFC key.
    struct RefusedJWK: Sendable, CustomTestStringConvertible {
        let name: String
        let expected: JOSEError.Code
        let algorithm: JWSAlgorithm?
        let make: @Sendable () throws -> JSONObject
        var testDescription: String { name }

        init(
            _ name: String, _ expected: JOSEError.Code = .invalidKey, algorithm: JWSAlgorithm? = nil,
            _ make: @escaping @Sendable () throws -> JSONObject
        ) {
            self.name = name
            self.expected = expected
            self.algorithm = algorithm
            self.make = make
        }
    }

    static func rfc(_ algorithm: JWSAlgorithm, _ change: (inout JSONObject) throws -> Void) throws -> JSONObject {
        var jwk = try TestKeys.rfcJWK(algorithm)
        try change(&jwk)
        return jwk
    }

    static let refusedJWKs: [RefusedJWK] = [
        RefusedJWK("no kty") { try rfc(.es256) { $0["kty"] = nil } },
        RefusedJWK("kty oct") { ["kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ"] },
        RefusedJWK("kty unknown") { try rfc(.es256) { $0["kty"] = "DSA" } },
        RefusedJWK("EC on P-384") { try rfc(.es256) { $0["crv"] = "P-384" } },
        RefusedJWK("OKP on X25519") { try rfc(.edDSA) { $0["crv"] = "X25519" } },
        RefusedJWK("an RSA JWK for ES256", algorithm: .es256) { try rfc(.rs256) { _ in } },
        RefusedJWK("an EC JWK for RS256", algorithm: .rs256) { try rfc(.es256) { _ in } },
        RefusedJWK("an Ed25519 JWK for ES256", algorithm: .es256) { try rfc(.edDSA) { _ in } },
        RefusedJWK("an EC JWK whose alg is RS256") { try rfc(.es256) { $0["alg"] = "RS256" } },
        RefusedJWK("alg ES256 asked of a JWK that says EdDSA", algorithm: .es256) {
            try rfc(.edDSA) { $0["alg"] = "EdDSA" }
        },
        RefusedJWK("an HMAC algorithm", algorithm: .hs256) { try rfc(.es256) { _ in } },
        RefusedJWK("alg none") { try rfc(.es256) { $0["alg"] = "none" } },
        RefusedJWK("use enc") { try rfc(.es256) { $0["use"] = "enc" } },
        RefusedJWK("x of 31 bytes") {
            try rfc(.es256) { $0["x"] = .string(Base64URL.encode([UInt8](repeating: 1, count: 31))) }
        },
        RefusedJWK("y missing") { try rfc(.es256) { $0["y"] = nil } },
        RefusedJWK("x not base64url") { try rfc(.es256) { $0["x"] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU=" } },
        RefusedJWK("x a number") { try rfc(.edDSA) { $0["x"] = 1 } },
        RefusedJWK("EC point not on the curve") {
            try rfc(.es256) { jwk in
                var y = try #require(Base64URL.decode(jwk["y"]?.stringValue ?? ""))
                y[31] ^= 1
                jwk["y"] = .string(Base64URL.encode(y))
                jwk["d"] = nil
            }
        },
        RefusedJWK("EC d of another key") {
            try rfc(.es256) { $0["d"] = .string(Base64URL.encode([UInt8](repeating: 7, count: 32))) }
        },
        RefusedJWK("Ed25519 x not the public key of d") {
            try rfc(.edDSA) { $0["x"] = .string(Base64URL.encode([UInt8](repeating: 9, count: 32))) }
        },
        RefusedJWK("Ed25519 d of 31 bytes") {
            try rfc(.edDSA) { $0["d"] = .string(Base64URL.encode([UInt8](repeating: 9, count: 31))) }
        },
        RefusedJWK("RSA n with a leading zero byte") {
            try rfc(.rs256) { jwk in
                let n = try #require(Base64URL.decode(jwk["n"]?.stringValue ?? ""))
                jwk["n"] = .string(Base64URL.encode([0] + n))
            }
        },
        RefusedJWK("RSA d of another key") {
            try rfc(.rs256) { jwk in
                var d = try #require(Base64URL.decode(jwk["d"]?.stringValue ?? ""))
                d[10] ^= 1
                jwk["d"] = .string(Base64URL.encode(d))
                for name in ["p", "q", "dp", "dq", "qi"] { jwk[name] = nil }
            }
        },
        RefusedJWK("RSA with some CRT members only") { try rfc(.rs256) { $0["qi"] = nil } },
        RefusedJWK("RSA CRT members without d") { try rfc(.rs256) { $0["d"] = nil } },
        RefusedJWK("RSA multi-prime (oth)") { try rfc(.rs256) { $0["oth"] = [] } },
        RefusedJWK("RSA of 1024 bits", .weakKey) {
            try rfc(.rs256) { jwk in
                let n = try #require(Base64URL.decode(jwk["n"]?.stringValue ?? ""))
                jwk = ["kty": "RSA", "e": "AQAB", "n": .string(Base64URL.encode(Array(n.prefix(128))))]
            }
        },
        RefusedJWK("RSA exponent 1") { try rfc(.rs256) { $0 = ["kty": "RSA", "e": "AQ", "n": $0["n"] ?? .null] } },
    ]

    @Test("malformed or mismatched JWKs are refused", arguments: refusedJWKs)
    func refusedJWK(_ row: RefusedJWK) throws {
        let jwk = try row.make()
        do {
            let key = try AsymmetricKey(jwk: jwk, algorithm: row.algorithm)
            Issue.record("accepted as \(key.algorithm.rawValue)")
        } catch {
            #expect(error.code == row.expected, "\(error)")
        }
    }

    // MARK: - Signing keys, rings and JWK Sets

    @Test("SigningKey.asymmetric: kid defaults to the thumbprint; the published JWK adds kid, alg, use")
    func signingKey() throws {
        for algorithm in Self.algorithms {
            let key = try TestKeys.generated(algorithm)
            let signing = SigningKey.asymmetric(key)
            #expect(signing.kid == key.thumbprint)
            #expect(signing.algorithm == algorithm)
            #expect(!signing.isSymmetric)
            #expect(signing.canSign)
            #expect(signing.asymmetricKey === key)
            let jwk = try #require(signing.publicJWK)
            #expect(jwk["kid"] == .string(key.thumbprint))
            #expect(jwk["alg"] == .string(algorithm.rawValue))
            #expect(jwk["use"] == "sig")
            #expect(SigningKey.asymmetric(key, kid: "chosen").kid == "chosen")
            #expect(!SigningKey.asymmetric(try TestKeys.publicOnly(key)).canSign)
        }
        let hmac = try SigningKey.hmac(secret: SecureRandom.bytes(32))
        #expect(hmac.isSymmetric)
        #expect(hmac.publicJWK == nil)
        #expect(hmac.asymmetricKey == nil)
    }

    @Test("a JWK Set holds every asymmetric key's public JWK, signing key first, and no secret")
    func jwks() throws {
        let rsa = SigningKey.asymmetric(try TestKeys.generated(.rs256))
        let ec = SigningKey.asymmetric(try TestKeys.publicOnly(try TestKeys.generated(.es256)), kid: "old-ec")
        let ed = SigningKey.asymmetric(try TestKeys.rfc(.edDSA))
        let hmac = try SigningKey.hmac(secret: Array("a secret that must never be published".utf8), kid: "hs")
        let ring = KeyRing(signingKey: ed, additionalVerificationKeys: [hmac, rsa, ec])
        #expect(ring.allKeys.map(\.kid) == [ed.kid, "hs", rsa.kid, "old-ec"])

        let set = ring.jwks
        #expect(set.keys == ["keys"])
        let keys = try #require(set["keys"]?.arrayValue).map { try #require($0.objectValue) }
        #expect(keys.map { $0["kid"]?.stringValue } == [ed.kid, rsa.kid, "old-ec"])
        for jwk in keys {
            for secret in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
                #expect(jwk[secret] == nil, "\(secret) published")
            }
            #expect(jwk["use"] == "sig")
            #expect(jwk["alg"]?.stringValue != nil)
            // Each reads back as a public key.
            let key = try AsymmetricKey(jwk: jwk)
            #expect(!key.hasPrivateKey)
        }
        let text = JSONValue.object(set).serializedString
        for secret in [#""d""#, #""p""#, #""q""#, #""dp""#, #""dq""#, #""qi""#, #""k""#] {
            #expect(!text.contains(secret))
        }
        #expect(!text.contains(Base64URL.encode(Array("a secret that must never be published".utf8))))

        let hmacOnly = KeyRing(signingKey: hmac)
        #expect(JSONValue.object(hmacOnly.jwks).serializedString == #"{"keys":[]}"#)
    }

    @Test("one key used from many tasks at once signs and verifies correctly", arguments: [JWSAlgorithm.es256, .edDSA])
    func concurrentUse(algorithm: JWSAlgorithm) async throws {
        let key = try TestKeys.generated(algorithm)
        let messages = (0..<16).map { Array("message \($0)".utf8) }
        let failures = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var bad = 0
                    for round in 0..<60 {
                        let message = messages[(round &+ worker) % messages.count]
                        guard let signature = try? key.signature(for: message) else {
                            bad += 1
                            continue
                        }
                        if !key.isValidSignature(signature, for: message) { bad += 1 }
                        if key.isValidSignature(signature, for: message + [1]) { bad += 1 }
                    }
                    return bad
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
    }

    @Test("signatures of the wrong length, or in DER form, are simply not valid", arguments: algorithms)
    func wrongLengths(algorithm: JWSAlgorithm) throws {
        let key = try TestKeys.generated(algorithm)
        let message = Array("length".utf8)
        let signature = try key.signature(for: message)
        #expect(key.isValidSignature(signature, for: message))
        #expect(!key.isValidSignature([], for: message))
        #expect(!key.isValidSignature(Array(signature.dropLast()), for: message))
        #expect(!key.isValidSignature(signature + [0], for: message))
        #expect(!key.isValidSignature([0] + signature, for: message))
        #expect(!key.isValidSignature(derECDSASignature(signature), for: message))
        #expect(!key.isValidSignature([UInt8](repeating: 0, count: key.signatureLength), for: message))
        #expect(!key.isValidSignature([UInt8](repeating: 0xFF, count: key.signatureLength), for: message))
    }
}
