// FuzzJOSE: libFuzzer target for the JOSE token verifier (`make fuzz`,
// `make fuzz-smoke`; Fuzz/README.md).
//
// A random token almost never has a valid MAC, and the verifier parses
// nothing of the payload before the MAC holds, so each input is used five
// ways, three of them MACed with the fuzzer's own key so that the header,
// payload and claim checks are reached:
// 1. as a compact token, verified from bytes (`verify(utf8:)`) and, when it
//    is UTF-8, as a String and as a Substring, which must all agree;
// 2. as base64url text (the whole, and each dot-separated part), which must
//    decode only when canonical: decode then encode gives the text back;
// 3. as a claims set, if it is a JSON object: signed with `JWTSigner`, then
//    verified;
// 4. as the raw payload of a token with the signer's header and a valid MAC;
// 5. as the raw header of a token with a valid payload and a valid MAC;
// 6. as a claims set, if it is a JSON object: signed with an Ed25519 key
//    (EdDSA), verified without and with the signature cache (twice, so the
//    second is a hit), and with one signature byte changed (never a hit).
// For 3-6 the outcome (which refusal, or success and what the accessors
// return) must be the one an independent model of the rules predicts from
// `JSONValue.parse`; a disagreement traps, which libFuzzer reports as a
// crash with the input. The ring also holds RS256, ES256 and EdDSA public
// keys (the RFC example keys, so that seed tokens signed with them stay
// valid), and one verifier has the signature cache on.
//
// Without `--sanitize=fuzzer` (a plain `swift build`) this file is the main
// file of an executable that does nothing; libFuzzer's own `main` drives it
// only in the fuzzing build, where SwiftPM compiles it as a library.

import JOSE
import JSON

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJOSE(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: size > 0 ? data : nil, count: size)
    JOSEFuzzer.check(input)
    return 0
}

enum JOSEFuzzer {
    /// The clock every verification uses (2023-11-14T22:13:20Z).
    static let now: Double = 1_700_000_000

    static let signingSecret = Array("fuzzing secret for HS256, 32 B!!".utf8)

    /// The signing key (HS256), an older HS256 key with another secret,
    /// HS384 and HS512 keys, so that `kid` and `alg` choose between keys
    /// whose MACs differ in secret or in length; and public RS256, ES256 and
    /// EdDSA keys (kids `rs`, `es`, `ed`), whose signatures differ in length
    /// and kind from any MAC.
    static let ring: KeyRing = {
        do {
            let signing = try SigningKey.hmac(secret: signingSecret, algorithm: .hs256, kid: "k256")
            return KeyRing(
                signingKey: signing,
                additionalVerificationKeys: [
                    try SigningKey.hmac(secret: Array("an older HS256 secret, 32 bytes!".utf8), kid: "old"),
                    try SigningKey.hmac(secret: Array(repeating: 0x38, count: 48), algorithm: .hs384, kid: "k384"),
                    try SigningKey.hmac(secret: Array(repeating: 0x64, count: 64), algorithm: .hs512, kid: "k512"),
                    .asymmetric(try AsymmetricKey(jwk: rsaPublicJWK), kid: "rs"),
                    .asymmetric(try AsymmetricKey(jwk: ecPublicJWK), kid: "es"),
                    .asymmetric(try AsymmetricKey(jwk: edPublicJWK), kid: "ed"),
                ])
        } catch {
            fatalError("FuzzJOSE: cannot make the keys: \(error)")
        }
    }()

    /// RFC 7515 appendix A.2 (RSA) and A.3 (P-256) public keys, RFC 8037
    /// appendix A Ed25519 key pair.
    static let rsaPublicJWK: JSONObject = [
        "kty": "RSA", "e": "AQAB",
        "n": .string(
            "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4Ql"
                + "L-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUs"
                + "LA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoud"
                + "F8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"),
    ]
    static let ecPublicJWK: JSONObject = [
        "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    ]
    static let edPublicJWK: JSONObject = [
        "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    ]
    static let edPrivateJWK: JSONObject = [
        "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    ]

    /// Signs with the Ed25519 key as `ed`: its tokens carry the header the
    /// ring's `ed` key is known by.
    static let edSigner: JWTSigner = {
        do {
            return JWTSigner(keyRing: KeyRing(signingKey: .asymmetric(try AsymmetricKey(jwk: edPrivateJWK), kid: "ed")))
        } catch {
            fatalError("FuzzJOSE: cannot make the Ed25519 key: \(error)")
        }
    }()

    static let signer = JWTSigner(keyRing: ring)

    /// No issuer or audience; ASCII ones (compared byte for byte); non-ASCII
    /// ones (compared as Strings).
    /// The last one, with ASCII ones again, has the signature cache on.
    static let verifiers: [JWTVerifier] =
        [
            VerificationPolicy(),
            VerificationPolicy(issuer: "gatehouse", audience: "api"),
            VerificationPolicy(issuer: "gåtehouse", audience: "ápi", leeway: 0),
        ].map { JWTVerifier(keyRing: ring, policy: $0) }
        + [
            JWTVerifier(
                keyRing: ring, policy: VerificationPolicy(issuer: "gatehouse", audience: "api"),
                signatureCacheCapacity: 64)
        ]

    /// The verifier with the signature cache.
    static var cachedVerifier: JWTVerifier { verifiers[3] }

    /// The header the signer writes, base64url (the verifier's fast path).
    static let signerHeader: String = {
        let token = signer.sign(["exp": 1])
        return String(token.prefix { $0 != "." })
    }()

    /// A payload every policy accepts, for tokens built around a fuzzed header.
    static let validPayload: JSONObject = [
        "sub": "user-1", "exp": .number(now + 600), "iat": .number(now), "iss": "gatehouse", "aud": "api",
    ]

    static func check(_ input: UnsafeBufferPointer<UInt8>) {
        checkAsToken(input)
        checkBase64URL(input)
        if case .object(let claims)? = try? JSONValue.parse(input) {
            checkSigned(signer.sign(claims), header: nil, payload: .object(claims), input)
            checkEdDSASigned(claims, input)
        }
        checkRawPayload(input)
        checkRawHeader(input)
    }

    // MARK: - 1. The input as a token

    static func checkAsToken(_ input: UnsafeBufferPointer<UInt8>) {
        let text = String(validating: input, as: UTF8.self)
        for verifier in verifiers {
            let fromBytes = Result { () throws(JOSEError) in try verifier.verify(utf8: input, now: now) }
            if case .success(let token) = fromBytes {
                // Only a seed or a mutation of one that kept its MAC gets here.
                checkAccessors(token, claims: token.claims)
            }
            guard let text else { continue }
            let fromString = Result { () throws(JOSEError) in try verifier.verify(text, now: now) }
            expect(outcome(fromBytes) == outcome(fromString), "verify(utf8:) and verify(String) differ", input)
            // The path for a token cut out of an Authorization header (cut by
            // UTF-8 offset: a leading combining mark would join the space).
            let header = "Bearer " + text
            let token = header[header.utf8.index(header.utf8.startIndex, offsetBy: 7)...]
            let fromSubstring = Result { () throws(JOSEError) in try verifier.verify(token, now: now) }
            expect(outcome(fromBytes) == outcome(fromSubstring), "verify(utf8:) and verify(Substring) differ", input)
        }
    }

    // MARK: - 2. The input as base64url

    static func checkBase64URL(_ input: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: input, as: UTF8.self)
        for part in [Substring(text)] + text.split(separator: ".", omittingEmptySubsequences: false) {
            if let decoded = Base64URL.decode(part) {
                expect(Base64URL.encode(decoded) == part, "base64url accepted a non-canonical text", input)
            }
        }
        let encoded = Base64URL.encode(input)
        expect(Base64URL.decode(encoded) == Array(input), "base64url does not round-trip bytes", input)
    }

    // MARK: - 3-5. Validly MACed tokens

    /// header.payload.MAC with the signing key.
    static func macedToken(header: String, payload: String) -> String {
        let signingInput = header + "." + payload
        return signingInput + "." + Base64URL.encode(macKey.authenticationCode(for: Array(signingInput.utf8)))
    }

    static let macKey: HMACKey = {
        do {
            return try HMACKey(secret: signingSecret, algorithm: .hs256)
        } catch {
            fatalError("FuzzJOSE: cannot make the MAC key: \(error)")
        }
    }()

    static func checkRawPayload(_ input: UnsafeBufferPointer<UInt8>) {
        let token = macedToken(header: signerHeader, payload: Base64URL.encode(input))
        let payload = try? JSONValue.parse(input)
        checkSigned(token, header: nil, payload: payload, input)
    }

    static func checkRawHeader(_ input: UnsafeBufferPointer<UInt8>) {
        let payload = Base64URL.encode(JSONValue.object(validPayload).serialized())
        let token = macedToken(header: Base64URL.encode(input), payload: payload)
        checkSigned(token, header: input, payload: .object(validPayload), input)
    }

    /// Verifies `token`, which carries a valid HS256 MAC by the signing key,
    /// with every verifier, and checks the outcome against the model.
    /// - Parameters:
    ///   - header: the decoded header, or `nil` for the signer's own.
    ///   - payload: the payload as `JSONValue.parse` reads it, `nil` if it refuses it.
    static func checkSigned(
        _ token: String, header: UnsafeBufferPointer<UInt8>?, payload: JSONValue?,
        _ input: UnsafeBufferPointer<UInt8>
    ) {
        for verifier in verifiers {
            let result = Result { () throws(JOSEError) in try verifier.verify(token, now: now) }
            var expected: JOSEError.Code?
            if token.utf8.count > verifier.policy.maxTokenBytes {
                expected = .tokenTooLarge
            } else if let header, let refusal = headerRefusal(header) {
                expected = refusal
            } else if case .object(let claims)? = payload {
                expected = claimsRefusal(claims, policy: verifier.policy)
            } else {
                expected = .malformed
            }
            let actual = outcome(result)
            expect(
                actual == expected,
                "expected \(expected?.rawValue ?? "success"), got \(actual?.rawValue ?? "success")", input)
            if case .success(let verified) = result, case .object(let claims)? = payload {
                expect(verified.claims == claims, "the verified claims are not the payload", input)
                checkAccessors(verified, claims: claims)
            }
        }
    }

    // MARK: - 6. Signed with Ed25519

    /// Signs `claims` with the Ed25519 key and verifies the token with the
    /// first verifier and, twice, the cached one; then a copy with one
    /// signature byte changed, which must be a bad signature, cache or not.
    /// (Two verifiers, not all four: an Ed25519 check costs over 100 us.)
    static func checkEdDSASigned(_ claims: JSONObject, _ input: UnsafeBufferPointer<UInt8>) {
        let token = edSigner.sign(claims)
        for verifier in [verifiers[0], cachedVerifier, cachedVerifier] {
            let result = Result { () throws(JOSEError) in try verifier.verify(token, now: now) }
            let expected: JOSEError.Code? =
                token.utf8.count > verifier.policy.maxTokenBytes
                ? .tokenTooLarge : claimsRefusal(claims, policy: verifier.policy)
            let actual = outcome(result)
            expect(
                actual == expected,
                "EdDSA: expected \(expected?.rawValue ?? "success"), got \(actual?.rawValue ?? "success")", input)
            if case .success(let verified) = result {
                expect(verified.claims == claims, "EdDSA: the verified claims are not the payload", input)
                checkAccessors(verified, claims: claims)
            }
        }
        // The first signature character carries no padding bits: any other letter is another signature.
        var bytes = Array(token.utf8)
        guard let dot = bytes.lastIndex(of: UInt8(ascii: ".")) else { fatalError("FuzzJOSE: a token without a dot") }
        bytes[dot + 1] = bytes[dot + 1] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let forged = String(decoding: bytes, as: UTF8.self)
        let result = Result { () throws(JOSEError) in try cachedVerifier.verify(forged, now: now) }
        let expected: JOSEError.Code =
            forged.utf8.count > cachedVerifier.policy.maxTokenBytes ? .tokenTooLarge : .badSignature
        expect(
            outcome(result) == expected, "EdDSA: a changed signature gave \(outcome(result)?.rawValue ?? "success")",
            input)
    }

    /// The refusal the verifier must give a token whose decoded header is
    /// `header`, MACed with the HS256 signing key; `nil` if it must accept it.
    static func headerRefusal(_ header: UnsafeBufferPointer<UInt8>) -> JOSEError.Code? {
        guard !header.isEmpty else { return .malformed }
        let key: SigningKey
        let encoded = Base64URL.encode(header)
        if let known = knownHeaders.first(where: { $0.encoded == encoded }) {
            key = known.key
        } else {
            guard case .object(let object)? = try? JSONValue.parse(header) else { return .malformed }
            guard case .string(let alg)? = object["alg"] else { return .malformed }
            guard object["crit"] == nil else { return .criticalHeader }
            if let typ = object["typ"], typ.stringValue == nil { return .malformed }
            switch object["kid"] {
            case nil: key = ring.signingKey
            case .string(let kid)?:
                guard let found = ring.key(withID: kid) else { return .unknownKey }
                key = found
            case _?: return .malformed
            }
            guard alg == key.algorithm.rawValue else { return .algorithmMismatch }
        }
        // Only the signing key's MAC is right: the other keys differ in secret,
        // MAC length, or kind and length of signature.
        return key.kid == ring.signingKey.kid ? nil : .badSignature
    }

    /// The header `JWTSigner` would write for each key of the ring, base64url:
    /// the verifier takes the key of such a header without parsing it.
    static let knownHeaders: [(encoded: String, key: SigningKey)] = {
        let headers = ["k256", "old", "k384", "k512", "rs", "es", "ed"].map {
            kid -> (encoded: String, key: SigningKey) in
            guard let key = ring.key(withID: kid) else { fatalError("FuzzJOSE: no key \(kid)") }
            let header: JSONValue = ["alg": .string(key.algorithm.rawValue), "typ": "JWT", "kid": .string(key.kid)]
            return (Base64URL.encode(header.serialized()), key)
        }
        // The model of the signer's header must be the signer's header.
        guard headers[0].encoded == signerHeader else { fatalError("FuzzJOSE: the header model is wrong") }
        return headers
    }()

    /// The refusal the claim checks must give `claims` under `policy`, in
    /// the verifier's documented order; `nil` if they pass.
    static func claimsRefusal(_ claims: JSONObject, policy: VerificationPolicy) -> JOSEError.Code? {
        guard let expValue = claims["exp"] else { return .missingClaim }
        guard let exp = expValue.numberValue else { return .invalidClaim }
        if let nbf = claims["nbf"], nbf.numberValue == nil { return .invalidClaim }
        if let iat = claims["iat"], iat.numberValue == nil { return .invalidClaim }
        guard now <= exp + policy.leeway else { return .expired }
        if let nbf = claims["nbf"]?.numberValue, now < nbf - policy.leeway { return .notYetValid }
        if let iat = claims["iat"]?.numberValue, iat > now + policy.leeway { return .issuedInFuture }
        if let issuer = policy.issuer, claims["iss"]?.stringValue != issuer { return .wrongIssuer }
        if let audience = policy.audience {
            switch claims["aud"] {
            case .string(let aud)?:
                if aud != audience { return .wrongAudience }
            case .array(let values)?:
                guard values.allSatisfy({ $0.stringValue != nil }) else { return .invalidClaim }
                if !values.contains(.string(audience)) { return .wrongAudience }
            case nil:
                return .wrongAudience
            case _?:
                return .invalidClaim
            }
        }
        return nil
    }

    /// The accessors of a verified token return what its claims hold.
    static func checkAccessors(_ token: VerifiedToken, claims: JSONObject) {
        func check(_ condition: Bool, _ name: String) {
            guard !condition else { return }
            fatalError("FuzzJOSE: VerifiedToken.\(name) is not the claim's value")
        }
        check(token.expiresAt == claims["exp"]?.numberValue, "expiresAt")
        check(token.subject == claims["sub"]?.stringValue, "subject")
        check(token.sessionID == claims["sid"]?.stringValue, "sessionID")
        check(token.username == claims["user"]?.stringValue, "username")
        check(token.tokenID == claims["jti"]?.stringValue, "tokenID")
        check(token.issuer == claims["iss"]?.stringValue, "issuer")
        check(token.issuedAt == claims["iat"]?.numberValue, "issuedAt")
        check(token.notBefore == claims["nbf"]?.numberValue, "notBefore")
        check(token.keyID == token.header["kid"]?.stringValue, "keyID")
    }

    /// The refusal's code, or `nil` for success.
    static func outcome(_ result: Result<VerifiedToken, JOSEError>) -> JOSEError.Code? {
        if case .failure(let error) = result { return error.code }
        return nil
    }

    /// Traps with `message` (and the input's length) when `condition` is false:
    /// libFuzzer reports it as a crash and saves the input.
    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, _ input: UnsafeBufferPointer<UInt8>) {
        guard !condition else { return }
        fatalError("FuzzJOSE: \(message()) (input of \(input.count) bytes)")
    }
}
