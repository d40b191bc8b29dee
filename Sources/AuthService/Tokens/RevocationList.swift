import MicroHTTP

/// Session ids whose access tokens must be refused before they expire, held
/// in memory so a token check never waits for the store.
///
/// Loaded from the store at start-up and updated on every revocation (logout,
/// refresh-token reuse, password change, account deletion). An entry is
/// dropped once every token of its session has expired: after that the
/// token's own `exp` refuses it.
public final class RevocationList: Sendable {
    private struct State {
        /// Session id -> the time (seconds) after which no token of it is valid.
        var entries: [String: Int64] = [:]
        var lastPrune: Int64 = 0
    }

    private let state = LockedValue(State())
    /// How often, in seconds, adding an entry also sweeps out expired ones.
    private let pruneInterval: Int64 = 60

    public init() {}

    /// Marks a session revoked until `expiresAt`.
    public func revoke(_ sessionID: String, until expiresAt: Int64, now: Int64) {
        revoke([sessionID], until: expiresAt, now: now)
    }

    /// Marks sessions revoked until `expiresAt`.
    public func revoke(_ sessionIDs: some Sequence<String>, until expiresAt: Int64, now: Int64) {
        state.withLock { state in
            for id in sessionIDs { state.entries[id] = max(state.entries[id] ?? 0, expiresAt) }
            if now - state.lastPrune >= pruneInterval { Self.prune(&state, now: now) }
        }
    }

    /// Loads revocations read from the store (at start-up).
    public func load(_ revoked: [(id: String, expiresAt: Int64)], now: Int64) {
        state.withLock { state in
            for entry in revoked where entry.expiresAt > now {
                state.entries[entry.id] = max(state.entries[entry.id] ?? 0, entry.expiresAt)
            }
        }
    }

    /// Whether tokens of this session must be refused.
    public func isRevoked(_ sessionID: String) -> Bool {
        state.withLock { $0.entries[sessionID] != nil }
    }

    /// Revoked sessions held right now (for metrics and tests).
    public var count: Int { state.withLock { $0.entries.count } }

    /// Drops the entries whose sessions have fully expired.
    public func prune(now: Int64) {
        state.withLock { Self.prune(&$0, now: now) }
    }

    private static func prune(_ state: inout State, now: Int64) {
        state.entries = state.entries.filter { $0.value > now }
        state.lastPrune = now
    }
}
