import Foundation
import MicroHTTP

/// The one source of "now" for every time check (token expiry, session
/// expiry), so tests can move time instead of sleeping.
public struct WallClock: Sendable {
    private let read: @Sendable () -> Double

    public init(_ read: @escaping @Sendable () -> Double) { self.read = read }

    /// Seconds since 1970, with fractions.
    public var now: Double { read() }

    /// Whole seconds since 1970 (for stored timestamps and `iat`/`exp`).
    public var seconds: Int64 { Int64(read().rounded(.down)) }

    /// The system clock.
    public static let system = WallClock { Date().timeIntervalSince1970 }
}

/// A clock that stands still until moved, for tests.
public final class ManualClock: Sendable {
    private let current: LockedValue<Double>

    public init(start: Double = 1_800_000_000) { current = LockedValue(start) }

    public func advance(by seconds: Double) { current.withLock { $0 += seconds } }

    public var clock: WallClock { WallClock { [self] in current.withLock { $0 } } }
}
