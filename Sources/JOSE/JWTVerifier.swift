import JSON

/// Verifies compact-JWS JWTs signed with a key ring's keys.
///
/// Checks, in this order, each refusal with its own `JOSEError.Code`: size
/// (`tokenTooLarge`), shape (`malformed`: three non-empty parts of strict
/// base64url, a JSON object header), header (`alg` a string, no `crit`,
/// `typ` a string if present), key (`kid` names a known key, or is absent and
/// the signing key is used; `alg` equals that key's algorithm, so an HS256
/// token is never checked with an RSA key's bytes as its secret, and `none`
/// never matches), signature (`badSignature`: the length the key's
/// algorithm gives, then a MAC compared in constant time or a signature
/// verified by libcrypto; an ES256 signature must be the 64-byte R || S, not
/// DER), then the claims (a JSON object payload; `exp` required; `exp`,
/// `nbf`, `iat` numbers and within the leeway; `iss` and `aud` when the
/// policy asks). The payload is parsed only after the signature has been
/// checked, by the JSON parser's rules (`JSONValue.scanObject`), but not
/// built: the claims checked are read where they lie in the text, and
/// `VerifiedToken` keeps the bytes.
///
/// With a `signatureCacheCapacity`, tokens signed with an asymmetric key
/// that passed every check are remembered in a bounded, sharded cache keyed
/// by the complete token and the key that verified it, and the same token
/// presented again skips only its signature check: every other check, the
/// claims included, runs on every call (`signatureCacheStatistics`).
public struct JWTVerifier: Sendable {
    /// The keys accepted.
    public let keyRing: KeyRing
    /// What the claims must satisfy.
    public let policy: VerificationPolicy

    /// - Parameters:
    ///   - keyRing: the keys accepted; a token without `kid` is checked with its signing key.
    ///   - policy: what the claims must satisfy.
    ///   - signatureCacheCapacity: above 0, the most tokens signed with an
    ///     asymmetric key (RS256, ES256, EdDSA) whose verified signature is
    ///     remembered; 0 (the default) turns the cache off. HMAC tokens are
    ///     never cached: computing a MAC costs less than a lookup.
    public init(keyRing: KeyRing, policy: VerificationPolicy, signatureCacheCapacity: Int = 0) {
        self.keyRing = keyRing
        self.policy = policy
        issuerIsASCII = policy.issuer?.utf8.allSatisfy { $0 < 0x80 } ?? false
        audienceIsASCII = policy.audience?.utf8.allSatisfy { $0 < 0x80 } ?? false
        // Only a ring with an asymmetric key can use a cache.
        let asymmetric = keyRing.keys.contains { !$0.isSymmetric }
        signatureCache =
            signatureCacheCapacity > 0 && asymmetric ? SignatureCache(capacity: signatureCacheCapacity) : nil
    }

    /// The verified asymmetric signatures remembered, if the cache is on.
    private let signatureCache: SignatureCache?

    /// How the signature cache is used (for metrics and tests); `nil` when
    /// it is off (capacity 0, or a ring of HMAC keys only).
    public var signatureCacheStatistics: SignatureCacheStatistics? { signatureCache?.statistics }

    /// Whether `policy.issuer` and `policy.audience` are ASCII, so that a
    /// claim written without escapes can be compared with them byte for byte.
    private let issuerIsASCII: Bool
    private let audienceIsASCII: Bool

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
        // Decoded straight into the storage the verified token keeps.
        guard let payloadLength = Base64URL.decodedLength(of: payloadPart.count) else {
            throw .malformed("token payload is not base64url")
        }
        let payload = VerifiedPayload.make(count: payloadLength)
        let decoded = payload.withUnsafeMutablePointerToElements { elements in
            Base64URL.decode(payloadPart, into: UnsafeMutableBufferPointer(start: elements, count: payloadLength))
        }
        guard decoded else { throw .malformed("token payload is not base64url") }
        // A signature no longer than any MAC is decoded here, on the stack,
        // which also checks it; a longer one is only checked (the length
        // check below refuses it).
        var presented = MACBuffer()
        let fitsMACBuffer = (Base64URL.decodedLength(of: signaturePart.count) ?? .max) <= MACBuffer.capacity
        let signatureValid =
            fitsMACBuffer
            ? presented.withBytes { Base64URL.decode(signaturePart, into: $0) }
            : Base64URL.isValid(signaturePart)
        guard signatureValid else { throw .malformed("token signature is not base64url") }

        // MARK: Header and key
        let header: JSONObject
        let keyIndex: Int
        if let index = keyRing.keyIndex(withEncodedHeader: headerPart) {
            // Byte for byte the header our signer writes for this key: its
            // parse, and every header and key check, are known in advance.
            header = keyRing.keys[index].header
            keyIndex = index
        } else {
            header = try Self.parseHeader(headerPart)
            keyIndex = try selectKey(for: header)
        }

        // MARK: Signature
        let signingInput = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(token)[..<secondDot])
        // Set when an asymmetric signature was verified and the cache is on:
        // the token's hash, to remember it once the claims pass too.
        var verifiedHash: Int?
        if let mac = keyRing.keys[keyIndex].mac {
            guard signaturePart.count == Base64URL.encodedLength(of: mac.algorithm.macLength) else {
                throw .badSignature("token signature has the wrong length")
            }
            try Self.checkSignature(&presented, of: signingInput, with: mac)
        } else if let key = keyRing.keys[keyIndex].asymmetricKey {
            guard signaturePart.count == key.encodedSignatureLength else {
                throw .badSignature("token signature has the wrong length")
            }
            if let signatureCache {
                let hash = SignatureCache.hash(token)
                if !signatureCache.contains(token, hash: hash, keyIndex: keyIndex) {
                    try Self.checkSignature(
                        &presented, decoded: fitsMACBuffer, part: signaturePart, of: signingInput, with: key)
                    verifiedHash = hash
                }
            } else {
                try Self.checkSignature(
                    &presented, decoded: fitsMACBuffer, part: signaturePart, of: signingInput, with: key)
            }
        } else {
            preconditionFailure("SigningKey holds no key")
        }

        // MARK: Claims
        let expiresAt = try checkClaims(payload, now: now)
        if let verifiedHash, let signatureCache {
            signatureCache.insert(token, hash: verifiedHash, keyIndex: keyIndex)
        }
        return VerifiedToken(header: header, payload: payload, expiresAt: expiresAt)
    }

    /// The longest header parsed: 1 KiB decoded. Real headers are under 200
    /// bytes; one of hundreds of members would cost the parser time before
    /// the signature is checked, for anyone who can send a token.
    static let maxHeaderEncodedBytes = Base64URL.encodedLength(of: 1024)

    private static func parseHeader(_ part: UnsafeBufferPointer<UInt8>) throws(JOSEError) -> JSONObject {
        guard part.count <= maxHeaderEncodedBytes else { throw .malformed("token header is over 1 KiB") }
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

    /// The position in the ring of the key `header` selects, whose
    /// algorithm must be the header's `alg`.
    private func selectKey(for header: JSONObject) throws(JOSEError) -> Int {
        let index: Int
        switch header["kid"] {
        case nil:
            index = 0  // the signing key
        case .string(let kid)?:
            guard let found = keyRing.keyIndex(withID: kid) else { throw .unknownKey() }
            index = found
        case _?:
            throw .malformed("token header \"kid\" is not a string")
        }
        guard header["alg"]?.stringValue == keyRing.keys[index].algorithm.rawValue else {
            throw .algorithmMismatch()
        }
        return index
    }

    /// Compares the MAC of `signingInput` with the decoded signature
    /// `presented`, whose length has been checked; both live on the stack.
    private static func checkSignature(
        _ presented: inout MACBuffer,
        of signingInput: UnsafeRawBufferPointer,
        with mac: HMACKey
    ) throws(JOSEError) {
        let length = mac.algorithm.macLength
        var expected = MACBuffer()
        try expected.withRawBytes { (expected) throws(JOSEError) in
            try mac.authenticate(signingInput, into: expected)
        }
        let matches = expected.withRawBytes { expected in
            presented.withRawBytes { presented in
                constantTimeEquals(
                    UnsafeRawBufferPointer(rebasing: expected[..<length]),
                    UnsafeRawBufferPointer(rebasing: presented[..<length]))
            }
        }
        guard matches else { throw .badSignature() }
    }

    /// Verifies the signature `part` (whose length has been checked) of
    /// `signingInput` with the asymmetric `key`. A signature of up to 64
    /// bytes (ES256, EdDSA) is already `decoded` into `presented`; a longer
    /// one (RS256) is decoded here into a temporary buffer (on the stack for
    /// the usual sizes).
    private static func checkSignature(
        _ presented: inout MACBuffer, decoded: Bool, part: UnsafeBufferPointer<UInt8>,
        of signingInput: UnsafeRawBufferPointer, with key: AsymmetricKey
    ) throws(JOSEError) {
        let length = key.signatureLength
        let valid: Bool
        if decoded {
            valid = try presented.withRawBytes { (signature) throws(JOSEError) in
                try key.isValidSignature(UnsafeRawBufferPointer(rebasing: signature[..<length]), for: signingInput)
            }
        } else {
            let result = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { signature in
                Result { () throws(JOSEError) -> Bool in
                    // Checked as base64url with the rest of the shape; the length matches.
                    guard Base64URL.decode(part, into: signature) else { return false }
                    return try key.isValidSignature(UnsafeRawBufferPointer(signature), for: signingInput)
                }
            }
            valid = try result.get()
        }
        guard valid else { throw .badSignature() }
    }

    /// Checks the payload (a JSON object, by the parser's rules) and the
    /// registered claims in it without building the claims set; notes in
    /// `payload` where the other registered claims are, and returns `exp`.
    private func checkClaims(_ payload: VerifiedPayload, now: Double) throws(JOSEError) -> Double {
        let result = payload.withUnsafeMutablePointers { registered, elements in
            Result { () throws(JOSEError) -> Double in
                try checkClaims(
                    UnsafeBufferPointer(start: elements, count: registered.pointee.count), now: now,
                    registered: &registered.pointee)
            }
        }
        return try result.get()
    }

    private func checkClaims(
        _ payload: UnsafeBufferPointer<UInt8>, now: Double, registered: inout RegisteredClaims
    ) throws(JOSEError) -> Double {
        var found = ScannedClaims()
        do {
            try JSONValue.scanObject(payload) { member in found.note(member, in: payload) }
        } catch {
            throw .malformed("token payload is not a JSON object")
        }

        let expiresAt: Double
        switch found.exp {
        case .absent: throw .missingClaim("exp")
        case .other: throw .invalidClaim("exp", expected: "a number")
        case .number(let value): expiresAt = value
        }
        let notBefore = try found.nbf.optionalNumber("nbf")
        let issuedAt = try found.iat.optionalNumber("iat")

        guard now <= expiresAt + policy.leeway else { throw .expired() }
        if let notBefore, now < notBefore - policy.leeway { throw .notYetValid() }
        if let issuedAt, issuedAt > now + policy.leeway { throw .issuedInFuture() }

        if let issuer = policy.issuer {
            guard let iss = found.iss, JSONValue.string(iss, in: payload, equals: issuer, otherIsASCII: issuerIsASCII)
            else { throw .wrongIssuer() }
        }
        if let audience = policy.audience {
            switch found.aud?.kind {
            case .string?:
                guard let aud = found.aud,
                    JSONValue.string(aud.string, in: payload, equals: audience, otherIsASCII: audienceIsASCII)
                else { throw .wrongAudience() }
            case .array?:
                guard let aud = found.aud,
                    case .array(let values)? = try? JSONValue.parse(
                        UnsafeBufferPointer(rebasing: payload[aud.valueStart..<aud.valueEnd]))
                else { throw .invalidClaim("aud", expected: "a string or an array of strings") }
                var matched = false
                for value in values {
                    guard case .string(let name) = value else {
                        throw .invalidClaim("aud", expected: "a string or an array of strings")
                    }
                    if name == audience { matched = true }
                }
                guard matched else { throw .wrongAudience() }
            case nil:
                throw .wrongAudience("token names no audience")
            case _?:
                throw .invalidClaim("aud", expected: "a string or an array of strings")
            }
        }

        registered.subject = found.sub
        registered.sessionID = found.sid
        registered.username = found.user
        registered.tokenID = found.jti
        registered.issuer = found.iss
        registered.issuedAt = issuedAt
        registered.notBefore = notBefore
        return expiresAt
    }
}

/// Room on the stack for the longest MAC (HS512, 64 bytes).
private struct MACBuffer {
    static let capacity = 64
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    mutating func withBytes<R>(_ body: (UnsafeMutableBufferPointer<UInt8>) -> R) -> R {
        withUnsafeMutableBytes(of: &words) { body($0.bindMemory(to: UInt8.self)) }
    }

    mutating func withRawBytes<R, E>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result = withUnsafeMutableBytes(of: &words) { raw in
            Result { () throws(E) -> R in try body(raw) }
        }
        return try result.get()
    }
}

/// The registered claims of a payload, noted while the payload is scanned.
private struct ScannedClaims {
    /// A NumericDate claim as found.
    enum TimeClaim {
        case absent
        case number(Double)
        /// Present, but not a number.
        case other

        /// The value, nil when absent; throws if present but not a number.
        func optionalNumber(_ name: String) throws(JOSEError) -> Double? {
            switch self {
            case .absent: nil
            case .number(let value): value
            case .other: throw .invalidClaim(name, expected: "a number")
            }
        }
    }

    var exp = TimeClaim.absent
    var nbf = TimeClaim.absent
    var iat = TimeClaim.absent
    /// All of it, since an array is read only when the policy names an audience.
    var aud: JSONScannedMember?
    /// Set only when the member is a string.
    var iss: JSONTextString?
    var sub: JSONTextString?
    var sid: JSONTextString?
    var user: JSONTextString?
    var jti: JSONTextString?

    /// The member names, as their ASCII bytes packed little-endian into an
    /// integer (a name without escapes has no zero byte, so its length is
    /// implied).
    private enum Name: UInt64 {
        case exp = 0x70_7865
        case nbf = 0x66_626E
        case iat = 0x74_6169
        case iss = 0x73_7369
        case aud = 0x64_7561
        case sub = 0x62_7573
        case sid = 0x64_6973
        case jti = 0x69_746A
        case user = 0x7265_7375

        var spelling: String {
            switch self {
            case .exp: "exp"
            case .nbf: "nbf"
            case .iat: "iat"
            case .iss: "iss"
            case .aud: "aud"
            case .sub: "sub"
            case .sid: "sid"
            case .jti: "jti"
            case .user: "user"
            }
        }

        /// The member name `text`, whose first eight bytes are `word` when it
        /// is plain ASCII. Any other name is decoded and compared as a
        /// String, like `JSONObject` lookups. (Fields rather than the whole
        /// member: copying that just after the scanner wrote it field by
        /// field stalls on store forwarding.)
        init?(_ text: JSONTextString, word: UInt64, in bytes: UnsafeBufferPointer<UInt8>) {
            guard case .ascii = text.shape else {
                let decoded = JSONValue.string(text, in: bytes)
                for name in [Name.exp, .nbf, .iat, .iss, .aud, .sub, .sid, .jti, .user] where name.spelling == decoded {
                    self = name
                    return
                }
                return nil
            }
            // `word` is exactly an ASCII name of up to eight bytes.
            guard text.end - text.start <= 8 else { return nil }
            switch word {
            case Name.exp.rawValue: self = .exp
            case Name.nbf.rawValue: self = .nbf
            case Name.iat.rawValue: self = .iat
            case Name.iss.rawValue: self = .iss
            case Name.aud.rawValue: self = .aud
            case Name.sub.rawValue: self = .sub
            case Name.sid.rawValue: self = .sid
            case Name.jti.rawValue: self = .jti
            case Name.user.rawValue: self = .user
            default: return nil
            }
        }
    }

    mutating func note(_ member: JSONScannedMember, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let name = Name(member.name, word: member.nameWord, in: bytes) else { return }
        var string: JSONTextString?
        if case .string = member.kind { string = member.string }
        var time = TimeClaim.other
        if case .number = member.kind { time = .number(member.number) }
        switch name {
        case .exp: exp = time
        case .nbf: nbf = time
        case .iat: iat = time
        case .iss: iss = string
        case .aud: aud = member
        case .sub: sub = string
        case .sid: sid = string
        case .jti: jti = string
        case .user: user = string
        }
    }
}
