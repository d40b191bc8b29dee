import Foundation
public import JOSE

/// Where the managed signing keys are kept: files in the data directory
/// (``KeyDirectory``, one instance or several on one volume), or PostgreSQL
/// (``PostgresKeyStorage``, every instance on that database).
///
/// Readers (``KeyManager``) read the list and load the keys it names without
/// any lock; writers (``KeyRotation``) change the list only through
/// ``update(_:)``, which holds the storage's writer lock from reading the list
/// to storing the change, so two writers (two instances starting at once,
/// `gatehouse keys rotate` beside a starting instance) never interleave.
public protocol KeyStorage: Sendable {
    /// Where the keys are, for messages (never holds a password).
    var location: String { get }

    /// The key list, or nil when none has been written yet.
    func readSchedule() throws(KeyStoreError) -> KeySchedule?

    /// The key `entry` names, checked against it: its algorithm, and its
    /// thumbprint against the `kid`.
    func loadKey(_ entry: ManagedKey) throws(KeyStoreError) -> SigningKey

    /// Holding the writer lock: reads the list, asks `plan` what to change,
    /// and stores that change at once (new keys before the list names them,
    /// removed keys after it no longer does).
    /// - Returns: what `plan` returned besides the change.
    func update<T>(_ plan: (KeySchedule?) throws -> (change: KeyChange, result: T)) throws -> T

    /// A new random key of `algorithm`, not stored yet: a ``KeyChange`` adds it.
    func makeKey(algorithm: JWSAlgorithm, now: Int64, activates: Int64) throws(KeyStoreError) -> NewKey

    /// The first HS256 key, when there is none yet.
    func firstHMACKey(now: Int64) throws(KeyStoreError) -> NewKey
}

/// A key made by ``KeyStorage/makeKey(algorithm:now:activates:)``: its entry
/// in the list and the text that holds it.
public struct NewKey: Sendable {
    public let entry: ManagedKey
    /// A PKCS#8 PEM private key, or for HMAC the secret's text. Empty when
    /// the storage already holds it (the data directory's `jwt-secret`).
    let material: String
}

/// What one ``KeyStorage/update(_:)`` changes in the list.
public struct KeyChange: Sendable {
    /// Keys to add, in this order (after the ones the list has).
    var added: [NewKey] = []
    /// Keys to take out of the list (and delete).
    var removed: [ManagedKey] = []

    /// The list after the change.
    func applied(to schedule: KeySchedule?) -> KeySchedule {
        let removedKids = Set(removed.map(\.kid))
        var result = KeySchedule(keys: (schedule?.keys ?? []).filter { !removedKids.contains($0.kid) })
        for key in added { result.add(key.entry) }
        return result
    }

    var isEmpty: Bool { added.isEmpty && removed.isEmpty }
}

/// Making and reading key material, the same whichever storage holds it.
enum KeyMaterial {
    /// A new random key: for HMAC 256 random bits as base64url text (so the
    /// text itself is the secret, as in `jwt-secret`), else a key pair.
    static func generate(_ algorithm: JWSAlgorithm) throws(KeyStoreError) -> (key: SigningKey, material: String) {
        do {
            if algorithm.isSymmetric {
                let secret = Base64URL.encode(SecureRandom.bytes(32))
                return (try SigningKey.hmac(secret: Array(secret.utf8), algorithm: algorithm), secret + "\n")
            }
            let generated = try AsymmetricKey.generate(for: algorithm)
            return (SigningKey.asymmetric(generated), try generated.privateKeyPEM())
        } catch {
            throw KeyStoreError("could not generate a \(algorithm.rawValue) key: \(error)")
        }
    }

    /// The key in `text` (as ``generate(_:)`` wrote it), checked against
    /// `entry`; `source` names where the text came from, for messages.
    static func parse(_ text: String, for entry: ManagedKey, source: String) throws(KeyStoreError) -> SigningKey {
        let key: SigningKey
        do {
            if entry.algorithm.isSymmetric {
                let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
                guard secret.utf8.count >= 32 else {
                    throw KeyStoreError(
                        "\(source) holds a secret of \(secret.utf8.count) bytes; at least 32 are needed")
                }
                key = try SigningKey.hmac(secret: Array(secret.utf8), algorithm: entry.algorithm)
            } else {
                key = SigningKey.asymmetric(try AsymmetricKey(pem: text, algorithm: entry.algorithm))
            }
        } catch let error as KeyStoreError {
            throw error
        } catch {
            throw KeyStoreError("\(source) is not a usable \(entry.algorithm.rawValue) key: \(error)")
        }
        guard key.kid == entry.kid else {
            throw KeyStoreError("\(source) does not hold key \(entry.kid) (its thumbprint is \(key.kid))")
        }
        return key
    }
}
