import JOSE
import JSON
import Testing

/// One crafted token per rule, for each asymmetric algorithm (`AsymmetricForge`).
struct AsymmetricCase: Sendable, CustomTestStringConvertible {
    let name: String
    /// The refusal expected, or `nil` for a token that must pass.
    let expected: JOSEError.Code?
    let make: @Sendable (AsymmetricForge) throws -> String

    var testDescription: String { name }

    init(_ name: String, _ expected: JOSEError.Code?, _ make: @escaping @Sendable (AsymmetricForge) throws -> String) {
        self.name = name
        self.expected = expected
        self.make = make
    }
}

@Suite("Refused tokens: RS256, ES256, EdDSA")
struct AsymmetricRefusalTests {
    static let rows: [AsymmetricCase] = [
        // Accepted
        AsymmetricCase("valid token", nil) { try $0.token() },
        AsymmetricCase("valid token without kid (the signing key)", nil) { try $0.token(header: #"{"alg":"$alg"}"#) },
        AsymmetricCase("signed by JWTSigner", nil) { forge in
            JWTSigner(keyRing: forge.ring).sign(["sub": "user-1", "exp": 1_700_000_600])
        },

        // Signature
        AsymmetricCase("signed by a key of the same type that the ring does not hold", .badSignature) {
            try $0.token(signer: $0.stranger)
        },
        AsymmetricCase("first signature byte changed", .badSignature) { forge in
            try forge.resigned(try forge.token()) { signature in
                var changed = signature
                changed[0] ^= 0x01
                return changed
            }
        },
        AsymmetricCase("last signature byte changed", .badSignature) { forge in
            try forge.resigned(try forge.token()) { signature in
                var changed = signature
                changed[changed.count - 1] ^= 0x80
                return changed
            }
        },
        AsymmetricCase("payload changed after signing", .badSignature) { forge in
            let token = try forge.token()
            let parts = token.split(separator: ".").map(String.init)
            let longer = Base64URL.encode(Array(#"{"sub":"user-1","exp":1800000000}"#.utf8))
            return [parts[0], longer, parts[2]].joined(separator: ".")
        },
        AsymmetricCase("header changed after signing (one more member)", .badSignature) { forge in
            let token = try forge.token()
            let parts = token.split(separator: ".").map(String.init)
            let header = Base64URL.encode(Array(#"{"alg":"\#(forge.algorithm.rawValue)","kid":"main","x":1}"#.utf8))
            return [header, parts[1], parts[2]].joined(separator: ".")
        },
        AsymmetricCase("signature one byte short", .badSignature) { forge in
            try forge.resigned(try forge.token()) { Array($0.dropLast()) }
        },
        AsymmetricCase("signature one byte long", .badSignature) { forge in
            try forge.resigned(try forge.token()) { $0 + [0] }
        },
        AsymmetricCase("signature of an HS256 MAC's length", .badSignature) { forge in
            try forge.resigned(try forge.token()) { Array($0.prefix(32)) }
        },
        AsymmetricCase("signature of another algorithm's length (64 or 256 bytes)", .badSignature) { forge in
            try forge.resigned(try forge.token()) { signature in
                forge.algorithm == .rs256 ? Array(signature.prefix(64)) : signature + signature + signature + signature
            }
        },
        AsymmetricCase("signature in DER form (ECDSA-Sig-Value of R and S)", .badSignature) { forge in
            try forge.resigned(try forge.token()) { derECDSASignature($0) }
        },
        AsymmetricCase("signature of zeros, the right length", .badSignature) { forge in
            try forge.resigned(try forge.token()) { [UInt8](repeating: 0, count: $0.count) }
        },
        AsymmetricCase("bad signature is reported before the claims", .badSignature) { forge in
            try forge.token(payload: #"{"exp":1}"#, signer: forge.stranger)
        },

        // Key confusion: the public key used as an HMAC secret.
        AsymmetricCase("HS256 MACed with this key's public PEM, kid of this key", .algorithmMismatch) { forge in
            try forge.hmacToken(
                header: #"{"alg":"HS256","typ":"JWT","kid":"main"}"#, secret: Array(try forge.key.publicKeyPEM().utf8))
        },
        AsymmetricCase("HS256 MACed with this key's public DER, kid of this key", .algorithmMismatch) { forge in
            try forge.hmacToken(
                header: #"{"alg":"HS256","kid":"main"}"#, secret: try TestKeys.der(ofPEM: forge.key.publicKeyPEM()))
        },
        AsymmetricCase("HS256 MACed with this key's public PEM, no kid (the signing key)", .algorithmMismatch) {
            forge in
            try forge.hmacToken(header: #"{"alg":"HS256"}"#, secret: Array(try forge.key.publicKeyPEM().utf8))
        },
        AsymmetricCase("HS256 MACed with this key's public DER, no kid", .algorithmMismatch) { forge in
            try forge.hmacToken(header: #"{"alg":"HS256"}"#, secret: try TestKeys.der(ofPEM: forge.key.publicKeyPEM()))
        },
        AsymmetricCase("HS256 MACed with this key's public PEM, kid of the ring's HMAC key", .badSignature) { forge in
            try forge.hmacToken(
                header: #"{"alg":"HS256","kid":"hs"}"#, secret: Array(try forge.key.publicKeyPEM().utf8))
        },
        AsymmetricCase("HS256 MACed with the public JWK's text, kid of this key", .algorithmMismatch) { forge in
            let jwk = JSONValue.object(forge.key.publicJWK).serialized()
            return try forge.hmacToken(header: #"{"alg":"HS256","kid":"main"}"#, secret: jwk)
        },

        // Algorithm and key
        AsymmetricCase("this algorithm, signed by this key, kid of the ring's HMAC key", .algorithmMismatch) {
            try $0.token(header: #"{"alg":"$alg","kid":"hs"}"#)
        },
        AsymmetricCase("another asymmetric algorithm's token, signed by its key, kid of this key", .algorithmMismatch) {
            forge in
            let other = try TestKeys.rfc(forge.otherAlgorithm)
            let header = #"{"alg":"\#(forge.otherAlgorithm.rawValue)","kid":"main"}"#
            return try forge.token(header: header, signer: other)
        },
        AsymmetricCase("this algorithm's token, kid of another algorithm's key", .algorithmMismatch) { forge in
            try forge.token(header: #"{"alg":"$alg","kid":"\#(AsymmetricForge.kid(of: forge.otherAlgorithm))"}"#)
        },
        AsymmetricCase("alg in lower case", .algorithmMismatch) { forge in
            try forge.token(header: #"{"alg":"\#(forge.algorithm.rawValue.lowercased())","kid":"main"}"#)
        },
        AsymmetricCase("unknown kid", .unknownKey) { try $0.token(header: #"{"alg":"$alg","kid":"other-key"}"#) },
        AsymmetricCase("alg none, empty signature", .malformed) { forge in
            forge.signingInput(header: #"{"alg":"none"}"#) + "."
        },
        AsymmetricCase("alg none, signed anyway", .algorithmMismatch) { try $0.token(header: #"{"alg":"none"}"#) },
        AsymmetricCase("alg none with this key's kid", .algorithmMismatch) {
            try $0.token(header: #"{"alg":"none","kid":"main"}"#)
        },

        // Claims still checked
        AsymmetricCase("expired", .expired) { try $0.token(payload: #"{"sub":"user-1","exp":1699999000}"#) },
        AsymmetricCase("no exp", .missingClaim) { try $0.token(payload: #"{"sub":"user-1"}"#) },
    ]

    @Test(arguments: TestKeys.asymmetricAlgorithms, rows)
    func verify(algorithm: JWSAlgorithm, row: AsymmetricCase) throws {
        let forge = try AsymmetricForge(algorithm)
        let token = try row.make(forge)
        // With and without the signature cache: the same outcome, twice.
        for capacity in [0, 4] {
            let verifier = JWTVerifier(
                keyRing: forge.ring, policy: VerificationPolicy(), signatureCacheCapacity: capacity)
            for _ in 0..<2 {
                do {
                    let verified = try verifier.verify(token, now: TokenForge.now)
                    if let expected = row.expected {
                        Issue.record("accepted, expected \(expected): claims \(verified.claims)")
                    } else {
                        #expect(verified.subject == "user-1")
                    }
                } catch {
                    #expect(error.code == row.expected, "\(error)")
                }
            }
        }
    }

    @Test("an HS256 token MACed with an RSA public key's PEM is refused by a ring of that key alone")
    func keyConfusionSingleKeyRing() throws {
        let key = try TestKeys.publicOnly(try TestKeys.rfc(.rs256))
        let ring = KeyRing(signingKey: .asymmetric(key))
        let verifier = JWTVerifier(keyRing: ring, policy: VerificationPolicy())
        let pem = try key.publicKeyPEM()
        for secret in [Array(pem.utf8), try TestKeys.der(ofPEM: pem), Array(pem.utf8.dropLast())] {
            for header in [#"{"alg":"HS256"}"#, #"{"alg":"HS256","kid":"\#(key.thumbprint)"}"#] {
                let input =
                    Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(TokenForge.validPayload.utf8))
                let mac = try HMACKey(secret: secret, algorithm: .hs256).authenticationCode(for: Array(input.utf8))
                #expect(throws: JOSEError.algorithmMismatch()) {
                    try verifier.verify(input + "." + Base64URL.encode(mac), now: TokenForge.now)
                }
            }
        }
        // And no HMAC key can be made from it for RS256.
        #expect(throws: JOSEError.self) { try SigningKey.hmac(secret: Array(pem.utf8), algorithm: .rs256) }
    }
}
