internal import CCrypto
public import JSON

/// An asymmetric key, private or public only, bound to one algorithm: RS256
/// (RSA of 2048 to 8192 bits, RFC 7518 section 3.3), ES256 (P-256, section
/// 3.4) or EdDSA with Ed25519 (RFC 8037).
///
/// Owns a libcrypto `EVP_PKEY`, freed in `deinit`. Like `HMACKey`, the key
/// is prepared once: at init, a digest context is set up for verifying (and,
/// with a private key, one for signing) and then only ever copied from, so
/// that a signature costs a context copy and the arithmetic, never an
/// algorithm fetch by name; working contexts are pooled, and any number of
/// threads may use one key.
///
/// Every key read from outside is checked when it is made: its type and
/// curve against the algorithm, RSA's size and public exponent (odd, 65537
/// or more), the public key (`EVP_PKEY_public_check`: an EC point on the
/// curve, an RSA modulus that is odd and not a prime power), and a private
/// key by signing and verifying a probe, which catches a JWK whose public
/// and private members do not belong together.
public final class AsymmetricKey: Sendable {
    /// The one algorithm this key signs and verifies with.
    public let algorithm: JWSAlgorithm
    /// Whether the key holds its private half (and so can sign).
    public let hasPrivateKey: Bool
    /// The public JWK members only (RFC 7517; RFC 7518 section 6; RFC 8037
    /// section 2): RSA `{kty, n, e}`, EC `{kty, crv, x, y}` with `x` and `y`
    /// 32 bytes each, OKP `{kty, crv, x}`. Never a private member.
    public let publicJWK: JSONObject
    /// The RFC 7638 JWK thumbprint: base64url(SHA-256) of the required
    /// public members in lexicographic order, without whitespace.
    public let thumbprint: String
    /// The length in bytes of every signature this key makes and accepts:
    /// the modulus size for RS256, 64 for ES256 (R || S) and EdDSA.
    public let signatureLength: Int

    /// `signatureLength` in base64url characters (what a token carries).
    let encodedSignatureLength: Int

    /// The key and its prepared contexts (only read after init).
    let engine: SignatureEngine
    /// Idle working contexts, reused from one signature to the next.
    private let contexts: DigestContextPool

    /// Takes ownership of `pkey` (freed here if the key is refused), checks
    /// it against `algorithm`, and prepares it.
    /// - Parameters:
    ///   - checkPublicKey: run `EVP_PKEY_public_check`, for keys read from outside.
    init(
        taking pkey: OpaquePointer, algorithm: JWSAlgorithm, hasPrivateKey: Bool, checkPublicKey: Bool
    ) throws(JOSEError) {
        let engine: SignatureEngine
        let jwk: JSONObject
        let thumbprint: String
        do {
            try Self.checkType(of: pkey, for: algorithm)
            if checkPublicKey { try Self.checkPublicKey(pkey) }
            (jwk, thumbprint) = try Self.publicMembers(of: pkey, algorithm: algorithm)
            engine = try SignatureEngine(pkey: pkey, algorithm: algorithm, canSign: hasPrivateKey)
        } catch {
            EVP_PKEY_free(pkey)
            throw error
        }
        // One working context up front, so that a failure shows here; with a
        // private key it signs and verifies the probe first.
        guard let first = EVP_MD_CTX_new() else {
            let error = JOSEError.openSSL("EVP_MD_CTX_new")
            engine.free()
            throw error
        }
        if hasPrivateKey {
            do {
                try engine.checkKeyPair(using: first)
            } catch {
                EVP_MD_CTX_free(first)
                engine.free()
                throw error
            }
        }
        self.algorithm = algorithm
        self.hasPrivateKey = hasPrivateKey
        self.publicJWK = jwk
        self.thumbprint = thumbprint
        self.signatureLength = engine.signatureLength
        self.encodedSignatureLength = Base64URL.encodedLength(of: engine.signatureLength)
        self.engine = engine
        self.contexts = DigestContextPool(first: DigestContext(pointer: first))
    }

    deinit {
        // The pool frees its idle contexts in its own deinit.
        engine.free()
    }

    /// A new random key: RSA of 2048 bits with e = 65537 for RS256, P-256
    /// for ES256, Ed25519 for EdDSA.
    /// - Throws: `invalidKey` for an HMAC algorithm, `cryptoFailure` if
    ///   libcrypto cannot make the key.
    public static func generate(for algorithm: JWSAlgorithm) throws(JOSEError) -> AsymmetricKey {
        let made: OpaquePointer?
        switch algorithm {
        case .rs256: made = CCrypto_generate_rsa(2048)
        case .es256: made = CCrypto_generate_ec("P-256")
        case .edDSA: made = CCrypto_generate_ed25519()
        case .hs256, .hs384, .hs512: throw .invalidKey("\(algorithm.rawValue) is an HMAC algorithm, not a key pair")
        }
        guard let pkey = made else { throw .openSSL("generating a \(algorithm.rawValue) key") }
        return try AsymmetricKey(taking: pkey, algorithm: algorithm, hasPrivateKey: true, checkPublicKey: false)
    }

    // MARK: - Signing and verifying

    /// The JWS signature of `bytes` (RFC 7515 section 5.1): PKCS#1 v1.5 for
    /// RS256, the 64-byte R || S for ES256 (RFC 7518 section 3.4), Ed25519
    /// for EdDSA. ECDSA signatures are randomised; the others are not.
    /// - Throws: `invalidKey` if the key is public only, `cryptoFailure` if
    ///   libcrypto fails (out of memory).
    public func signature(for bytes: [UInt8]) throws(JOSEError) -> [UInt8] {
        let result = bytes.withUnsafeBytes { input in
            Result { () throws(JOSEError) -> [UInt8] in try signature(for: input) }
        }
        return try result.get()
    }

    /// The JWS signature of `input`.
    func signature(for input: UnsafeRawBufferPointer) throws(JOSEError) -> [UInt8] {
        guard hasPrivateKey else { throw .invalidKey("a public key cannot sign") }
        let context = try takeContext()
        do {
            let signature = try engine.sign(input, using: context.pointer)
            giveBack(context)
            return signature
        } catch {
            // The context's state is unknown after a failure.
            EVP_MD_CTX_free(context.pointer)
            throw error
        }
    }

    /// Whether `signature`, in its JWS form, is a valid signature of `bytes`
    /// by this key. A signature of the wrong length (not `signatureLength`:
    /// an ES256 signature in DER form, say) is simply not valid, and so is
    /// anything when libcrypto fails.
    public func isValidSignature(_ signature: [UInt8], for bytes: [UInt8]) -> Bool {
        signature.withUnsafeBytes { signature in
            bytes.withUnsafeBytes { input in
                (try? isValidSignature(signature, for: input)) ?? false
            }
        }
    }

    /// Whether `signature` is valid for `input`; throws only when libcrypto
    /// cannot make a context (the verifier reports that as `cryptoFailure`).
    func isValidSignature(_ signature: UnsafeRawBufferPointer, for input: UnsafeRawBufferPointer) throws(JOSEError)
        -> Bool
    {
        guard signature.count == signatureLength else { return false }
        let context = try takeContext()
        do {
            let valid = try engine.verify(signature, of: input, using: context.pointer)
            giveBack(context)
            return valid
        } catch {
            EVP_MD_CTX_free(context.pointer)
            throw error
        }
    }

    // MARK: - Context pool

    private func takeContext() throws(JOSEError) -> DigestContext {
        if let context = contexts.take() { return context }
        guard let context = EVP_MD_CTX_new() else { throw .openSSL("EVP_MD_CTX_new") }
        return DigestContext(pointer: context)
    }

    private func giveBack(_ context: DigestContext) {
        if !contexts.keep(context) { EVP_MD_CTX_free(context.pointer) }
    }
}

// MARK: - Checks

extension AsymmetricKey {
    /// The largest RSA modulus accepted, in bits: it bounds the cost of
    /// checking and using a key, and keeps an RS256 signature (1 KiB) well
    /// inside a token.
    static let maxRSABits = 8192

    /// Refuses a key of another type or curve than `algorithm` needs, and an
    /// RSA key outside 2048...8192 bits.
    static func checkType(of pkey: OpaquePointer, for algorithm: JWSAlgorithm) throws(JOSEError) {
        let type = EVP_PKEY_get0_type_name(pkey).map { String(cString: $0) } ?? "unknown"
        switch algorithm {
        case .rs256:
            // "RSA" only: an RSA-PSS key is its own type and is refused.
            guard EVP_PKEY_is_a(pkey, "RSA") == 1 else { throw .invalidKey("RS256 needs an RSA key, not \(type)") }
            let bits = Int(EVP_PKEY_get_bits(pkey))
            guard bits >= 2048 else {
                throw .weakKey("an RSA key of \(bits) bits is too weak; RS256 needs 2048 or more")
            }
            guard bits <= maxRSABits else {
                throw .invalidKey("an RSA key of \(bits) bits is over the limit of \(maxRSABits)")
            }
            try checkRSAExponent(of: pkey)
        case .es256:
            guard EVP_PKEY_is_a(pkey, "EC") == 1 else { throw .invalidKey("ES256 needs a P-256 EC key, not \(type)") }
            var name = [CChar](repeating: 0, count: 80)
            var length = 0
            guard EVP_PKEY_get_group_name(pkey, &name, name.count, &length) == 1 else {
                throw .invalidKeyFromOpenSSL("ES256 needs a P-256 key; this EC key names no curve")
            }
            let curve = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard curve == "prime256v1" || curve == "P-256" else {
                throw .invalidKey("ES256 needs a P-256 key, not one on \(curve)")
            }
        case .edDSA:
            guard EVP_PKEY_is_a(pkey, "ED25519") == 1 else {
                throw .invalidKey("EdDSA needs an Ed25519 key, not \(type)")
            }
        case .hs256, .hs384, .hs512:
            throw .invalidKey("\(algorithm.rawValue) is an HMAC algorithm; use SigningKey.hmac")
        }
    }

    /// Refuses an RSA public exponent outside what SP 800-56B (section
    /// 6.2.1) and FIPS 186-5 allow: odd, 65537 <= e < 2^256. (libcrypto's
    /// own check, outside FIPS mode, lets e = 3 through.)
    private static func checkRSAExponent(of pkey: OpaquePointer) throws(JOSEError) {
        var exponent: OpaquePointer?
        guard EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &exponent) == 1, let exponent else {
            throw .openSSL("EVP_PKEY_get_bn_param e")
        }
        defer { BN_free(exponent) }
        let bits = BN_num_bits(exponent)
        guard BN_is_odd(exponent) == 1, bits >= 17, bits <= 256 else {
            throw .invalidKey("an RSA public exponent must be odd and from 65537 to 2^256")
        }
    }

    /// `EVP_PKEY_public_check`: an EC point on its curve and in its group,
    /// an RSA modulus and exponent of the form SP 800-56B asks for.
    static func checkPublicKey(_ pkey: OpaquePointer) throws(JOSEError) {
        guard let context = EVP_PKEY_CTX_new_from_pkey(nil, pkey, nil) else {
            throw .openSSL("EVP_PKEY_CTX_new_from_pkey")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_public_check(context) == 1 else {
            throw .invalidKeyFromOpenSSL("the public key fails libcrypto's check")
        }
    }
}

// MARK: - The prepared key

/// An `EVP_PKEY` and its prepared verify (and sign) contexts. Made once, then
/// only read: `EVP_MD_CTX_copy_ex` copies from the templates, which any
/// number of threads may do at once, and the key itself is only ever
/// reference-counted by the copies. That is the invariant behind
/// `@unchecked Sendable`.
struct SignatureEngine: @unchecked Sendable {
    let pkey: OpaquePointer
    let algorithm: JWSAlgorithm
    /// `EVP_DigestVerifyInit_ex` done; never used directly.
    let verifyTemplate: OpaquePointer
    /// `EVP_DigestSignInit_ex` done, for a private key; never used directly.
    let signTemplate: OpaquePointer?
    /// The JWS signature length.
    let signatureLength: Int
    /// What `EVP_DigestSign` may write (a DER ECDSA signature is up to 72 bytes).
    let maxOutputLength: Int

    /// Prepares `pkey` (whose type has been checked). On failure frees what
    /// it made, but not `pkey`.
    init(pkey: OpaquePointer, algorithm: JWSAlgorithm, canSign: Bool) throws(JOSEError) {
        let size = Int(EVP_PKEY_get_size(pkey))
        guard size > 0 else { throw .openSSL("EVP_PKEY_get_size") }
        switch algorithm {
        case .es256, .edDSA: signatureLength = 64
        default: signatureLength = size
        }
        maxOutputLength = size
        // SHA-256 for RS256 and ES256; none for EdDSA, which hashes internally.
        let digest = algorithm.digestName
        guard let verify = EVP_MD_CTX_new() else { throw .openSSL("EVP_MD_CTX_new") }
        guard EVP_DigestVerifyInit_ex(verify, nil, digest, nil, nil, pkey, nil) == 1 else {
            let error = JOSEError.openSSL("EVP_DigestVerifyInit_ex")
            EVP_MD_CTX_free(verify)
            throw error
        }
        var sign: OpaquePointer?
        if canSign {
            guard let context = EVP_MD_CTX_new() else {
                let error = JOSEError.openSSL("EVP_MD_CTX_new")
                EVP_MD_CTX_free(verify)
                throw error
            }
            guard EVP_DigestSignInit_ex(context, nil, digest, nil, nil, pkey, nil) == 1 else {
                let error = JOSEError.openSSL("EVP_DigestSignInit_ex")
                EVP_MD_CTX_free(context)
                EVP_MD_CTX_free(verify)
                throw error
            }
            sign = context
        }
        self.pkey = pkey
        self.algorithm = algorithm
        self.verifyTemplate = verify
        self.signTemplate = sign
    }

    func free() {
        EVP_MD_CTX_free(signTemplate)
        EVP_MD_CTX_free(verifyTemplate)
        EVP_PKEY_free(pkey)
    }

    /// Signs `input` with the working `context` (overwritten from the template).
    func sign(_ input: UnsafeRawBufferPointer, using context: OpaquePointer) throws(JOSEError) -> [UInt8] {
        guard let signTemplate else { throw .invalidKey("a public key cannot sign") }
        guard EVP_MD_CTX_copy_ex(context, signTemplate) == 1 else { throw .openSSL("EVP_MD_CTX_copy_ex") }
        var output = [UInt8](repeating: 0, count: maxOutputLength)
        var length = output.count
        let rc = output.withUnsafeMutableBufferPointer { output in
            Self.withBytes(input) { bytes in
                EVP_DigestSign(context, output.baseAddress, &length, bytes, input.count)
            }
        }
        guard rc == 1, length <= output.count else { throw .openSSL("EVP_DigestSign") }
        if algorithm == .es256 {
            // libcrypto writes DER; the JWS form is R || S.
            let raw = output.withUnsafeBufferPointer { der in
                Result { () throws(JOSEError) -> [UInt8] in
                    try Self.rawECDSASignature(fromDER: UnsafeBufferPointer(rebasing: der[..<length]))
                }
            }
            return try raw.get()
        }
        guard length == signatureLength else {
            throw .cryptoFailure(operation: "EVP_DigestSign (\(length) bytes, not \(signatureLength))", opensslCode: 0)
        }
        return output
    }

    /// Whether `signature` (JWS form, `signatureLength` bytes) is valid for
    /// `input`, checked with the working `context`.
    func verify(
        _ signature: UnsafeRawBufferPointer, of input: UnsafeRawBufferPointer, using context: OpaquePointer
    ) throws(JOSEError) -> Bool {
        guard signature.count == signatureLength, let base = signature.baseAddress else { return false }
        guard EVP_MD_CTX_copy_ex(context, verifyTemplate) == 1 else { throw .openSSL("EVP_MD_CTX_copy_ex") }
        let rc: Int32
        if algorithm == .es256 {
            // libcrypto takes DER; the JWS form is R || S.
            rc = try Self.withDERSignature(fromRaw: base.assumingMemoryBound(to: UInt8.self)) { der, length in
                Self.withBytes(input) { bytes in EVP_DigestVerify(context, der, length, bytes, input.count) }
            }
        } else {
            rc = Self.withBytes(input) { bytes in
                EVP_DigestVerify(context, base.assumingMemoryBound(to: UInt8.self), signature.count, bytes, input.count)
            }
        }
        guard rc == 1 else {
            // A mismatch leaves a reason on the queue; it is not an error to report.
            ERR_clear_error()
            return false
        }
        return true
    }

    /// Signs and verifies a probe, so that a private key whose public half
    /// does not match (a JWK with another key's `d`) is refused when made.
    func checkKeyPair(using context: OpaquePointer) throws(JOSEError) {
        let probe = Array("Gatehouse key pair check".utf8)
        let result = probe.withUnsafeBytes { input in
            Result { () throws(JOSEError) -> Bool in
                let signature = try sign(input, using: context)
                return try signature.withUnsafeBytes { signature in
                    Result { () throws(JOSEError) -> Bool in try verify(signature, of: input, using: context) }
                }.get()
            }
        }
        guard try result.get() else { throw .invalidKey("the private key does not match the public key") }
    }

    // MARK: ECDSA signature forms

    /// R || S, each left-padded to 32 bytes, from a DER `ECDSA-Sig-Value`.
    static func rawECDSASignature(fromDER der: UnsafeBufferPointer<UInt8>) throws(JOSEError) -> [UInt8] {
        var cursor: UnsafePointer<UInt8>? = der.baseAddress
        guard let signature = d2i_ECDSA_SIG(nil, &cursor, der.count) else { throw .openSSL("d2i_ECDSA_SIG") }
        defer { ECDSA_SIG_free(signature) }
        var r: OpaquePointer?
        var s: OpaquePointer?
        ECDSA_SIG_get0(signature, &r, &s)
        guard let r, let s else { throw .cryptoFailure(operation: "ECDSA_SIG_get0", opensslCode: 0) }
        var raw = [UInt8](repeating: 0, count: 64)
        let written = raw.withUnsafeMutableBufferPointer { raw in
            (BN_bn2binpad(r, raw.baseAddress, 32), BN_bn2binpad(s, raw.baseAddress.map { $0 + 32 }, 32))
        }
        guard written == (32, 32) else { throw .openSSL("BN_bn2binpad") }
        return raw
    }

    /// Calls `body` with the DER form of the 64-byte R || S at `raw`.
    static func withDERSignature(
        fromRaw raw: UnsafePointer<UInt8>, _ body: (UnsafePointer<UInt8>, Int) -> Int32
    ) throws(JOSEError) -> Int32 {
        guard let r = BN_bin2bn(raw, 32, nil) else { throw .openSSL("BN_bin2bn") }
        guard let s = BN_bin2bn(raw + 32, 32, nil) else {
            BN_free(r)
            throw .openSSL("BN_bin2bn")
        }
        guard let signature = ECDSA_SIG_new() else {
            BN_free(r)
            BN_free(s)
            throw .openSSL("ECDSA_SIG_new")
        }
        defer { ECDSA_SIG_free(signature) }
        guard ECDSA_SIG_set0(signature, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            throw .openSSL("ECDSA_SIG_set0")
        }
        // SEQUENCE { INTEGER r, INTEGER s }: at most 2 + 2 * (2 + 33) = 72 bytes.
        var der = DERBuffer()
        let result = der.withBytes { (buffer) -> Result<Int32, JOSEError> in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            let length = i2d_ECDSA_SIG(signature, &cursor)
            guard length > 0, Int(length) <= buffer.count, let base = buffer.baseAddress else {
                return .failure(.openSSL("i2d_ECDSA_SIG"))
            }
            return .success(body(base, Int(length)))
        }
        return try result.get()
    }

    /// Calls `body` with a pointer to `input`'s bytes, never NULL (an empty
    /// input gets a pointer to a zero byte: libcrypto may not accept NULL).
    @inline(__always)
    static func withBytes<R>(_ input: UnsafeRawBufferPointer, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        if let base = input.baseAddress { return body(base.assumingMemoryBound(to: UInt8.self)) }
        var zero: UInt8 = 0
        return withUnsafePointer(to: &zero) { body($0) }
    }
}

/// Room on the stack for a DER ECDSA P-256 signature (72 bytes at most).
private struct DERBuffer {
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    mutating func withBytes<R>(_ body: (UnsafeMutableBufferPointer<UInt8>) -> R) -> R {
        withUnsafeMutableBytes(of: &words) { body($0.bindMemory(to: UInt8.self)) }
    }
}
