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
/// `pthread_mutex_unlock`, so it understands this lock.
///
/// `withLock` is inlinable, as `Mutex`'s is, so that other modules get it
/// specialised for their value: called as an unspecialised generic from
/// another module it cost about ten times as much. Uncontended, a locked
/// section costs about 12 ns against `Mutex`'s 6 (measured from another
/// module, Swift 6.3.1).
public struct LockedValue<Value>: @unchecked Sendable {
    // @unchecked: the value is reached only through `withLock`, under the
    // mutex, and enters and leaves only as `sending`, exactly as with
    // `Mutex` (which is `@unchecked Sendable` for the same reason).
    @usableFromInline
    let storage: LockedValueStorage<Value>

    /// Puts `value` behind a new lock.
    ///
    /// `Value` must not be zero-sized (`Void`, an empty struct): its storage
    /// would sit at the mutex's own address, and ThreadSanitizer reports the
    /// `inout` access to it under the lock against another thread finding
    /// the mutex before locking (seen in CI with `LockedValue<Void>`). Keep a
    /// counter instead.
    public init(_ value: sending Value) {
        precondition(MemoryLayout<Value>.size > 0, "LockedValue of a zero-sized type; see LockedValue.init")
        storage = LockedValueStorage.make(value)
    }

    /// Runs `body` with exclusive access to the value, holding the lock.
    ///
    /// Not reentrant: calling `withLock` on the same value inside `body`
    /// deadlocks (as with `Mutex`).
    /// - Parameter body: reads or changes the value; what it returns is
    ///   handed back.
    @inlinable
    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let mutex = storage.mutex
        lockedValueLock(mutex)
        defer {
            lockedValueUnlock(mutex)
            // The pointers are into `storage`: keep it until they are no longer used.
            withExtendedLifetime(storage) {}
        }
        // Taken under the lock: ThreadSanitizer counts reaching the header as
        // an access to it, and reported this read, made before locking,
        // against a write under the lock (the log writer's flush at exit, CI).
        let value = storage.value
        return try body(&value.pointee)
    }
}

/// The value and its mutex in one allocation (a mutex must not move once
/// initialised, so it cannot live inline in a struct). The elements are
/// words holding a `pthread_mutex_t`, so that no C type shows in what
/// `withLock` inlines into other modules.
@usableFromInline
final class LockedValueStorage<Value>: ManagedBuffer<Value, UInt64> {
    private static var mutexWords: Int {
        precondition(MemoryLayout<pthread_mutex_t>.alignment <= MemoryLayout<UInt64>.alignment)
        return (MemoryLayout<pthread_mutex_t>.size + 7) / 8
    }

    static func make(_ value: sending Value) -> LockedValueStorage {
        let storage = unsafeDowncast(
            create(minimumCapacity: mutexWords) { _ in value }, to: LockedValueStorage.self)
        storage.withUnsafeMutablePointerToElements { words in
            let mutex = UnsafeMutableRawPointer(words).bindMemory(to: pthread_mutex_t.self, capacity: 1)
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
        let mutex = self.mutex.assumingMemoryBound(to: pthread_mutex_t.self)
        let rc = pthread_mutex_destroy(mutex)
        precondition(rc == 0, "pthread_mutex_destroy failed: \(rc)")
        mutex.deinitialize(count: 1)
    }

    /// The value; the storage must be kept alive while it is used.
    @inlinable
    var value: UnsafeMutablePointer<Value> { withUnsafeMutablePointerToHeader { $0 } }

    /// The `pthread_mutex_t`; the storage must be kept alive while it is used.
    @inlinable
    var mutex: UnsafeMutableRawPointer { UnsafeMutableRawPointer(withUnsafeMutablePointerToElements { $0 }) }
}

/// Locks the `pthread_mutex_t` at `mutex`.
@usableFromInline
func lockedValueLock(_ mutex: UnsafeMutableRawPointer) {
    // Fails only for a lock that is not initialised, a programming error.
    let rc = pthread_mutex_lock(mutex.assumingMemoryBound(to: pthread_mutex_t.self))
    precondition(rc == 0, "pthread_mutex_lock failed: \(rc)")
}

/// Unlocks the `pthread_mutex_t` at `mutex`.
@usableFromInline
func lockedValueUnlock(_ mutex: UnsafeMutableRawPointer) {
    let rc = pthread_mutex_unlock(mutex.assumingMemoryBound(to: pthread_mutex_t.self))
    precondition(rc == 0, "pthread_mutex_unlock failed: \(rc)")
}
