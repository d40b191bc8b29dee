public import JOSE

/// The changes to the managed key list: the first key, a change of
/// algorithm, and rotation. Each runs under the key directory's lock, so the
/// service starting and `gatehouse keys rotate` never interleave.
public struct KeyRotation: Sendable {
    public let directory: KeyDirectory
    /// Access-token lifetime plus leeway: how long a replaced key keeps verifying.
    public let tokenLifetime: Int64

    public init(directory: KeyDirectory, tokenLifetime: Int64) {
        self.directory = directory
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
        try directory.withLock { () throws -> Preparation in
            var schedule = try directory.readSchedule() ?? KeySchedule()
            let result: Preparation
            if let newest = schedule.newest {
                guard newest.algorithm != algorithm else { return .unchanged }
                let key = try directory.createKey(algorithm: algorithm, now: now, activates: now)
                // Keys that were waiting to sign with the old algorithm never will.
                dropPending(from: &schedule, now: now)
                schedule.add(key)
                result = .algorithmChanged(from: newest.algorithm, key: key)
            } else {
                let key =
                    algorithm == .hs256
                    ? try directory.firstSecret(now: now)
                    : try directory.createKey(algorithm: algorithm, now: now, activates: now)
                schedule.add(key)
                result = .created(key)
            }
            try directory.writeSchedule(schedule)
            return result
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
        /// Retired keys removed from the list, their files deleted.
        public let removedRetired: [ManagedKey]
    }

    /// Adds a new key of `algorithm` that is published at once and signs
    /// from `now + publishDelay`; the key it replaces keeps verifying until
    /// `tokenLifetime` after that. Also drops retired keys.
    public func rotate(algorithm: JWSAlgorithm, now: Int64, publishDelay: Int64) throws -> Rotation {
        try directory.withLock { () throws -> Rotation in
            guard var schedule = try directory.readSchedule(), !schedule.keys.isEmpty else {
                throw KeyStoreError("there is no key to rotate yet; start gatehouse once to make the first")
            }
            let replaced = schedule.activeKey(at: now, tokenLifetime: tokenLifetime)
            let removed = schedule.removeRetired(at: now, tokenLifetime: tokenLifetime)
            let dropped = dropPending(from: &schedule, now: now)
            let key = try directory.createKey(algorithm: algorithm, now: now, activates: now + publishDelay)
            schedule.add(key)
            try directory.writeSchedule(schedule)
            // Only once the list no longer names them.
            for old in removed + dropped { directory.removeFile(of: old) }
            return Rotation(key: key, replaced: replaced, droppedPending: dropped, removedRetired: removed)
        }
    }

    /// Removes the keys that have not started signing (they never signed a
    /// token, so nothing depends on them) and returns them.
    @discardableResult
    private func dropPending(from schedule: inout KeySchedule, now: Int64) -> [ManagedKey] {
        let pending = schedule.states(at: now, tokenLifetime: tokenLifetime).filter { $0.state == .pending }.map(\.key)
        let kids = Set(pending.map(\.kid))
        schedule = KeySchedule(keys: schedule.keys.filter { !kids.contains($0.kid) })
        return pending
    }
}
