public import JOSE
import JSON

/// One signing key Gatehouse manages: its id, algorithm, where its material
/// lies, and when it starts signing. Everything else about it (pending,
/// active, retiring, retired) follows from those times and the clock, so
/// every instance that reads the same list agrees without talking.
public struct ManagedKey: Sendable, Equatable {
    /// The `kid`: the RFC 7638 thumbprint of the key.
    public let kid: String
    public let algorithm: JWSAlgorithm
    /// When the key was made, seconds since 1970.
    public let created: Int64
    /// When it starts signing, seconds since 1970. Until then it is only
    /// published (JWKS) and accepted, so that verifiers which cache the key
    /// set learn it before the first token it signs reaches them.
    public let activates: Int64
    /// The file holding the key, relative to the data directory: a PKCS#8
    /// PEM private key, or for HMAC the secret's text.
    public let file: String

    public init(kid: String, algorithm: JWSAlgorithm, created: Int64, activates: Int64, file: String) {
        self.kid = kid
        self.algorithm = algorithm
        self.created = created
        self.activates = activates
        self.file = file
    }
}

/// Where a key is in its life at some moment.
public enum KeyState: Sendable, Equatable {
    /// Published and accepted, not signing yet; signs from `activates`.
    case pending
    /// The key new tokens are signed with.
    case active
    /// Replaced, but tokens it signed may still be alive: published and
    /// accepted until `until`.
    case retiring(until: Int64)
    /// Every token it signed has expired: neither published nor accepted.
    case retired(since: Int64)

    /// `pending`, `active`, `retiring` or `retired`.
    public var name: String {
        switch self {
        case .pending: "pending"
        case .active: "active"
        case .retiring: "retiring"
        case .retired: "retired"
        }
    }

    /// Whether tokens signed with the key are accepted (and, if asymmetric,
    /// whether its public key is published).
    public var verifies: Bool {
        if case .retired = self { return false }
        return true
    }
}

/// The managed keys, in the order they were made, and the rules that say
/// which one signs.
public struct KeySchedule: Sendable, Equatable {
    public private(set) var keys: [ManagedKey]

    public init(keys: [ManagedKey] = []) { self.keys = keys }

    /// The state of every key at `now`, in activation order. A key retires
    /// `tokenLifetime` seconds after its successor starts signing: by then
    /// every token it signed has expired.
    ///
    /// - Parameters:
    ///   - now: seconds since 1970.
    ///   - tokenLifetime: the access-token lifetime plus the verifier's leeway.
    public func states(at now: Int64, tokenLifetime: Int64) -> [(key: ManagedKey, state: KeyState)] {
        let ordered = keys.enumerated().sorted {
            ($0.element.activates, $0.offset) < ($1.element.activates, $1.offset)
        }.map(\.element)
        // The signing key: the last to have started. If none has (a clock
        // set back, a hand-edited list), the first to start signs anyway:
        // refusing to issue tokens would be worse.
        let activeIndex = ordered.lastIndex { $0.activates <= now } ?? (ordered.isEmpty ? nil : 0)
        return ordered.enumerated().map { index, key in
            guard let activeIndex else { return (key, .pending) }
            if index == activeIndex { return (key, .active) }
            if index > activeIndex { return (key, .pending) }
            let until = ordered[index + 1].activates + tokenLifetime
            return (key, now < until ? .retiring(until: until) : .retired(since: until))
        }
    }

    /// The key that signs at `now`, if there is any key.
    public func activeKey(at now: Int64, tokenLifetime: Int64) -> ManagedKey? {
        states(at: now, tokenLifetime: tokenLifetime).first { $0.state == .active }?.key
    }

    /// The key made last (the one that signs, or will).
    public var newest: ManagedKey? {
        keys.enumerated().max { ($0.element.activates, $0.offset) < ($1.element.activates, $1.offset) }?.element
    }

    /// Adds `key`; it must have a new `kid`.
    public mutating func add(_ key: ManagedKey) {
        precondition(!keys.contains { $0.kid == key.kid }, "duplicate kid \(key.kid)")
        keys.append(key)
    }

    /// The keys retired at `now`, in list order: nothing needs them any more.
    public func retiredKeys(at now: Int64, tokenLifetime: Int64) -> [ManagedKey] {
        let retired = Set(
            states(at: now, tokenLifetime: tokenLifetime).compactMap { entry -> String? in
                if case .retired = entry.state { return entry.key.kid }
                return nil
            })
        return keys.filter { retired.contains($0.kid) }
    }

    /// Drops the keys retired at `now`, returning them (their files can go).
    public mutating func removeRetired(at now: Int64, tokenLifetime: Int64) -> [ManagedKey] {
        let removed = retiredKeys(at: now, tokenLifetime: tokenLifetime)
        let kids = Set(removed.map(\.kid))
        keys.removeAll { kids.contains($0.kid) }
        return removed
    }

    /// The earliest moment after `now` at which some key changes state, if any.
    public func nextChange(after now: Int64, tokenLifetime: Int64) -> Int64? {
        states(at: now, tokenLifetime: tokenLifetime).compactMap { entry -> Int64? in
            switch entry.state {
            case .pending: entry.key.activates
            case .retiring(let until): until
            case .active, .retired: nil
            }
        }.min()
    }

    // MARK: - Serialisation (keys/keys.json)

    /// The list as the JSON document kept in `keys/keys.json`.
    var json: JSONValue {
        .object([
            "version": 1,
            "keys": .array(
                keys.map { key in
                    .object([
                        "kid": .string(key.kid),
                        "alg": .string(key.algorithm.rawValue),
                        "created": .number(Double(key.created)),
                        "activates": .number(Double(key.activates)),
                        "file": .string(key.file),
                    ])
                }),
        ])
    }

    /// Reads the document `json` wrote.
    /// - Throws: a message naming what is wrong.
    public init(parsing bytes: [UInt8]) throws(KeyStoreError) {
        guard case .object(let document)? = try? JSONValue.parse(bytes) else {
            throw KeyStoreError("the key list is not a JSON object")
        }
        guard document["version"]?.numberValue == 1 else {
            throw KeyStoreError("the key list has an unknown version (this release reads version 1)")
        }
        guard case .array(let entries)? = document["keys"] else { throw KeyStoreError("the key list has no \"keys\" array") }
        var keys: [ManagedKey] = []
        for entry in entries {
            guard case .object(let object) = entry,
                let kid = object["kid"]?.stringValue, !kid.isEmpty,
                let alg = object["alg"]?.stringValue, let algorithm = JWSAlgorithm(rawValue: alg),
                let created = object["created"]?.numberValue, let activates = object["activates"]?.numberValue,
                let file = object["file"]?.stringValue, Self.isSafeRelativePath(file)
            else { throw KeyStoreError("the key list has an entry that is not a complete key: \(entry.serializedString)") }
            guard !keys.contains(where: { $0.kid == kid }) else { throw KeyStoreError("the key list names \(kid) twice") }
            keys.append(
                ManagedKey(kid: kid, algorithm: algorithm, created: Int64(created), activates: Int64(activates), file: file))
        }
        self.keys = keys
    }

    /// A path inside the data directory: relative, no `..`, no empty parts.
    static func isSafeRelativePath(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/") else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != ".." && $0 != "." }
    }
}

/// The key directory cannot be read or written as needed.
public struct KeyStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
