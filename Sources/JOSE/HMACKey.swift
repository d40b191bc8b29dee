internal import CCrypto
import Synchronization

/// An HMAC key bound to one algorithm (RFC 2104; RFC 7518 section 3.2).
///
/// The key is scheduled once: a keyed `EVP_MAC_CTX` template is made at
/// init and never used to produce a MAC itself (a context that has been
/// finalised is not a safe template). Each MAC takes an idle context from a
/// small pool, resets it to the keyed state with `EVP_MAC_init(ctx, NULL, 0,
/// NULL)`, and gives it back; when the pool is empty a new context is
/// duplicated from the template. So a MAC costs one reset, update and final,
/// not a key schedule or an algorithm fetch, and any number of threads may
/// use one key.
public final class HMACKey: Sendable {
    /// The algorithm this key may be used with, and only that one.
    public let algorithm: JWSAlgorithm

    private let contexts: Mutex<ContextPool>

    /// Idle contexts beyond this many are freed rather than kept.
    private static let maxIdleContexts = 64

    /// Schedules `secret` as an HMAC key for `algorithm`.
    ///
    /// Length policy (RFC 7518 section 3.2 asks for at least the hash size) is
    /// the caller's: this only refuses an empty secret.
    /// - Parameters:
    ///   - secret: the key bytes.
    ///   - algorithm: the one algorithm the key is used with.
    /// - Throws: `weakKey` for an empty secret, `cryptoFailure` if libcrypto
    ///   cannot make the context.
    public init(secret: [UInt8], algorithm: JWSAlgorithm) throws(JOSEError) {
        guard !secret.isEmpty else { throw .weakKey("HMAC secret is empty") }
        let template = secret.withUnsafeBufferPointer { key in
            CCrypto_hmac_ctx_new(algorithm.digestName, key.baseAddress, key.count)
        }
        guard let template else { throw .openSSL("creating an HMAC-\(algorithm.digestName) context") }
        // One working context up front, so that a failure shows here, not on first use.
        guard let first = EVP_MAC_CTX_dup(template) else {
            let error = JOSEError.openSSL("EVP_MAC_CTX_dup")
            EVP_MAC_CTX_free(template)
            throw error
        }
        self.algorithm = algorithm
        self.contexts = Mutex(ContextPool(template: MACContext(pointer: template), idle: [MACContext(pointer: first)]))
    }

    deinit {
        contexts.withLock { pool in
            for context in pool.idle { EVP_MAC_CTX_free(context.pointer) }
            pool.idle.removeAll()
            EVP_MAC_CTX_free(pool.template.pointer)
        }
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
        let context = try takeContext()
        guard EVP_MAC_init(context.pointer, nil, 0, nil) == 1 else {
            throw discard(context, failed: "EVP_MAC_init")
        }
        if let data = input.baseAddress, input.count > 0 {
            guard EVP_MAC_update(context.pointer, data.assumingMemoryBound(to: UInt8.self), input.count) == 1 else {
                throw discard(context, failed: "EVP_MAC_update")
            }
        }
        var written = 0
        let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard EVP_MAC_final(context.pointer, out, &written, output.count) == 1 else {
            throw discard(context, failed: "EVP_MAC_final")
        }
        guard written == length else {
            EVP_MAC_CTX_free(context.pointer)
            throw .cryptoFailure(operation: "EVP_MAC_final (wrote \(written) of \(length) bytes)", opensslCode: 0)
        }
        giveBack(context)
    }

    // MARK: - Context pool

    private func takeContext() throws(JOSEError) -> MACContext {
        try contexts.withLock { (pool) throws(JOSEError) -> MACContext in
            if let context = pool.idle.popLast() { return context }
            guard let copy = EVP_MAC_CTX_dup(pool.template.pointer) else { throw .openSSL("EVP_MAC_CTX_dup") }
            return MACContext(pointer: copy)
        }
    }

    private func giveBack(_ context: MACContext) {
        let surplus = contexts.withLock { pool -> MACContext? in
            guard pool.idle.count < Self.maxIdleContexts else { return context }
            pool.idle.append(context)
            return nil
        }
        if let surplus { EVP_MAC_CTX_free(surplus.pointer) }
    }

    /// Frees a context whose state is unknown after a failure and returns the error to throw.
    private func discard(_ context: MACContext, failed operation: String) -> JOSEError {
        let error = JOSEError.openSSL(operation)
        EVP_MAC_CTX_free(context.pointer)
        return error
    }
}

/// An `EVP_MAC_CTX` with exactly one owner at a time: the pool while idle, or
/// the one call that took it out. That single ownership, enforced by the
/// pool's lock, is what makes moving it between threads safe.
private struct MACContext: @unchecked Sendable {
    let pointer: OpaquePointer
}

private struct ContextPool {
    /// Keyed, never finalised; only ever read, by `EVP_MAC_CTX_dup`.
    let template: MACContext
    var idle: [MACContext]
}
