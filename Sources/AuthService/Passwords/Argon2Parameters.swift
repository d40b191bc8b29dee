/// Argon2id cost parameters (RFC 9106 section 3.1).
///
/// The defaults are the OWASP Password Storage Cheat Sheet minimum for Argon2id: m = 19 MiB,
/// t = 2, p = 1. libargon2 refuses `iterations < 1`, `parallelism < 1` and `memoryKiB < 8 × parallelism`;
/// ``PasswordHasher/init(parameters:)`` reports that.
public struct Argon2Parameters: Sendable, Equatable {
    /// Memory cost `m` in KiB.
    public var memoryKiB: UInt32
    /// Time cost `t`: passes over the memory.
    public var iterations: UInt32
    /// Parallelism `p`: lanes (libargon2 runs them on that many threads).
    public var parallelism: UInt32

    /// Creates parameters; the defaults are the OWASP minimum.
    /// - Parameters:
    ///   - memoryKiB: memory cost in KiB (default 19456, 19 MiB).
    ///   - iterations: time cost (default 2).
    ///   - parallelism: lanes (default 1).
    public init(memoryKiB: UInt32 = 19456, iterations: UInt32 = 2, parallelism: UInt32 = 1) {
        self.memoryKiB = memoryKiB
        self.iterations = iterations
        self.parallelism = parallelism
    }
}
