/// The upper bounds of a histogram's buckets, in seconds, strictly
/// increasing; the `+Inf` bucket is implied.
public struct HistogramBuckets: Sendable, Equatable, ExpressibleByArrayLiteral {
    /// The bounds, in seconds.
    public let bounds: [Double]
    /// The same in nanoseconds, what observations are compared with.
    let nanoseconds: [UInt64]

    /// - Parameter bounds: finite, positive, strictly increasing; at least one.
    public init(_ bounds: [Double]) {
        precondition(!bounds.isEmpty, "a histogram needs at least one bucket bound")
        precondition(bounds.allSatisfy { $0.isFinite && $0 > 0 }, "bucket bounds must be finite and positive")
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bucket bounds must increase")
        self.bounds = bounds
        nanoseconds = bounds.map { UInt64(($0 * 1e9).rounded()) }
    }

    /// `[0.001, 0.01, 0.1]`: the bounds, as for `init(_:)`.
    public init(arrayLiteral bounds: Double...) { self.init(bounds) }

    /// For request durations: from a token check (well under a millisecond)
    /// to a password hash under load (seconds), about three per decade.
    public static let requestDurations: HistogramBuckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    /// The bucket an observation counts in: the first whose bound it does
    /// not exceed (Prometheus' `le`), or `bounds.count` for `+Inf`.
    @inline(__always)
    func index(nanoseconds value: UInt64) -> Int {
        var index = 0
        while index < nanoseconds.count, value > nanoseconds[index] { index &+= 1 }
        return index
    }

    /// Writes one histogram's samples from its per-bucket (not cumulative)
    /// counts, `bounds.count + 1` of them, and its sum in nanoseconds.
    func write(
        _ name: String, labels: [(String, String)], counts: [UInt64], sumNanoseconds: UInt64,
        to exposition: inout TextExposition
    ) {
        var cumulative: UInt64 = 0
        for (index, count) in counts.enumerated() {
            cumulative &+= count
            let bound = index < bounds.count ? TextExposition.format(bounds[index]) : "+Inf"
            exposition.sample(name + "_bucket", labels + [("le", bound)], cumulative)
        }
        exposition.sample(name + "_sum", labels, Double(sumNanoseconds) / 1e9)
        exposition.sample(name + "_count", labels, cumulative)
    }
}

/// A histogram of durations (a Prometheus `histogram`): counts per bucket
/// and the sum, each a sharded atomic counter, so observing takes no lock.
/// The sum is kept in whole nanoseconds.
///
/// Register it with `MetricsRegistry.register(_:name:help:)`.
public final class Histogram: Sendable {
    /// Its bucket bounds.
    public let buckets: HistogramBuckets
    /// Per bucket (the last is `+Inf`), then the sum in nanoseconds.
    let cells: CounterCells

    /// An empty histogram with `buckets`.
    public init(buckets: HistogramBuckets = .requestDurations) {
        self.buckets = buckets
        cells = CounterCells(count: buckets.bounds.count + 2)
    }

    /// Counts one observation of `nanoseconds`.
    public func observe(nanoseconds: UInt64) {
        cells.add(buckets.index(nanoseconds: nanoseconds))
        cells.add(buckets.bounds.count + 1, nanoseconds)
    }

    /// Counts one observation of `seconds` (negative counts as 0).
    public func observe(seconds: Double) {
        observe(nanoseconds: seconds > 0 ? UInt64(min(seconds * 1e9, Double(UInt64.max / 2))) : 0)
    }

    /// Observations so far.
    public var count: UInt64 { (0...buckets.bounds.count).reduce(0) { $0 &+ cells.value($1) } }

    /// The sum of the observations, in seconds.
    public var sum: Double { Double(cells.value(buckets.bounds.count + 1)) / 1e9 }

    func write(_ name: String, to exposition: inout TextExposition) {
        buckets.write(
            name, labels: [], counts: (0...buckets.bounds.count).map(cells.value),
            sumNanoseconds: cells.value(buckets.bounds.count + 1), to: &exposition)
    }
}
