#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a verifier's signature cache holds and how it has been used.
public struct SignatureCacheStatistics: Sendable, Equatable {
    /// The most entries the cache keeps.
    public let capacity: Int
    /// The entries it holds now.
    public let entries: Int
    /// Lookups that found the token, so its signature was not checked again.
    public let hits: Int
    /// Lookups that did not.
    public let misses: Int

    /// - Parameters:
    ///   - capacity: the most entries kept.
    ///   - entries: the entries held.
    ///   - hits: lookups that found their token.
    ///   - misses: lookups that did not.
    public init(capacity: Int, entries: Int, hits: Int, misses: Int) {
        self.capacity = capacity
        self.entries = entries
        self.hits = hits
        self.misses = misses
    }
}

/// Tokens whose asymmetric signature has been verified, so that the same
/// token presented again skips the signature check (an RS256, ES256 or
/// EdDSA verification costs tens of microseconds; the lookup well under one).
///
/// An entry is the complete token (signing input and signature) and the
/// position in the ring of the key that verified it; a lookup finds it by a
/// randomly seeded hash of the token (`Hasher`), then compares every byte
/// and the key, so no other token and no other key can ever hit it. Only
/// tokens that passed every check are added (the verifier adds them after
/// the claims), and a hit skips nothing but the signature check.
///
/// Bounded: at most `capacity` entries, split over up to 16 shards by hash,
/// each with its own `pthread_mutex_t` (not `Synchronization.Mutex`, which
/// ThreadSanitizer cannot see; see `DigestContextPool`) and evicting its
/// oldest entry when full.
final class SignatureCache: Sendable {
    let capacity: Int
    private let shards: [SignatureCacheShard]

    /// - Parameter capacity: the most entries kept; at least 1.
    init(capacity: Int) {
        precondition(capacity > 0, "SignatureCache capacity must be positive")
        self.capacity = capacity
        let count = min(16, capacity)
        shards = (0..<count).map { index in
            SignatureCacheShard(capacity: capacity / count + (index < capacity % count ? 1 : 0))
        }
    }

    /// The hash that places `token` in the cache.
    static func hash(_ token: UnsafeBufferPointer<UInt8>) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(token))
        return hasher.finalize()
    }

    /// Whether `token`, whose hash is `hash`, was verified with the ring's key at `keyIndex`.
    func contains(_ token: UnsafeBufferPointer<UInt8>, hash: Int, keyIndex: Int) -> Bool {
        shard(for: hash).contains(token, hash: hash, keyIndex: keyIndex)
    }

    /// Notes that `token` passed verification with the ring's key at `keyIndex`.
    func insert(_ token: UnsafeBufferPointer<UInt8>, hash: Int, keyIndex: Int) {
        // Copied before taking the lock.
        let entry = SignatureCacheEntry(hash: hash, keyIndex: keyIndex, token: Array(token))
        shard(for: hash).insert(entry)
    }

    var statistics: SignatureCacheStatistics {
        var entries = 0
        var hits = 0
        var misses = 0
        for shard in shards {
            let counts = shard.counts
            entries += counts.entries
            hits += counts.hits
            misses += counts.misses
        }
        return SignatureCacheStatistics(capacity: capacity, entries: entries, hits: hits, misses: misses)
    }

    private func shard(for hash: Int) -> SignatureCacheShard {
        shards[Int(UInt(bitPattern: hash) % UInt(shards.count))]
    }
}

/// One verified token.
private struct SignatureCacheEntry {
    let hash: Int
    let keyIndex: Int
    let token: [UInt8]
}

/// A shard's entries in a fixed ring of slots (the oldest is replaced when
/// it is full), with an index from hash to slot.
private struct SignatureCacheShardState {
    var slots: [SignatureCacheEntry?]
    var slotByHash: [Int: Int] = [:]
    var next = 0
    var count = 0
    var hits = 0
    var misses = 0
}

/// One shard: its state behind a pthread mutex.
private final class SignatureCacheShard: @unchecked Sendable {
    // @unchecked: `state` is read and written only with `mutex` held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Behind a pointer rather than in a `var`, as in `DigestContextPool`:
    /// no run-time exclusivity check on each use; the mutex makes it exclusive.
    private let state: UnsafeMutablePointer<SignatureCacheShardState>
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        state = .allocate(capacity: 1)
        state.initialize(to: SignatureCacheShardState(slots: Array(repeating: nil, count: capacity)))
        state.pointee.slotByHash.reserveCapacity(capacity)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // Fails only for invalid attributes or no memory for a lock, which a
        // default mutex on Linux never needs.
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func contains(_ token: UnsafeBufferPointer<UInt8>, hash: Int, keyIndex: Int) -> Bool {
        lock()
        defer { unlock() }
        if let slot = state.pointee.slotByHash[hash], let entry = state.pointee.slots[slot],
            entry.keyIndex == keyIndex,
            entry.token.withUnsafeBytes({ constantTimeEquals($0, UnsafeRawBufferPointer(token)) })
        {
            state.pointee.hits += 1
            return true
        }
        state.pointee.misses += 1
        return false
    }

    func insert(_ entry: SignatureCacheEntry) {
        lock()
        defer { unlock() }
        if let slot = state.pointee.slotByHash[entry.hash] {
            // The same token verified twice at once, or another with the same hash: the newer wins.
            state.pointee.slots[slot] = entry
            return
        }
        let slot = state.pointee.next
        if let old = state.pointee.slots[slot] {
            state.pointee.slotByHash[old.hash] = nil
        } else {
            state.pointee.count += 1
        }
        state.pointee.slots[slot] = entry
        state.pointee.slotByHash[entry.hash] = slot
        state.pointee.next = (slot + 1) % capacity
    }

    var counts: (entries: Int, hits: Int, misses: Int) {
        lock()
        defer { unlock() }
        return (state.pointee.count, state.pointee.hits, state.pointee.misses)
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
