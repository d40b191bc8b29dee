internal import CCrypto

/// An HMAC key bound to one algorithm (RFC 2104; RFC 7518 section 3.2).
///
/// The key is scheduled once: at init, two digest contexts absorb the key
/// block XOR ipad and XOR opad (RFC 2104 section 2) and are then kept as
/// read-only templates, never finalised. Each MAC takes an idle digest
/// context from a small pool, copies the inner template into it
/// (`EVP_MD_CTX_copy_ex`), hashes the message, copies the outer template in,
/// hashes the inner digest, and gives the context back; when the pool is
/// empty a new context is made. So a MAC costs two context copies and the
/// hashing, not a key schedule or an algorithm fetch, and skips the
/// `EVP_MAC` layer (which makes the same two copies); any number of threads
/// may use one key.
public final class HMACKey: Sendable {
    /// The algorithm this key may be used with, and only that one.
    public let algorithm: JWSAlgorithm

    /// The keyed inner and outer states; only ever read, by `EVP_MD_CTX_copy_ex`.
    private let pads: PadContexts
    /// Idle working contexts, reused from one MAC to the next.
    private let contexts: DigestContextPool

    /// Schedules `secret` as an HMAC key for `algorithm`.
    ///
    /// Length policy (RFC 7518 section 3.2 asks for at least the hash size) is
    /// the caller's: this only refuses an empty secret.
    /// - Parameters:
    ///   - secret: the key bytes.
    ///   - algorithm: the one algorithm the key is used with.
    /// - Throws: `invalidKey` for an algorithm that is not HS256, HS384 or
    ///   HS512, `weakKey` for an empty secret, `cryptoFailure` if libcrypto
    ///   cannot make the contexts.
    public init(secret: [UInt8], algorithm: JWSAlgorithm) throws(JOSEError) {
        // An RS256/ES256/EdDSA key must never be usable as an HMAC secret
        // (the key-confusion attack starts with exactly that).
        guard algorithm.isSymmetric, let digestName = algorithm.digestName else {
            throw .invalidKey("\(algorithm.rawValue) is not an HMAC algorithm; use AsymmetricKey")
        }
        guard !secret.isEmpty else { throw .weakKey("HMAC secret is empty") }
        guard let digest = EVP_MD_fetch(nil, digestName, nil) else {
            throw .openSSL("fetching \(digestName)")
        }
        // The contexts initialised with it hold their own references.
        defer { EVP_MD_free(digest) }
        let pads = try PadContexts(secret: secret, digest: digest)
        // One working context up front, so that a failure shows here, not on first use.
        guard let first = EVP_MD_CTX_new() else {
            let error = JOSEError.openSSL("EVP_MD_CTX_new")
            pads.free()
            throw error
        }
        self.algorithm = algorithm
        self.pads = pads
        self.contexts = DigestContextPool(first: DigestContext(pointer: first))
    }

    deinit {
        // The pool frees its idle contexts in its own deinit.
        pads.free()
    }

    /// The MAC of `bytes` (`algorithm.macLength` bytes).
    ///
    /// Traps if libcrypto fails on a context that is already keyed, which
    /// only happens when memory runs out or the library is broken; the
    /// verifier uses a throwing path instead, so a token can never cause it.
    public func authenticationCode(for bytes: UnsafeRawBufferPointer) -> [UInt8] {
        let length = algorithm.macLength
        return [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            do {
                try authenticate(bytes, into: UnsafeMutableRawBufferPointer(buffer))
            } catch {
                fatalError("HMAC failed on a keyed context: \(error)")
            }
            initialized = length
        }
    }

    /// The MAC of `bytes` (`algorithm.macLength` bytes).
    public func authenticationCode(for bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { authenticationCode(for: $0) }
    }

    /// Writes the MAC of `input` to the start of `output`, which must hold at
    /// least `algorithm.macLength` bytes.
    func authenticate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(JOSEError) {
        let length = algorithm.macLength
        precondition(output.count >= length, "HMAC output buffer too small")
        guard let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let context = try takeContext()
        // H(K ^ opad || H(K ^ ipad || input)); the inner digest goes to
        // `output` first, which has room for it (same length as the MAC).
        var written: UInt32 = 0
        guard EVP_MD_CTX_copy_ex(context.pointer, pads.inner) == 1 else {
            throw discard(context, failed: "EVP_MD_CTX_copy_ex")
        }
        // A NULL input with count 0 is fine: EVP_DigestUpdate returns early for an empty update.
        guard EVP_DigestUpdate(context.pointer, input.baseAddress, input.count) == 1 else {
            throw discard(context, failed: "EVP_DigestUpdate")
        }
        guard EVP_DigestFinal_ex(context.pointer, out, &written) == 1, written == length else {
            throw discard(context, failed: "EVP_DigestFinal_ex (inner)")
        }
        guard EVP_MD_CTX_copy_ex(context.pointer, pads.outer) == 1 else {
            throw discard(context, failed: "EVP_MD_CTX_copy_ex")
        }
        guard EVP_DigestUpdate(context.pointer, out, length) == 1 else {
            throw discard(context, failed: "EVP_DigestUpdate")
        }
        guard EVP_DigestFinal_ex(context.pointer, out, &written) == 1, written == length else {
            throw discard(context, failed: "EVP_DigestFinal_ex (outer)")
        }
        giveBack(context)
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

    /// Frees a context whose state is unknown after a failure and returns the error to throw.
    private func discard(_ context: DigestContext, failed operation: String) -> JOSEError {
        let error = JOSEError.openSSL(operation)
        EVP_MD_CTX_free(context.pointer)
        return error
    }
}

/// The two keyed digest states of an HMAC key: after absorbing the key
/// block XOR ipad, and XOR opad. Made once, never finalised, and afterwards
/// only read (copied from), which `EVP_MD_CTX_copy_ex` allows from any
/// number of threads at once.
private struct PadContexts: @unchecked Sendable {
    let inner: OpaquePointer
    let outer: OpaquePointer

    init(secret: [UInt8], digest: OpaquePointer) throws(JOSEError) {
        let blockSize = Int(EVP_MD_get_block_size(digest))
        let digestSize = Int(EVP_MD_get_size(digest))
        guard blockSize > 0, digestSize > 0, digestSize <= blockSize else {
            throw .cryptoFailure(operation: "reading the digest's block size", opensslCode: 0)
        }
        // RFC 2104 section 2: a key longer than the block is hashed first;
        // then it is padded with zeros to the block size.
        var block = [UInt8](repeating: 0, count: blockSize)
        defer { block.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        if secret.count > blockSize {
            var length: UInt32 = 0
            let rc = secret.withUnsafeBytes { key in
                block.withUnsafeMutableBufferPointer { block in
                    EVP_Digest(key.baseAddress, key.count, block.baseAddress, &length, digest, nil)
                }
            }
            guard rc == 1, Int(length) == digestSize else { throw .openSSL("hashing a long HMAC key") }
        } else {
            block.replaceSubrange(0..<secret.count, with: secret)
        }

        guard let inner = Self.context(digest: digest, absorbing: block, xor: 0x36) else {
            throw .openSSL("keying the inner digest")
        }
        guard let outer = Self.context(digest: digest, absorbing: block, xor: 0x5C) else {
            let error = JOSEError.openSSL("keying the outer digest")
            EVP_MD_CTX_free(inner)
            throw error
        }
        self.inner = inner
        self.outer = outer
    }

    /// A digest context that has absorbed `block` with every byte XOR `pad`.
    private static func context(digest: OpaquePointer, absorbing block: [UInt8], xor pad: UInt8) -> OpaquePointer? {
        var padded = block.map { $0 ^ pad }
        defer { padded.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        guard let context = EVP_MD_CTX_new() else { return nil }
        let ok = padded.withUnsafeBytes { bytes in
            EVP_DigestInit_ex(context, digest, nil) == 1
                && EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1
        }
        guard ok else {
            EVP_MD_CTX_free(context)
            return nil
        }
        return context
    }

    func free() {
        EVP_MD_CTX_free(inner)
        EVP_MD_CTX_free(outer)
    }
}
