internal import CCrypto

/// Cryptographically secure random bytes from OpenSSL's DRBG.
public enum SecureRandom {
    /// `count` random bytes from `RAND_bytes`.
    ///
    /// Traps if OpenSSL cannot produce them: without a working random
    /// generator no secret, token id or salt this process makes would be
    /// safe, so carrying on would be worse than stopping.
    /// - Parameter count: how many bytes, from 0 to `Int32.max`.
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= Int(Int32.max), "SecureRandom.bytes: count \(count) out of range")
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            guard RAND_bytes(buffer.baseAddress, Int32(count)) == 1 else {
                let error = JOSEError.openSSL("RAND_bytes")
                fatalError("no secure randomness available, refusing to continue: \(error.message)")
            }
            initialized = count
        }
    }
}
