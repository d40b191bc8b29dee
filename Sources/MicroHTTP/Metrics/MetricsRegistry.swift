/// The metrics a process exports, rendered on demand in the Prometheus text
/// exposition format (version 0.0.4) for `GET /metrics`.
///
/// What is registered: counters and histograms that code updates as things
/// happen (`Counter`, `LabelledCounters`, `Histogram`), and gauges and
/// counters that are read only when scraped (closures: a queue depth, the
/// process' memory). Register everything before serving; names must be
/// unique and valid Prometheus names (checked: a clash is a programming error).
public final class MetricsRegistry: Sendable {
    private let families = LockedValue<[any MetricFamily]>([])

    /// `Content-Type` of `exposition()`.
    public static let contentType = TextExposition.contentType

    /// An empty registry.
    public init() {}

    /// Exports `counter` as `name` (which should end in `_total`).
    public func register(_ counter: Counter, name: String, help: String) {
        add(CallbackFamily(name: name, help: help, type: .counter, labelName: nil) { [("", Double(counter.value))] })
    }

    /// Exports `counters` as `name{label="<value>"}`, one series per value of `Label`.
    public func register<Label: MetricLabelValue>(
        _ counters: LabelledCounters<Label>, name: String, help: String, label: String
    ) {
        add(LabelledCounterFamily(name: name, help: help, label: label, counters: counters))
    }

    /// Exports `histogram` as `name_bucket{le=...}`, `name_sum`, `name_count`
    /// (`name` should end in the unit, `_seconds`).
    public func register(_ histogram: Histogram, name: String, help: String) {
        add(HistogramFamily(name: name, help: help, histogram: histogram))
    }

    /// A gauge read when scraped (a queue depth, entries held).
    public func gauge(_ name: String, help: String, _ value: @escaping @Sendable () -> Double) {
        add(CallbackFamily(name: name, help: help, type: .gauge, labelName: nil) { [("", value())] })
    }

    /// A gauge with one label, read when scraped: one series per pair `values` returns.
    public func gauge(
        _ name: String, help: String, label: String, _ values: @escaping @Sendable () -> [(String, Double)]
    ) {
        add(CallbackFamily(name: name, help: help, type: .gauge, labelName: label, values))
    }

    /// A counter kept elsewhere and read when scraped (CPU time the kernel counts).
    public func counter(_ name: String, help: String, _ value: @escaping @Sendable () -> Double) {
        add(CallbackFamily(name: name, help: help, type: .counter, labelName: nil) { [("", value())] })
    }

    /// Adds a family written by the code that owns it (the per-route HTTP
    /// metrics, the process metrics).
    func add(_ family: any MetricFamily) {
        for name in family.names {
            precondition(TextExposition.isValidMetricName(name), "'\(name)' is not a valid metric name")
        }
        families.withLock { families in
            let taken = Set(families.flatMap(\.names))
            for name in family.names { precondition(!taken.contains(name), "metric '\(name)' is registered twice") }
            families.append(family)
        }
    }

    /// The names of every registered family, in registration order.
    public var names: [String] { families.withLock { $0.flatMap(\.names) } }

    /// Every family, in registration order, in the text exposition format.
    /// Gauges are read now; the lock on the list is not held meanwhile.
    public func exposition() -> String {
        let snapshot = families.withLock { $0 }
        var exposition = TextExposition()
        for family in snapshot { family.write(to: &exposition) }
        return exposition.text
    }
}

/// What the registry holds: one or more metric families that write themselves.
protocol MetricFamily: Sendable {
    /// The family names it writes (for the uniqueness check).
    var names: [String] { get }
    func write(to exposition: inout TextExposition)
}

/// A family whose samples come from a closure, read when scraped.
private struct CallbackFamily: MetricFamily {
    let name: String
    let help: String
    let type: MetricType
    /// nil: one unlabelled sample (the closure's first pair, its label ignored).
    let labelName: String?
    let values: @Sendable () -> [(String, Double)]

    init(
        name: String, help: String, type: MetricType, labelName: String?,
        _ values: @escaping @Sendable () -> [(String, Double)]
    ) {
        if let labelName {
            precondition(TextExposition.isValidLabelName(labelName), "'\(labelName)' is not a valid label name")
        }
        self.name = name
        self.help = help
        self.type = type
        self.labelName = labelName
        self.values = values
    }

    var names: [String] { [name] }

    func write(to exposition: inout TextExposition) {
        exposition.family(name, help: help, type: type)
        let samples = values()
        guard let labelName else {
            if let first = samples.first { exposition.sample(name, first.1) }
            return
        }
        for (label, value) in samples { exposition.sample(name, [(labelName, label)], value) }
    }
}

private struct LabelledCounterFamily<Label: MetricLabelValue>: MetricFamily {
    let name: String
    let help: String
    let label: String
    let counters: LabelledCounters<Label>

    init(name: String, help: String, label: String, counters: LabelledCounters<Label>) {
        precondition(TextExposition.isValidLabelName(label), "'\(label)' is not a valid label name")
        self.name = name
        self.help = help
        self.label = label
        self.counters = counters
    }

    var names: [String] { [name] }

    func write(to exposition: inout TextExposition) {
        exposition.family(name, help: help, type: .counter)
        for value in Label.allCases {
            exposition.sample(name, [(label, value.labelValue)], counters.value(value))
        }
    }
}

private struct HistogramFamily: MetricFamily {
    let name: String
    let help: String
    let histogram: Histogram

    var names: [String] { [name] }

    func write(to exposition: inout TextExposition) {
        exposition.family(name, help: help, type: .histogram)
        histogram.write(name, to: &exposition)
    }
}
