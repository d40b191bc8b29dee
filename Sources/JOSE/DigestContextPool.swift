internal import CCrypto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An `EVP_MD_CTX` with exactly one owner at a time: the pool while idle, or
/// the one call that took it out. That single ownership, enforced by the
/// pool's lock, is what makes moving it between threads safe. It holds no
/// key of its own: every use overwrites it from a keyed template first
/// (`HMACKey`'s pad contexts, `AsymmetricKey`'s sign and verify contexts).
struct DigestContext: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// The idle `DigestContext`s of one key, behind a `pthread_mutex_t`; frees
/// them when the key goes.
///
/// Not `Synchronization.Mutex`: ThreadSanitizer does not see that futex-based
/// lock as one and reports the array behind it as a data race, so
/// `make sanitize` could not tell them from real races; it understands pthread
/// mutexes. (MicroHTTP's `LockedValue` is the same idea; JOSE does not depend
/// on MicroHTTP.)
final class DigestContextPool: @unchecked Sendable {
    // @unchecked: `idle` is read and written only with `mutex` held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Behind a pointer rather than in a `var`: a class's `var` is checked
    /// for exclusive access at run time on every use, which tripled the cost
    /// of taking and giving back a context; the mutex already makes it exclusive.
    private let idle: UnsafeMutablePointer<[DigestContext]>

    /// Idle contexts beyond this many are freed rather than kept.
    private static let maxIdleContexts = 64

    init(first: DigestContext) {
        var contexts = [first]
        contexts.reserveCapacity(Self.maxIdleContexts)
        idle = .allocate(capacity: 1)
        idle.initialize(to: contexts)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // Fails only for invalid attributes or no memory for a lock, which a
        // default mutex on Linux never needs.
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        for context in idle.pointee { EVP_MD_CTX_free(context.pointer) }
        idle.deinitialize(count: 1)
        idle.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// An idle context, if there is one.
    @inline(__always)
    func take() -> DigestContext? {
        lock()
        defer { unlock() }
        return idle.pointee.popLast()
    }

    /// Keeps `context` for reuse; `false` if the pool is full (the caller frees it).
    @inline(__always)
    func keep(_ context: DigestContext) -> Bool {
        lock()
        defer { unlock() }
        guard idle.pointee.count < Self.maxIdleContexts else { return false }
        idle.pointee.append(context)
        return true
    }

    private func lock() {
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed: \(rc)")
    }

    private func unlock() {
        let rc = pthread_mutex_unlock(mutex)
        precondition(rc == 0, "pthread_mutex_unlock failed: \(rc)")
    }
}
