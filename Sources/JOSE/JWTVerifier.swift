import JSON

/// Verifies compact-JWS JWTs signed with a key ring's keys.
///
/// Checks, in this order, each refusal with its own `JOSEError.Code`: size
/// (`tokenTooLarge`), shape (`malformed`: three non-empty parts of strict
/// base64url, a JSON object header), header (`alg` a string, no `crit`,
/// `typ` a string if present), key (`kid` names a known key, or is absent and
/// the signing key is used; `alg` equals that key's algorithm), signature
/// (`badSignature`, compared in constant time), then the claims (a JSON
/// object payload; `exp` required; `exp`, `nbf`, `iat` numbers and within
/// the leeway; `iss` and `aud` when the policy asks). The payload is parsed
/// only after the signature has been checked.
public struct JWTVerifier: Sendable {
    /// The keys accepted.
    public let keyRing: KeyRing
    /// What the claims must satisfy.
    public let policy: VerificationPolicy

    /// - Parameters:
    ///   - keyRing: the keys accepted; a token without `kid` is checked with its signing key.
    ///   - policy: what the claims must satisfy.
    public init(keyRing: KeyRing, policy: VerificationPolicy) {
        self.keyRing = keyRing
        self.policy = policy
    }

    /// Verifies a compact JWS.
    /// - Parameters:
    ///   - token: the token text (for example what follows `Bearer `).
    ///   - now: the current time, in seconds since 1970.
    /// - Returns: the header and claims of a token that passed every check.
    /// - Throws: `JOSEError` naming the first check that failed.
    public func verify(_ token: some StringProtocol, now: Double) throws(JOSEError) -> VerifiedToken {
        let utf8 = token.utf8
        guard utf8.count <= policy.maxTokenBytes else { throw .tokenTooLarge(limit: policy.maxTokenBytes) }
        let result =
            utf8.withContiguousStorageIfAvailable { verifyCatching($0, now: now) }
            ?? Array(utf8).withUnsafeBufferPointer { verifyCatching($0, now: now) }
        return try result.get()
    }

    /// Verifies a compact JWS given as UTF-8 bytes, for callers that hold the
    /// token in a buffer (an HTTP header) and would rather not make a String.
    /// - Parameters:
    ///   - token: the token's bytes.
    ///   - now: the current time, in seconds since 1970.
    public func verify(utf8 token: UnsafeBufferPointer<UInt8>, now: Double) throws(JOSEError) -> VerifiedToken {
        try verifyBytes(token, now: now)
    }

    private func verifyCatching(_ token: UnsafeBufferPointer<UInt8>, now: Double) -> Result<VerifiedToken, JOSEError> {
        Result { () throws(JOSEError) -> VerifiedToken in try verifyBytes(token, now: now) }
    }

    private func verifyBytes(_ token: UnsafeBufferPointer<UInt8>, now: Double) throws(JOSEError) -> VerifiedToken {
        // MARK: Size
        guard token.count <= policy.maxTokenBytes else { throw .tokenTooLarge(limit: policy.maxTokenBytes) }

        // MARK: Shape
        let dot = UInt8(ascii: ".")
        guard let firstDot = token.firstIndex(of: dot, from: 0),
            let secondDot = token.firstIndex(of: dot, from: firstDot + 1)
        else { throw .malformed("token does not have three parts") }
        guard token.firstIndex(of: dot, from: secondDot + 1) == nil else {
            throw .malformed("token has more than three parts")
        }
        let headerPart = UnsafeBufferPointer(rebasing: token[..<firstDot])
        let payloadPart = UnsafeBufferPointer(rebasing: token[(firstDot + 1)..<secondDot])
        let signaturePart = UnsafeBufferPointer(rebasing: token[(secondDot + 1)...])
        guard !headerPart.isEmpty, !payloadPart.isEmpty, !signaturePart.isEmpty else {
            throw .malformed("token has an empty part")
        }
        guard let payloadBytes = Base64URL.decode(payloadPart) else {
            throw .malformed("token payload is not base64url")
        }
        guard Base64URL.isValid(signaturePart) else { throw .malformed("token signature is not base64url") }

        // MARK: Header and key
        let header: JSONObject
        let key: SigningKey
        if let known = keyRing.key(withEncodedHeader: headerPart) {
            // Byte for byte the header our signer writes for this key: its
            // parse, and every header and key check, are known in advance.
            header = known.header
            key = known
        } else {
            header = try Self.parseHeader(headerPart)
            key = try selectKey(for: header)
        }

        // MARK: Signature
        guard signaturePart.count == Base64URL.encodedLength(of: key.algorithm.macLength) else {
            throw .badSignature("token signature has the wrong length")
        }
        let signingInput = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(token)[..<secondDot])
        try Self.checkSignature(signaturePart, of: signingInput, with: key.mac)

        // MARK: Claims
        guard case .object(let claims)? = try? JSONValue.parse(payloadBytes) else {
            throw .malformed("token payload is not a JSON object")
        }
        let expiresAt = try checkClaims(claims, now: now)
        return VerifiedToken(header: header, claims: claims, expiresAt: expiresAt)
    }

    private static func parseHeader(_ part: UnsafeBufferPointer<UInt8>) throws(JOSEError) -> JSONObject {
        guard let bytes = Base64URL.decode(part) else { throw .malformed("token header is not base64url") }
        guard case .object(let header)? = try? JSONValue.parse(bytes) else {
            throw .malformed("token header is not a JSON object")
        }
        guard case .string? = header["alg"] else { throw .malformed("token header has no \"alg\" string") }
        // No extension is understood, so any `crit` must be refused (RFC 7515 section 4.1.11).
        guard header["crit"] == nil else { throw .criticalHeader() }
        if let typ = header["typ"] {
            guard case .string = typ else { throw .malformed("token header \"typ\" is not a string") }
        }
        return header
    }

    private func selectKey(for header: JSONObject) throws(JOSEError) -> SigningKey {
        let key: SigningKey
        switch header["kid"] {
        case nil:
            key = keyRing.signingKey
        case .string(let kid)?:
            guard let found = keyRing.key(withID: kid) else { throw .unknownKey() }
            key = found
        case _?:
            throw .malformed("token header \"kid\" is not a string")
        }
        guard header["alg"]?.stringValue == key.algorithm.rawValue else { throw .algorithmMismatch() }
        return key
    }

    /// Compares the MAC of `signingInput` with the decoded `signature`, whose
    /// encoded length has been checked; both live on the stack.
    private static func checkSignature(
        _ signature: UnsafeBufferPointer<UInt8>,
        of signingInput: UnsafeRawBufferPointer,
        with mac: HMACKey
    ) throws(JOSEError) {
        let length = mac.algorithm.macLength
        let outcome = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { scratch -> JOSEError? in
            let expected = UnsafeMutableBufferPointer(rebasing: scratch[0..<64])
            let presented = UnsafeMutableBufferPointer(rebasing: scratch[64..<128])
            guard Base64URL.decode(signature, into: presented) else {
                return .malformed("token signature is not base64url")
            }
            do throws(JOSEError) {
                try mac.authenticate(signingInput, into: UnsafeMutableRawBufferPointer(expected))
            } catch {
                return error
            }
            let matches = constantTimeEquals(
                UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(expected)[..<length]),
                UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(presented)[..<length]))
            return matches ? nil : .badSignature()
        }
        if let outcome { throw outcome }
    }

    /// Checks the registered claims; returns `exp`.
    private func checkClaims(_ claims: JSONObject, now: Double) throws(JOSEError) -> Double {
        guard let expValue = claims["exp"] else { throw .missingClaim("exp") }
        guard case .number(let expiresAt) = expValue else { throw .invalidClaim("exp", expected: "a number") }
        let notBefore = try Self.optionalNumber(claims, "nbf")
        let issuedAt = try Self.optionalNumber(claims, "iat")

        guard now <= expiresAt + policy.leeway else { throw .expired() }
        if let notBefore, now < notBefore - policy.leeway { throw .notYetValid() }
        if let issuedAt, issuedAt > now + policy.leeway { throw .issuedInFuture() }

        if let issuer = policy.issuer {
            guard claims["iss"]?.stringValue == issuer else { throw .wrongIssuer() }
        }
        if let audience = policy.audience {
            switch claims["aud"] {
            case .string(let value)?:
                guard value == audience else { throw .wrongAudience() }
            case .array(let values)?:
                var found = false
                for value in values {
                    guard case .string(let name) = value else {
                        throw .invalidClaim("aud", expected: "a string or an array of strings")
                    }
                    if name == audience { found = true }
                }
                guard found else { throw .wrongAudience() }
            case nil:
                throw .wrongAudience("token names no audience")
            case _?:
                throw .invalidClaim("aud", expected: "a string or an array of strings")
            }
        }
        return expiresAt
    }

    private static func optionalNumber(_ claims: JSONObject, _ name: String) throws(JOSEError) -> Double? {
        guard let value = claims[name] else { return nil }
        guard case .number(let number) = value else { throw .invalidClaim(name, expected: "a number") }
        return number
    }
}
