import Dispatch
import Foundation
public import JOSE
import JSON
public import MicroHTTP

/// The keys in force at one moment: the ring, the signer and verifier built
/// on it, and the JWK Set document. Immutable; `KeyManager` swaps in a new
/// one when the keys change.
public final class KeySet: Sendable {
    public let ring: KeyRing
    let signer: JWTSigner
    let verifier: JWTVerifier
    /// `{"keys":[...]}`: the public keys of the ring, serialised once.
    public let jwksBody: [UInt8]
    /// Every managed key with its state when this set was made (empty for a configured key).
    public let states: [(key: ManagedKey, state: KeyState)]
    /// What the set was made from (the active kid, then each accepted kid):
    /// when it is the same, a reload changes nothing.
    let identity: [String]

    init(ring: KeyRing, policy: VerificationPolicy, signatureCacheCapacity: Int, states: [(ManagedKey, KeyState)]) {
        self.ring = ring
        signer = JWTSigner(keyRing: ring)
        verifier = JWTVerifier(keyRing: ring, policy: policy, signatureCacheCapacity: signatureCacheCapacity)
        jwksBody = JSONValue.object(ring.jwks).serialized()
        self.states = states
        identity = ring.allKeys.map(\.kid)
    }
}

/// Holds the signing keys in force and keeps them current.
///
/// Either one configured key (`GATEHOUSE_JWT_SECRET`,
/// `GATEHOUSE_SIGNING_KEY_FILE`), which never changes, or the managed keys
/// (``KeyStorage``: the data directory, or PostgreSQL), which `reload` reads
/// again: on `SIGHUP`, when PostgreSQL notifies a change, and every
/// `reloadInterval` seconds by itself. A reload also
/// moves keys along their schedule (a pending key starts signing, a
/// replaced one retires) without any file changing. Readers take the current
/// `KeySet` under a lock held for a pointer copy; building a new set happens
/// outside it.
public final class KeyManager: Sendable {
    /// Where the keys come from.
    enum Source: Sendable {
        case configured
        case managed(any KeyStorage)
    }

    let source: Source
    let policy: VerificationPolicy
    let signatureCacheCapacity: Int
    /// Access-token lifetime plus leeway: how long a replaced key keeps verifying.
    let tokenLifetime: Int64
    let clock: WallClock
    let logger: Logger
    private let current: LockedValue<KeySet>
    /// Serialises reloads (the timer and SIGHUP may both ask).
    private let reloading = LockedValue(0)
    private let timer = LockedValue<ReloadTimer?>(nil)
    private let reloadQueue = DispatchQueue(label: "gatehouse.keys.reload")

    /// One key that never changes.
    public init(
        ring: KeyRing, policy: VerificationPolicy, signatureCacheCapacity: Int = 0, clock: WallClock = .system,
        logger: Logger = Logger()
    ) {
        source = .configured
        self.policy = policy
        self.signatureCacheCapacity = signatureCacheCapacity
        tokenLifetime = 0
        self.clock = clock
        self.logger = logger
        current = LockedValue(
            KeySet(ring: ring, policy: policy, signatureCacheCapacity: signatureCacheCapacity, states: []))
    }

    /// The keys managed in `storage`, loaded now.
    /// - Throws: `KeyStoreError` when the list or a key in force cannot be read.
    public init(
        storage: any KeyStorage, policy: VerificationPolicy, tokenLifetime: Int64, signatureCacheCapacity: Int,
        clock: WallClock, logger: Logger
    ) throws(KeyStoreError) {
        source = .managed(storage)
        self.policy = policy
        self.signatureCacheCapacity = signatureCacheCapacity
        self.tokenLifetime = tokenLifetime
        self.clock = clock
        self.logger = logger
        current = LockedValue(
            try Self.load(
                storage, previous: nil, now: clock.seconds, tokenLifetime: tokenLifetime, policy: policy,
                signatureCacheCapacity: signatureCacheCapacity))
    }

    deinit { stopWatching() }

    /// The keys in force now.
    public var keySet: KeySet { current.withLock { $0 } }

    /// Whether the keys are managed (and so can rotate).
    public var isManaged: Bool {
        if case .managed = source { return true }
        return false
    }

    /// Reads the managed keys again and puts them in force if anything
    /// changed. A failure is logged and the keys in force stay.
    /// - Returns: whether the keys in force changed.
    @discardableResult
    public func reload() -> Bool {
        guard case .managed(let storage) = source else { return false }
        return reloading.withLock { _ in
            let previous = keySet
            let next: KeySet
            do {
                next = try Self.load(
                    storage, previous: previous, now: clock.seconds, tokenLifetime: tokenLifetime, policy: policy,
                    signatureCacheCapacity: signatureCacheCapacity)
            } catch {
                logger.error("could not reload the signing keys; the keys in force stay", ["error": "\(error)"])
                return false
            }
            guard next.identity != previous.identity else { return false }
            current.withLock { $0 = next }
            logger.info(
                "signing keys changed",
                [
                    "signing_kid": next.ring.signingKey.kid,
                    "accepted_kids": next.identity.joined(separator: ","),
                ])
            return true
        }
    }

    /// Reloads on a queue of its own and returns at once (for PostgreSQL's
    /// change notifications, heard on the listener's thread). Only between
    /// `startWatching` and `stopWatching`, so none runs after shutdown began.
    public func reloadSoon() {
        guard isManaged, timer.withLock({ $0 != nil }) else { return }
        reloadQueue.async { [weak self] in self?.reload() }
    }

    /// Reloads every `interval` seconds until `stopWatching`.
    public func startWatching(interval: Double) {
        guard case .managed = source else { return }
        let next = ReloadTimer(interval: interval) { [weak self] in self?.reload() }
        timer.withLock { current -> ReloadTimer? in
            let old = current
            current = next
            return old
        }?.cancel()
    }

    /// Stops the timer `startWatching` started.
    public func stopWatching() {
        timer.withLock { current -> ReloadTimer? in
            let old = current
            current = nil
            return old
        }?.cancel()
    }

    /// Builds the key set the list in `storage` puts in force at `now`,
    /// reusing the keys `previous` already loaded.
    private static func load(
        _ storage: any KeyStorage, previous: KeySet?, now: Int64, tokenLifetime: Int64, policy: VerificationPolicy,
        signatureCacheCapacity: Int
    ) throws(KeyStoreError) -> KeySet {
        guard let schedule = try storage.readSchedule() else {
            throw KeyStoreError("\(storage.location) holds no key list")
        }
        let states = schedule.states(at: now, tokenLifetime: tokenLifetime)
        var signing: SigningKey?
        var others: [SigningKey] = []
        for (entry, state) in states where state.verifies {
            let key: SigningKey
            if let loaded = previous?.ring.key(withID: entry.kid) {
                key = loaded
            } else {
                key = try storage.loadKey(entry)
            }
            if state == .active { signing = key } else { others.append(key) }
        }
        guard let signing else { throw KeyStoreError("\(storage.location) names no key") }
        // Newest first after the signing key: pending, then retiring.
        others.reverse()
        let ring = KeyRing(signingKey: signing, additionalVerificationKeys: others)
        if let previous, previous.identity == ring.allKeys.map(\.kid) { return previous }
        return KeySet(ring: ring, policy: policy, signatureCacheCapacity: signatureCacheCapacity, states: states)
    }
}

/// A repeating timer on its own queue, running from init until `cancel`.
private final class ReloadTimer: @unchecked Sendable {
    // @unchecked: `source` is made, configured and resumed in init, and
    // afterwards only cancelled, which Dispatch allows from any thread.
    private let source: any DispatchSourceTimer

    init(interval: Double, _ handler: @escaping @Sendable () -> Void) {
        source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "gatehouse.keys"))
        source.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(100))
        source.setEventHandler(handler: handler)
        source.resume()
    }

    func cancel() { source.cancel() }
}
