#if canImport(Glibc)
    import Glibc
#endif

/// `X-Request-Id`: the name that ties a request's log line, its security
/// events and its response together (and, behind a proxy that sets it, the
/// proxy's own logs).
///
/// The server keeps the one a request brings when it is sane (`isAcceptable`),
/// makes one otherwise (`generate`), puts it in the request's headers before
/// any handler runs (replacing one that was not sane), and returns it on
/// every response it sends.
public enum RequestID {
    /// The header field that carries it, in both directions.
    public static let headerName = "X-Request-Id"

    /// The longest value kept from a request.
    public static let maximumLength = 128

    /// Whether a request's own id is kept: 1 to 128 characters, each a letter,
    /// a digit or one of `.`, `_`, `:`, `-`. That covers UUIDs and the ids
    /// nginx, Envoy and load balancers make, and leaves nothing that could
    /// break a log line or a header.
    public static func isAcceptable(_ value: some StringProtocol) -> Bool {
        var length = 0
        for byte in value.utf8 {
            length += 1
            guard length <= maximumLength, isAllowed(byte) else { return false }
        }
        return length > 0
    }

    @inline(__always)
    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
            UInt8(ascii: "-"):
            true
        default: false
        }
    }

    /// The length of a generated id.
    public static let generatedLength = 15

    /// A new id: 15 characters of the base64url alphabet, 90 random bits
    /// (two ids are alike about once in 10^27 draws), from the kernel's
    /// random generator.
    ///
    /// Fifteen characters is the longest a Swift string holds inline, so a
    /// new id costs no allocation; the random bytes are fetched 4 KiB at a
    /// time per thread, so it costs no system call either (one per 341 ids).
    public static func generate() -> String {
        let (high, low) = RandomPool.current.next96()
        return String(unsafeUninitializedCapacity: generatedLength) { output in
            // 60 bits of `high`, then its last 4 and 26 of `low`: 90 in all.
            var bits = high
            for index in 0..<10 {
                output[index] = base64URL(bits >> 58)
                bits <<= 6
            }
            bits = high << 60 | UInt64(low) << 28
            for index in 10..<generatedLength {
                output[index] = base64URL(bits >> 58)
                bits <<= 6
            }
            return generatedLength
        }
    }

    /// The base64url character for a value below 64 (RFC 4648 section 5).
    @inline(__always)
    private static func base64URL(_ value: UInt64) -> UInt8 {
        let value = UInt8(truncatingIfNeeded: value)
        switch value {
        case 0..<26: return UInt8(ascii: "A") + value
        case 26..<52: return UInt8(ascii: "a") + value - 26
        case 52..<62: return UInt8(ascii: "0") + value - 52
        case 62: return UInt8(ascii: "-")
        default: return UInt8(ascii: "_")
        }
    }
}

/// Random bytes for one thread, fetched from the kernel 4 KiB at a time
/// (`arc4random_buf` is one `getrandom(2)` per call in glibc 2.36: about
/// 0.7 us, more than the rest of what the server adds to a request).
private final class RandomPool {
    private static let size = 4092
    private let bytes = UnsafeMutableRawPointer.allocate(byteCount: RandomPool.size, alignment: 8)
    private var offset = RandomPool.size

    deinit { bytes.deallocate() }

    /// The next 96 random bits.
    func next96() -> (UInt64, UInt32) {
        if offset + 12 > Self.size {
            arc4random_buf(bytes, Self.size)
            offset = 0
        }
        defer { offset += 12 }
        return (
            bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
            bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
        )
    }

    /// The calling thread's pool, made on first use and freed when the thread ends.
    static var current: RandomPool {
        if let stored = pthread_getspecific(key) {
            return Unmanaged<RandomPool>.fromOpaque(stored).takeUnretainedValue()
        }
        let pool = RandomPool()
        pthread_setspecific(key, Unmanaged.passRetained(pool).toOpaque())
        return pool
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { stored in
            guard let stored else { return }
            Unmanaged<RandomPool>.fromOpaque(stored).release()
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()
}
