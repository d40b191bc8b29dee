internal import CCrypto

/// Message digests.
public enum Digest {
    /// The SHA-256 digest of `bytes` (32 bytes).
    ///
    /// Traps if libcrypto cannot compute SHA-256 at all (a broken
    /// installation): no caller could do anything useful without it.
    public static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        if let digest = bytes.withContiguousStorageIfAvailable({ sha256($0) }) {
            return digest
        }
        return Array(bytes).withUnsafeBufferPointer { sha256($0) }
    }

    private static func sha256(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { output, initialized in
            var length: UInt32 = 0
            // A NULL input with count 0 is fine: EVP_DigestUpdate returns early for an empty update.
            let rc = EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, EVP_sha256(), nil)
            guard rc == 1, length == 32 else {
                fatalError("SHA-256 unavailable: \(JOSEError.openSSL("EVP_Digest").message)")
            }
            initialized = 32
        }
    }
}
