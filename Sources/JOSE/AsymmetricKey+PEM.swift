internal import CCrypto

extension AsymmetricKey {
    /// The longest PEM text read (a 8192-bit RSA private key is about 6.4 KB).
    static let maxPEMBytes = 65_536

    /// Reads a key from PEM text: a PKCS#8 private key (`BEGIN PRIVATE
    /// KEY`), a traditional `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE
    /// KEY`, or a SubjectPublicKeyInfo public key (`BEGIN PUBLIC KEY`).
    /// Encrypted keys are refused (nothing ever prompts for a passphrase).
    /// - Parameters:
    ///   - pem: the PEM text; other blocks around the key (`EC PARAMETERS`) are skipped.
    ///   - algorithm: RS256, ES256 or EdDSA; the key must be of its type and curve.
    /// - Throws: `invalidKey` for text that holds no readable key, a key of
    ///   the wrong type for `algorithm` (an EC key for RS256, a P-384 key for
    ///   ES256, an X25519 key for EdDSA), or an HMAC algorithm; `weakKey` for
    ///   RSA under 2048 bits.
    public convenience init(pem: String, algorithm: JWSAlgorithm) throws(JOSEError) {
        guard !algorithm.isSymmetric else {
            throw .invalidKey("\(algorithm.rawValue) is an HMAC algorithm; use SigningKey.hmac")
        }
        let (pkey, isPrivate) = try Self.readPEM(pem)
        try self.init(taking: pkey, algorithm: algorithm, hasPrivateKey: isPrivate, checkPublicKey: true)
    }

    /// The key in `text` (which the caller must free) and whether it is private.
    private static func readPEM(_ text: String) throws(JOSEError) -> (OpaquePointer, isPrivate: Bool) {
        guard text.utf8.count <= maxPEMBytes else { throw .invalidKey("PEM text over \(maxPEMBytes) bytes") }
        let isPrivate: Bool
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED") {
            throw .invalidKey("encrypted private keys are not supported; decrypt it first")
        } else if text.contains("PRIVATE KEY-----") {
            isPrivate = true
        } else if text.contains("-----BEGIN PUBLIC KEY-----") {
            isPrivate = false
        } else {
            throw .invalidKey("no PEM private key (BEGIN PRIVATE KEY) or public key (BEGIN PUBLIC KEY) found")
        }
        var bytes = Array(text.utf8)
        // The copy may hold a private key.
        defer { bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        let result = bytes.withUnsafeBytes { (buffer) -> Result<OpaquePointer, JOSEError> in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else {
                return .failure(.openSSL("BIO_new_mem_buf"))
            }
            defer { BIO_free(bio) }
            let key = isPrivate ? CCrypto_PEM_read_private_key(bio) : CCrypto_PEM_read_public_key(bio)
            guard let key else {
                return .failure(.invalidKeyFromOpenSSL("the PEM \(isPrivate ? "private" : "public") key is unreadable"))
            }
            // Blocks skipped on the way may have left notes on the queue.
            ERR_clear_error()
            return .success(key)
        }
        return (try result.get(), isPrivate)
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`),
    /// unencrypted: store it where only the service can read it.
    /// - Throws: `invalidKey` if the key is public only.
    public func privateKeyPEM() throws(JOSEError) -> String {
        guard hasPrivateKey else { throw .invalidKey("a public key has no private key PEM") }
        let pkey = engine.pkey
        // A secure-memory BIO clears its buffer when freed.
        return try Self.writePEM(BIO_s_secmem(), "PEM_write_bio_PrivateKey") { bio in
            PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil)
        }
    }

    /// The public key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    public func publicKeyPEM() throws(JOSEError) -> String {
        let pkey = engine.pkey
        return try Self.writePEM(BIO_s_mem(), "PEM_write_bio_PUBKEY") { bio in PEM_write_bio_PUBKEY(bio, pkey) }
    }

    private static func writePEM(
        _ method: OpaquePointer?, _ operation: String, _ write: (OpaquePointer) -> Int32
    ) throws(JOSEError) -> String {
        guard let bio = BIO_new(method) else { throw .openSSL("BIO_new") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw .openSSL(operation) }
        var contents: UnsafePointer<CChar>?
        let length = CCrypto_BIO_mem_contents(bio, &contents)
        guard length > 0, let contents else { throw .openSSL("BIO_get_mem_data") }
        return String(
            decoding: UnsafeRawBufferPointer(start: contents, count: Int(length)).bindMemory(to: UInt8.self),
            as: UTF8.self)
    }
}
