#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A value behind a `pthread_mutex_t`: the lock every shared mutable state in
/// Gatehouse uses instead of `Synchronization.Mutex`.
///
/// The API is `Mutex`'s (`withLock` with `inout sending` access), so the same
/// region rules keep a non-`Sendable` value confined to the lock. Copies share
/// one lock and one value (a reference, like swift-nio's `NIOLockedValueBox`).
///
/// Why not `Mutex`: on Linux the standard library's `Mutex` is a futex it
/// drives with its own atomics, which ThreadSanitizer does not see as a lock,
/// so every value behind one is reported as a data race (checked with a
/// ten-line program on Swift 6.3.1), and `make sanitize` could not tell those
/// from real races. TSan intercepts `pthread_mutex_lock` and
/// `pthread_mutex_unlock`, so it understands this lock. Uncontended, both cost
/// one atomic instruction to take and one to release.
public struct LockedValue<Value>: @unchecked Sendable {
    // @unchecked: the value is reached only through `withLock`, under the
    // mutex, and enters and leaves only as `sending`, exactly as with
    // `Mutex` (which is `@unchecked Sendable` for the same reason).
    private let storage: LockedValueStorage<Value>

    /// Puts `value` behind a new lock.
    public init(_ value: sending Value) {
        storage = LockedValueStorage.make(value)
    }

    /// Runs `body` with exclusive access to the value, holding the lock.
    ///
    /// Not reentrant: calling `withLock` on the same value inside `body`
    /// deadlocks (as with `Mutex`).
    /// - Parameter body: reads or changes the value; what it returns is
    ///   handed back.
    @inline(__always)
    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let value = storage.value
        let mutex = storage.mutex
        // Fails only for a lock that is not initialised, a programming error.
        let locked = pthread_mutex_lock(mutex)
        precondition(locked == 0, "pthread_mutex_lock failed: \(locked)")
        defer {
            let unlocked = pthread_mutex_unlock(mutex)
            precondition(unlocked == 0, "pthread_mutex_unlock failed: \(unlocked)")
            // The pointers are into `storage`: keep it until they are no longer used.
            withExtendedLifetime(storage) {}
        }
        return try body(&value.pointee)
    }
}

/// The value and its mutex in one allocation (the mutex must not move once
/// initialised, so it cannot live inline in a struct).
private final class LockedValueStorage<Value>: ManagedBuffer<Value, pthread_mutex_t> {
    static func make(_ value: sending Value) -> LockedValueStorage {
        let storage = unsafeDowncast(create(minimumCapacity: 1) { _ in value }, to: LockedValueStorage.self)
        storage.withUnsafeMutablePointerToElements { mutex in
            mutex.initialize(to: pthread_mutex_t())
            // Fails only for invalid attributes or no memory for a lock, which
            // a default mutex on Linux never needs.
            let rc = pthread_mutex_init(mutex, nil)
            precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
        }
        return storage
    }

    deinit {
        // The header (the value) is destroyed by ManagedBuffer itself.
        withUnsafeMutablePointerToElements { mutex in
            let rc = pthread_mutex_destroy(mutex)
            precondition(rc == 0, "pthread_mutex_destroy failed: \(rc)")
            mutex.deinitialize(count: 1)
        }
    }

    /// The value; the storage must be kept alive while it is used.
    var value: UnsafeMutablePointer<Value> { withUnsafeMutablePointerToHeader { $0 } }
    /// The mutex; the storage must be kept alive while it is used.
    var mutex: UnsafeMutablePointer<pthread_mutex_t> { withUnsafeMutablePointerToElements { $0 } }
}
