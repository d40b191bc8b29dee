internal import CCrypto

/// Whether `a` and `b` hold the same bytes, in time that depends only on
/// their length (`CRYPTO_memcmp`), so that comparing a MAC an attacker sent
/// with the right one leaks nothing about how many leading bytes matched.
///
/// Arrays of different lengths are unequal (lengths are not secret).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { a in
        b.withUnsafeBytes { b in constantTimeEquals(a, b) }
    }
}

/// `constantTimeEquals` on raw buffers.
func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    guard let left = a.baseAddress, let right = b.baseAddress else { return a.count == 0 }
    return CRYPTO_memcmp(left, right, a.count) == 0
}
