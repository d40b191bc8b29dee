public import JOSE

/// The changes to the managed key list: the first key, a change of
/// algorithm, and rotation. Each runs under the storage's writer lock
/// (``KeyStorage/update(_:)``), so instances starting at once and `gatehouse
/// keys rotate` never interleave.
public struct KeyRotation: Sendable {
    public let storage: any KeyStorage
    /// Access-token lifetime plus leeway: how long a replaced key keeps verifying.
    public let tokenLifetime: Int64

    public init(storage: any KeyStorage, tokenLifetime: Int64) {
        self.storage = storage
        self.tokenLifetime = tokenLifetime
    }

    /// What `prepare` did.
    public enum Preparation: Sendable, Equatable {
        /// The list was there and its newest key has the configured algorithm.
        case unchanged
        /// There was no key: this one was made (or `jwt-secret` taken over).
        case created(ManagedKey)
        /// The configured algorithm changed: `key` signs from now on, and
        /// the keys before it verify until their tokens expire.
        case algorithmChanged(from: JWSAlgorithm, key: ManagedKey)
    }

    /// Makes sure a key of `algorithm` signs: creates the first key, or,
    /// when the configuration names another algorithm than the newest key
    /// has, a key of the new algorithm that signs at once.
    public func prepare(algorithm: JWSAlgorithm, now: Int64) throws -> Preparation {
        try storage.update { current in
            let schedule = current ?? KeySchedule()
            if let newest = schedule.newest {
                guard newest.algorithm != algorithm else { return (KeyChange(), Preparation.unchanged) }
                let key = try storage.makeKey(algorithm: algorithm, now: now, activates: now)
                // Keys that were waiting to sign with the old algorithm never will.
                let change = KeyChange(added: [key], removed: pending(in: schedule, now: now))
                return (change, .algorithmChanged(from: newest.algorithm, key: key.entry))
            }
            let key =
                algorithm == .hs256
                ? try storage.firstHMACKey(now: now)
                : try storage.makeKey(algorithm: algorithm, now: now, activates: now)
            return (KeyChange(added: [key]), .created(key.entry))
        }
    }

    /// What `rotate` did.
    public struct Rotation: Sendable, Equatable {
        /// The new key.
        public let key: ManagedKey
        /// The key that signed until now (it verifies until its tokens expire).
        public let replaced: ManagedKey?
        /// Keys that had not started signing yet, dropped: the new key replaces them.
        public let droppedPending: [ManagedKey]
        /// Retired keys removed from the list (and their files or rows).
        public let removedRetired: [ManagedKey]
    }

    /// Adds a new key of `algorithm` that is published at once and signs
    /// from `now + publishDelay`; the key it replaces keeps verifying until
    /// `tokenLifetime` after that. Also drops retired keys.
    public func rotate(algorithm: JWSAlgorithm, now: Int64, publishDelay: Int64) throws -> Rotation {
        try storage.update { current in
            guard let schedule = current, !schedule.keys.isEmpty else {
                throw KeyStoreError("there is no key to rotate yet; start gatehouse once to make the first")
            }
            let replaced = schedule.activeKey(at: now, tokenLifetime: tokenLifetime)
            let removed = schedule.retiredKeys(at: now, tokenLifetime: tokenLifetime)
            let dropped = pending(in: schedule, now: now)
            let key = try storage.makeKey(algorithm: algorithm, now: now, activates: now + publishDelay)
            return (
                KeyChange(added: [key], removed: removed + dropped),
                Rotation(key: key.entry, replaced: replaced, droppedPending: dropped, removedRetired: removed)
            )
        }
    }

    /// The keys that have not started signing (they never signed a token, so
    /// nothing depends on them).
    private func pending(in schedule: KeySchedule, now: Int64) -> [ManagedKey] {
        schedule.states(at: now, tokenLifetime: tokenLifetime).filter { $0.state == .pending }.map(\.key)
    }
}
