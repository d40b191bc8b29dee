/// A counter: a number that only goes up (a Prometheus `counter`), such as
/// logins served. Adding is one relaxed atomic add on the calling thread's
/// own cache line; nothing is locked.
///
/// Register it with `MetricsRegistry.register(_:name:help:)` to have it exported.
public final class Counter: Sendable {
    @usableFromInline let cells: CounterCells

    /// A counter at 0.
    public init() { cells = CounterCells(count: 1) }

    /// Adds `amount` (1 by default).
    @inlinable
    public func increment(by amount: UInt64 = 1) { cells.add(0, amount) }

    /// The count so far.
    public var value: UInt64 { cells.value(0) }
}

/// The values one label of a counter family may take, as an enum whose raw
/// values are 0, 1, 2, ... in `allCases` order (so a value is its own index:
/// counting by label costs no lookup).
public protocol MetricLabelValue: CaseIterable, Sendable, RawRepresentable where RawValue == Int {
    /// The label value as exported (`invalid_credentials`).
    var labelValue: String { get }
}

/// One counter per value of a label (`gatehouse_logins_total{outcome="..."}`),
/// all made up front, so every series is exported from the start (at 0) and
/// counting is an array index and an atomic add.
///
/// Register it with `MetricsRegistry.register(_:name:help:label:)`.
public final class LabelledCounters<Label: MetricLabelValue>: Sendable {
    @usableFromInline let cells: CounterCells

    /// One counter at 0 per value of `Label`.
    public init() {
        for (index, label) in Label.allCases.enumerated() {
            precondition(label.rawValue == index, "\(Label.self): raw values must be 0, 1, 2, ... in allCases order")
        }
        cells = CounterCells(count: Label.allCases.count)
    }

    /// Adds `amount` (1 by default) to the counter of `label`.
    @inlinable
    public func increment(_ label: Label, by amount: UInt64 = 1) { cells.add(label.rawValue, amount) }

    /// The count of `label` so far.
    public func value(_ label: Label) -> UInt64 { cells.value(label.rawValue) }
}
