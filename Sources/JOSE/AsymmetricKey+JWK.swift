internal import CCrypto
public import JSON

// MARK: - Reading a JWK

extension AsymmetricKey {
    /// Reads a key from a JWK (RFC 7517): RSA `{kty: "RSA", n, e}` with
    /// optionally `d` and all or none of `p, q, dp, dq, qi` (RFC 7518
    /// section 6.3); EC `{kty: "EC", crv: "P-256", x, y}` with optionally
    /// `d`, each exactly 32 bytes (section 6.2); OKP `{kty: "OKP", crv:
    /// "Ed25519", x}` with optionally `d` (RFC 8037 section 2). With a `d`
    /// the key is private.
    ///
    /// Strict about what RFC 7518 says MUST hold (no leading zero byte in `n`
    /// or `e`, full-length EC coordinates), so that the thumbprint of the key
    /// read is the thumbprint of the JWK given. A `use` other than `sig`, an
    /// `alg` other than the algorithm, and multi-prime RSA (`oth`) are refused.
    /// - Parameters:
    ///   - jwk: the JWK's members.
    ///   - algorithm: the algorithm to bind the key to; `nil` to take the
    ///     JWK's `alg`, or without one, to infer it from `kty` and `crv`
    ///     (RSA: RS256, EC P-256: ES256, OKP Ed25519: EdDSA).
    /// - Throws: `invalidKey` for a JWK that is malformed or of the wrong
    ///   type for the algorithm; `weakKey` for RSA under 2048 bits.
    public convenience init(jwk: JSONObject, algorithm: JWSAlgorithm? = nil) throws(JOSEError) {
        let chosen = try Self.algorithm(of: jwk, requested: algorithm)
        let (pkey, isPrivate) = try Self.readJWK(jwk, algorithm: chosen)
        try self.init(taking: pkey, algorithm: chosen, hasPrivateKey: isPrivate, checkPublicKey: true)
    }

    /// The algorithm the JWK `jwk` is read for: `requested`, else its `alg`,
    /// else what its `kty` and `crv` imply; and that must agree with them.
    private static func algorithm(of jwk: JSONObject, requested: JWSAlgorithm?) throws(JOSEError) -> JWSAlgorithm {
        guard case .string(let kty)? = jwk["kty"] else { throw .invalidKey("JWK has no \"kty\" string") }
        let implied: JWSAlgorithm
        switch kty {
        case "RSA":
            implied = .rs256
        case "EC":
            guard case .string(let curve)? = jwk["crv"] else { throw .invalidKey("EC JWK has no \"crv\" string") }
            guard curve == "P-256" else {
                throw .invalidKey("EC curve \(curve) is not supported (only P-256, for ES256)")
            }
            implied = .es256
        case "OKP":
            guard case .string(let curve)? = jwk["crv"] else { throw .invalidKey("OKP JWK has no \"crv\" string") }
            guard curve == "Ed25519" else {
                throw .invalidKey("OKP curve \(curve) is not supported (only Ed25519, for EdDSA)")
            }
            implied = .edDSA
        case "oct":
            throw .invalidKey("an oct JWK is a shared secret, not an asymmetric key")
        default:
            throw .invalidKey("JWK kty \(kty) is not supported")
        }
        var declared: JWSAlgorithm?
        if let alg = jwk["alg"] {
            guard case .string(let name) = alg, let known = JWSAlgorithm(rawValue: name) else {
                throw .invalidKey("JWK alg is not a supported algorithm")
            }
            declared = known
        }
        if let use = jwk["use"], use != .string("sig") { throw .invalidKey("JWK use is not \"sig\"") }
        let chosen = requested ?? declared ?? implied
        if let declared, declared != chosen {
            throw .invalidKey("JWK is for \(declared.rawValue), not \(chosen.rawValue)")
        }
        guard chosen == implied else { throw .invalidKey("a \(kty) JWK cannot be used with \(chosen.rawValue)") }
        return chosen
    }

    /// The key `jwk` describes (which the caller must free) and whether it is private.
    private static func readJWK(_ jwk: JSONObject, algorithm: JWSAlgorithm) throws(JOSEError) -> (
        OpaquePointer, isPrivate: Bool
    ) {
        switch algorithm {
        case .rs256: return try readRSA(jwk)
        case .es256: return try readEC(jwk)
        case .edDSA: return try readOKP(jwk)
        case .hs256, .hs384, .hs512: throw .invalidKey("\(algorithm.rawValue) is an HMAC algorithm")
        }
    }

    private static func readRSA(_ jwk: JSONObject) throws(JOSEError) -> (OpaquePointer, isPrivate: Bool) {
        let n = try member(jwk, "n")
        let e = try member(jwk, "e")
        guard n[0] != 0, e[0] != 0 else {
            throw .invalidKey("JWK n or e starts with a zero byte (RFC 7518 section 6.3.1 forbids it)")
        }
        guard jwk["oth"] == nil else { throw .invalidKey("multi-prime RSA keys (oth) are not supported") }
        let builder = try ParamBuilder()
        try builder.push("n", integer: n, secret: false)
        try builder.push("e", integer: e, secret: false)
        let names = ["p", "q", "dp", "dq", "qi"]
        var factors: [[UInt8]] = []
        defer { for index in factors.indices { cleanse(&factors[index]) } }
        for name in names {
            if let value = try optionalMember(jwk, name) { factors.append(value) }
        }
        guard var d = try optionalMember(jwk, "d") else {
            guard factors.isEmpty else { throw .invalidKey("RSA JWK has private members but no d") }
            return (try builder.makeKey(type: "RSA", selection: CCrypto_EVP_PKEY_PUBLIC_KEY), false)
        }
        defer { cleanse(&d) }
        try builder.push("d", integer: d, secret: true)
        // RFC 7518 section 6.3.2: the CRT members come all together or not at all.
        guard factors.isEmpty || factors.count == names.count else {
            throw .invalidKey("RSA JWK has some of p, q, dp, dq, qi but not all")
        }
        let parameters = ["rsa-factor1", "rsa-factor2", "rsa-exponent1", "rsa-exponent2", "rsa-coefficient1"]
        for index in factors.indices {
            try builder.push(parameters[index], integer: factors[index], secret: true)
        }
        return (try builder.makeKey(type: "RSA", selection: CCrypto_EVP_PKEY_KEYPAIR), true)
    }

    private static func readEC(_ jwk: JSONObject) throws(JOSEError) -> (OpaquePointer, isPrivate: Bool) {
        // RFC 7518 sections 6.2.1.2, 6.2.1.3, 6.2.2.1: full-length coordinates and scalar.
        let x = try member(jwk, "x", length: 32)
        let y = try member(jwk, "y", length: 32)
        let builder = try ParamBuilder()
        try builder.push(OSSL_PKEY_PARAM_GROUP_NAME, utf8: "prime256v1")
        try builder.push(OSSL_PKEY_PARAM_PUB_KEY, octets: [0x04] + x + y)
        guard var d = try optionalMember(jwk, "d", length: 32) else {
            return (try builder.makeKey(type: "EC", selection: CCrypto_EVP_PKEY_PUBLIC_KEY), false)
        }
        defer { cleanse(&d) }
        try builder.push(OSSL_PKEY_PARAM_PRIV_KEY, integer: d, secret: true)
        return (try builder.makeKey(type: "EC", selection: CCrypto_EVP_PKEY_KEYPAIR), true)
    }

    private static func readOKP(_ jwk: JSONObject) throws(JOSEError) -> (OpaquePointer, isPrivate: Bool) {
        let x = try member(jwk, "x", length: 32)
        guard var d = try optionalMember(jwk, "d", length: 32) else {
            guard let key = EVP_PKEY_new_raw_public_key_ex(nil, "ED25519", nil, x, x.count) else {
                throw .invalidKeyFromOpenSSL("the Ed25519 public key is unusable")
            }
            return (key, false)
        }
        defer { cleanse(&d) }
        guard let key = EVP_PKEY_new_raw_private_key_ex(nil, "ED25519", nil, d, d.count) else {
            throw .invalidKeyFromOpenSSL("the Ed25519 private key is unusable")
        }
        // libcrypto derives the public key from d; it must be the x given.
        var derived = [UInt8](repeating: 0, count: 32)
        var length = derived.count
        guard EVP_PKEY_get_raw_public_key(key, &derived, &length) == 1, length == 32 else {
            let error = JOSEError.openSSL("EVP_PKEY_get_raw_public_key")
            EVP_PKEY_free(key)
            throw error
        }
        guard derived == x else {
            EVP_PKEY_free(key)
            throw .invalidKey("the Ed25519 JWK's x is not the public key of its d")
        }
        return (key, true)
    }

    /// The base64url member `name`, decoded; it must be present.
    private static func member(_ jwk: JSONObject, _ name: String, length: Int? = nil) throws(JOSEError) -> [UInt8] {
        guard let bytes = try optionalMember(jwk, name, length: length) else {
            throw .invalidKey("JWK has no \"\(name)\"")
        }
        return bytes
    }

    /// The base64url member `name`, decoded, if present: non-empty, strict
    /// base64url, and `length` bytes when given.
    private static func optionalMember(_ jwk: JSONObject, _ name: String, length: Int? = nil) throws(JOSEError)
        -> [UInt8]?
    {
        guard let value = jwk[name] else { return nil }
        guard case .string(let text) = value, let bytes = Base64URL.decode(text), !bytes.isEmpty else {
            throw .invalidKey("JWK member \"\(name)\" is not base64url")
        }
        if let length, bytes.count != length {
            throw .invalidKey("JWK member \"\(name)\" is \(bytes.count) bytes, not \(length)")
        }
        return bytes
    }

    private static func cleanse(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }
}

/// An `OSSL_PARAM_BLD` and everything it points to until `makeKey`: the
/// builder keeps pointers to the BIGNUMs and buffers pushed, not copies.
/// Frees (and clears) all of it in `deinit`.
private final class ParamBuilder {
    private let builder: OpaquePointer
    private var bignums: [OpaquePointer] = []
    private var buffers: [UnsafeMutableRawBufferPointer] = []

    init() throws(JOSEError) {
        guard let builder = OSSL_PARAM_BLD_new() else { throw .openSSL("OSSL_PARAM_BLD_new") }
        self.builder = builder
    }

    deinit {
        OSSL_PARAM_BLD_free(builder)
        for bignum in bignums { BN_clear_free(bignum) }
        for buffer in buffers {
            OPENSSL_cleanse(buffer.baseAddress, buffer.count)
            buffer.deallocate()
        }
    }

    /// Pushes the unsigned big-endian integer `bytes`; `secret` keeps it in
    /// libcrypto's secure heap where there is one.
    func push(_ name: String, integer bytes: [UInt8], secret: Bool) throws(JOSEError) {
        guard let bignum = secret ? BN_secure_new() : BN_new() else { throw .openSSL("BN_new") }
        bignums.append(bignum)
        guard BN_bin2bn(bytes, Int32(bytes.count), bignum) != nil else { throw .openSSL("BN_bin2bn") }
        guard OSSL_PARAM_BLD_push_BN(builder, keep(name), bignum) == 1 else {
            throw .openSSL("OSSL_PARAM_BLD_push_BN \(name)")
        }
    }

    func push(_ name: String, utf8 value: String) throws(JOSEError) {
        let bytes = keep(value)
        guard OSSL_PARAM_BLD_push_utf8_string(builder, keep(name), bytes, 0) == 1 else {
            throw .openSSL("OSSL_PARAM_BLD_push_utf8_string \(name)")
        }
    }

    func push(_ name: String, octets: [UInt8]) throws(JOSEError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(octets.count, 1), alignment: 1)
        buffers.append(buffer)
        buffer.copyBytes(from: octets)
        guard OSSL_PARAM_BLD_push_octet_string(builder, keep(name), buffer.baseAddress, octets.count) == 1 else {
            throw .openSSL("OSSL_PARAM_BLD_push_octet_string \(name)")
        }
    }

    /// A NUL-terminated copy of `text` that lives as long as the builder.
    private func keep(_ text: String) -> UnsafePointer<CChar> {
        let characters = text.utf8.map { CChar(bitPattern: $0) } + [0]
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: characters.count)
        pointer.initialize(from: characters, count: characters.count)
        buffers.append(UnsafeMutableRawBufferPointer(start: pointer, count: characters.count))
        return UnsafePointer(pointer)
    }

    /// A key of `type` ("RSA", "EC") from the members pushed (the caller frees it).
    func makeKey(type: String, selection: Int32) throws(JOSEError) -> OpaquePointer {
        guard let parameters = OSSL_PARAM_BLD_to_param(builder) else { throw .openSSL("OSSL_PARAM_BLD_to_param") }
        defer { OSSL_PARAM_free(parameters) }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, type, nil) else {
            throw .openSSL("EVP_PKEY_CTX_new_from_name \(type)")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_fromdata_init(context) == 1 else { throw .openSSL("EVP_PKEY_fromdata_init") }
        var key: OpaquePointer?
        guard EVP_PKEY_fromdata(context, &key, selection, parameters) == 1, let key else {
            throw .invalidKeyFromOpenSSL("libcrypto refused the \(type) JWK")
        }
        return key
    }
}

// MARK: - Writing the public JWK

extension AsymmetricKey {
    /// The public JWK members of `pkey` and their RFC 7638 thumbprint.
    static func publicMembers(of pkey: OpaquePointer, algorithm: JWSAlgorithm) throws(JOSEError) -> (
        JSONObject, thumbprint: String
    ) {
        // RFC 7638 section 3.2: the required members, in lexicographic order.
        // Every value is base64url or a fixed name, so nothing needs escaping.
        let jwk: JSONObject
        let canonical: String
        switch algorithm {
        case .rs256:
            let n = Base64URL.encode(try integer(pkey, "n"))
            let e = Base64URL.encode(try integer(pkey, "e"))
            jwk = ["kty": "RSA", "n": .string(n), "e": .string(e)]
            canonical = #"{"e":"\#(e)","kty":"RSA","n":"\#(n)"}"#
        case .es256:
            let x = Base64URL.encode(try integer(pkey, OSSL_PKEY_PARAM_EC_PUB_X, length: 32))
            let y = Base64URL.encode(try integer(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, length: 32))
            jwk = ["kty": "EC", "crv": "P-256", "x": .string(x), "y": .string(y)]
            canonical = #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
        case .edDSA:
            var raw = [UInt8](repeating: 0, count: 32)
            var length = raw.count
            guard EVP_PKEY_get_raw_public_key(pkey, &raw, &length) == 1, length == 32 else {
                throw .openSSL("EVP_PKEY_get_raw_public_key")
            }
            let x = Base64URL.encode(raw)
            jwk = ["kty": "OKP", "crv": "Ed25519", "x": .string(x)]
            canonical = #"{"crv":"Ed25519","kty":"OKP","x":"\#(x)"}"#
        case .hs256, .hs384, .hs512:
            throw .invalidKey("\(algorithm.rawValue) is an HMAC algorithm")
        }
        return (jwk, Base64URL.encode(Digest.sha256(Array(canonical.utf8))))
    }

    /// The public integer parameter `name` of `pkey`, big-endian: without
    /// leading zeros, or left-padded to `length` bytes.
    private static func integer(_ pkey: OpaquePointer, _ name: String, length: Int? = nil) throws(JOSEError)
        -> [UInt8]
    {
        var bignum: OpaquePointer?
        guard EVP_PKEY_get_bn_param(pkey, name, &bignum) == 1, let bignum else {
            throw .openSSL("EVP_PKEY_get_bn_param \(name)")
        }
        defer { BN_free(bignum) }
        let count = length ?? (Int(BN_num_bits(bignum)) + 7) / 8
        guard count > 0 else { throw .invalidKey("the key's \(name) is zero") }
        var bytes = [UInt8](repeating: 0, count: count)
        guard BN_bn2binpad(bignum, &bytes, Int32(count)) == Int32(count) else {
            throw .openSSL("BN_bn2binpad \(name)")
        }
        return bytes
    }
}
