import MicroHTTP

/// Token buckets by key, in memory: each key may act `perMinute` times in a
/// burst, and earns the right back at `perMinute` per minute.
///
/// Memory is bounded: at most `capacity` keys are held. A bucket that has
/// refilled holds no information (a fresh one would be the same), so those
/// are dropped first; if a flood of distinct keys still fills the table, the
/// least recently used half goes. The cost is that a key evicted mid-flood
/// starts again with a full bucket, which is why per-address limits count
/// IPv6 clients by /64 and why the username limit sits behind the address one.
public final class RateLimiter<Key: Hashable & Sendable>: Sendable {
    /// Actions per minute per key; also the burst.
    public let perMinute: Int
    /// Most keys held at once.
    public let capacity: Int
    private let shards: [LockedValue<[Key: Bucket]>]
    private let clock: WallClock

    struct Bucket {
        var tokens: Double
        var updated: Double
    }

    /// The outcome of asking for one action.
    public enum Decision: Sendable, Equatable {
        case allowed
        /// Refused; a token is back in `retryAfter` seconds (at least 1).
        case limited(retryAfter: Int)
    }

    /// - Parameters:
    ///   - perMinute: actions per minute per key, and the burst; must be > 0.
    ///   - capacity: most keys held at once (split over shards).
    ///   - clock: the source of "now".
    public init(perMinute: Int, capacity: Int = 65_536, clock: WallClock) {
        precondition(perMinute > 0, "a rate limit of 0 is no limiter; pass nil instead")
        self.perMinute = perMinute
        self.capacity = max(capacity, 16)
        self.clock = clock
        shards = (0..<16).map { _ in LockedValue([:]) }
    }

    private var rate: Double { Double(perMinute) / 60 }
    private var shardCapacity: Int { capacity / shards.count }

    private func shard(for key: Key) -> Int {
        Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))
    }

    /// Takes one token for `key` if there is one.
    public func take(_ key: Key) -> Decision {
        let now = clock.now
        let burst = Double(perMinute)
        let rate = rate
        let limit = shardCapacity
        return shards[shard(for: key)].withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + max(0, now - bucket.updated) * rate)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return .limited(retryAfter: max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))))
            }
            bucket.tokens -= 1
            if buckets[key] == nil, buckets.count >= limit {
                Self.evict(from: &buckets, keeping: limit / 2, burst: burst, rate: rate, now: now)
            }
            buckets[key] = bucket
            return .allowed
        }
    }

    /// Gives back one token taken for an action that turned out not to count
    /// (a login that succeeded does not use up the failure budget).
    public func refund(_ key: Key) {
        let burst = Double(perMinute)
        shards[shard(for: key)].withLock { buckets in
            guard var bucket = buckets[key] else { return }
            bucket.tokens = min(burst, bucket.tokens + 1)
            buckets[key] = bucket
        }
    }

    /// Keys held right now.
    public var count: Int { shards.reduce(0) { total, shard in total + shard.withLock { $0.count } } }

    /// Drops refilled buckets; if that is not enough, the least recently used
    /// until `keeping` remain. Runs when a shard is full, at most once per
    /// `limit / 2` new keys, so its cost is spread thin.
    private static func evict(
        from buckets: inout [Key: Bucket], keeping: Int, burst: Double, rate: Double, now: Double
    ) {
        buckets = buckets.filter { $0.value.tokens + (now - $0.value.updated) * rate < burst }
        guard buckets.count > keeping else { return }
        let newest = buckets.sorted { $0.value.updated > $1.value.updated }.prefix(keeping)
        buckets = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }
}
