import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A fixed block of 64-bit counters that threads add to without a lock and
/// without sharing a cache line: every counter has one cell per shard, each
/// thread adds to the cells of its own shard (`ThreadShard`), and a read sums
/// the shards.
///
/// Every cell is a `Synchronization.Atomic` (relaxed adds), which
/// ThreadSanitizer understands. Sharding keeps two HTTP threads counting the
/// same route from bouncing one cache line between their cores. A read is not
/// a snapshot of the whole block: a counter read while others are added to is
/// exact for itself, and never goes down.
@usableFromInline
final class CounterCells: @unchecked Sendable {
    // @unchecked: `cells` is allocated and initialised in `init`, freed in
    // `deinit`, never reassigned; every access to a cell is an atomic operation.
    private let cells: UnsafeMutablePointer<Atomic<UInt64>>
    /// Counters in the block.
    let count: Int
    /// Cells per counter: one per shard (a power of two).
    let shards: Int
    /// Cells from one shard's block to the next: `count` rounded up to whole
    /// 128-byte lines (two, for the adjacent-line prefetcher), so shards
    /// never share one.
    private let stride: Int

    /// - Parameters:
    ///   - count: counters in the block (at least 1 is made).
    ///   - shards: blocks of cells; the threads that add most should each
    ///     have one (rounded up to a power of two, at most 64).
    init(count: Int, shards: Int = CounterCells.defaultShards) {
        self.count = max(1, count)
        var rounded = 1
        while rounded < min(64, shards) { rounded <<= 1 }
        self.shards = rounded
        let perLine = 128 / MemoryLayout<Atomic<UInt64>>.stride
        stride = (self.count + perLine - 1) / perLine * perLine
        let total = stride * self.shards
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: total * MemoryLayout<Atomic<UInt64>>.stride, alignment: 128)
        cells = raw.bindMemory(to: Atomic<UInt64>.self, capacity: total)
        for index in 0..<total { (cells + index).initialize(to: Atomic(0)) }
    }

    deinit {
        cells.deinitialize(count: stride * shards)
        UnsafeMutableRawPointer(cells).deallocate()
    }

    /// Shards for counters every kind of thread adds to: one per core, up to 16.
    static var defaultShards: Int { min(16, max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) }

    /// Adds `amount` to counter `index` (0 ..< `count`; not checked in release builds).
    @usableFromInline
    func add(_ index: Int, _ amount: UInt64 = 1) {
        assert(index >= 0 && index < count, "counter index out of range")
        let shard = shards == 1 ? 0 : ThreadShard.current & (shards &- 1)
        cells[shard &* stride &+ index].wrappingAdd(amount, ordering: .relaxed)
    }

    /// Counter `index` summed over the shards.
    func value(_ index: Int) -> UInt64 {
        var total: UInt64 = 0
        for shard in 0..<shards { total &+= cells[shard * stride + index].load(ordering: .relaxed) }
        return total
    }
}

/// A small number per thread, which picks its shard of a `CounterCells`
/// block. The HTTP threads, which count on every request, take theirs from a
/// sequence of their own (`claimForHTTPThread`, when a thread gets its first
/// connection): n HTTP threads are 0 ..< n, and with a shard per HTTP thread
/// no two of them share one. Any other thread takes the next number of a
/// second sequence the first time it counts something; those (workers) count
/// other things, and rarely.
enum ThreadShard {
    /// The calling thread's number.
    @inline(__always)
    static var current: Int {
        if let stored = pthread_getspecific(key) { return (Int(bitPattern: stored) &- 1) >> 1 }
        let assigned = nextOther.wrappingAdd(1, ordering: .relaxed).oldValue
        store(assigned, http: false)
        return assigned
    }

    /// Gives the calling thread the next number of the HTTP threads' own
    /// sequence, unless it has one already. Cheap enough for once per connection.
    static func claimForHTTPThread() {
        if let stored = pthread_getspecific(key), (Int(bitPattern: stored) &- 1) & 1 == 1 { return }
        store(nextHTTP.wrappingAdd(1, ordering: .relaxed).oldValue, http: true)
    }

    /// Kept as `number << 1 | http`, plus one: NULL means "none yet".
    private static func store(_ number: Int, http: Bool) {
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: (number << 1 | (http ? 1 : 0)) &+ 1))
    }

    private static let nextHTTP = Atomic<Int>(0)
    private static let nextOther = Atomic<Int>(0)

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // Fails only when the process has used up its thread-specific keys
        // (1024 on Linux), long before this runs.
        let rc = pthread_key_create(&key, nil)
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()
}
