import Foundation
public import JOSE

/// The signing keys Gatehouse manages, on disk in the data directory:
///
///     <data>/keys/keys.json      the list (KeySchedule): kid, alg, created, activates, file
///     <data>/keys/<kid>.pem      an asymmetric private key, PKCS#8 PEM, mode 0600
///     <data>/keys/<kid>.secret   an HMAC secret rotated in, mode 0600
///     <data>/jwt-secret          the first HMAC secret (as before key rotation existed)
///     <data>/keys/.lock          taken (flock) by every writer
///
/// Writers (the first start, `gatehouse keys rotate`) hold the lock, write a
/// key file before the list names it, replace the list atomically (write,
/// fsync, rename, fsync the directory), and delete a key's file only after
/// the list stopped naming it. So a reader, which takes no lock (the running
/// service, every 30 s), always sees a complete list whose files exist.
public struct KeyDirectory: KeyStorage {
    /// The data directory.
    public let dataDirectory: String

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }

    var keysDirectory: String { path("keys") }
    public var location: String { listPath }
    var listPath: String { path("keys/keys.json") }

    func path(_ relative: String) -> String { (dataDirectory as NSString).appendingPathComponent(relative) }

    // MARK: - Reading

    /// The key list, or nil when none has been written yet.
    public func readSchedule() throws(KeyStoreError) -> KeySchedule? {
        guard let data = FileManager.default.contents(atPath: listPath) else {
            if FileManager.default.fileExists(atPath: listPath) { throw KeyStoreError("could not read \(listPath)") }
            return nil
        }
        do {
            return try KeySchedule(parsing: [UInt8](data))
        } catch {
            throw KeyStoreError("\(listPath): \(error.message)")
        }
    }

    /// The key `entry` names, read from its file and checked against the
    /// list: its algorithm, and its thumbprint against the `kid`.
    public func loadKey(_ entry: ManagedKey) throws(KeyStoreError) -> SigningKey {
        let file = path(entry.file)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw KeyStoreError("could not read the key file \(file) of key \(entry.kid)")
        }
        return try KeyMaterial.parse(String(decoding: data, as: UTF8.self), for: entry, source: file)
    }

    // MARK: - Writing

    /// Holding the directory's lock (`keys/.lock`, flock): writes the files
    /// of the new keys, then the list, atomically, then deletes the files of
    /// the keys it no longer names.
    public func update<T>(_ plan: (KeySchedule?) throws -> (change: KeyChange, result: T)) throws -> T {
        try withLock { () throws -> T in
            let current = try readSchedule()
            let (change, result) = try plan(current)
            guard !change.isEmpty else { return result }
            for key in change.added where !key.material.isEmpty {
                try Self.writeNewFile(path(key.entry.file), Array(key.material.utf8))
            }
            if !change.added.isEmpty { Self.syncDirectory(keysDirectory) }
            try writeSchedule(change.applied(to: current))
            // Only once the list no longer names them.
            for old in change.removed { removeFile(of: old) }
            return result
        }
    }

    /// Runs `body` holding the directory's lock (creating the directories as
    /// needed).
    func withLock<T>(_ body: () throws -> T) throws -> T {
        try SecretFile.ensureDirectory(dataDirectory)
        try SecretFile.ensureDirectory(keysDirectory)
        let lockPath = path("keys/.lock")
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw KeyStoreError("could not open \(lockPath): \(lastError())") }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw KeyStoreError("could not lock \(lockPath): \(lastError())") }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// Writes `schedule` as the key list, atomically.
    func writeSchedule(_ schedule: KeySchedule) throws(KeyStoreError) {
        var bytes = schedule.json.serialized()
        bytes.append(UInt8(ascii: "\n"))
        let temporary = listPath + ".tmp"
        unlink(temporary)
        try Self.writeNewFile(temporary, bytes)
        guard rename(temporary, listPath) == 0 else {
            let message = lastError()
            unlink(temporary)
            throw KeyStoreError("could not replace \(listPath): \(message)")
        }
        Self.syncDirectory(keysDirectory)
    }

    /// A new random key for `algorithm`, to be kept in `keys/<kid>.pem` or
    /// `keys/<kid>.secret`.
    public func makeKey(algorithm: JWSAlgorithm, now: Int64, activates: Int64) throws(KeyStoreError) -> NewKey {
        let (key, material) = try KeyMaterial.generate(algorithm)
        let file = "keys/\(key.kid).\(algorithm.isSymmetric ? "secret" : "pem")"
        return NewKey(
            entry: ManagedKey(kid: key.kid, algorithm: algorithm, created: now, activates: activates, file: file),
            material: material)
    }

    /// The HMAC secret in `<data>/jwt-secret` (made on the first start before
    /// keys were managed, or now): active since 0, so that it signs until
    /// something replaces it, with the thumbprint `kid` it always had, so
    /// tokens it signed stay valid.
    public func firstHMACKey(now: Int64) throws(KeyStoreError) -> NewKey {
        let secret: String
        do {
            secret = try SecretFile.loadOrCreate(in: dataDirectory)
        } catch {
            throw KeyStoreError(error.message)
        }
        let entry = ManagedKey(
            kid: SigningKey.thumbprint(ofSymmetricSecret: Array(secret.utf8)), algorithm: .hs256, created: now,
            activates: 0, file: SecretFile.name)
        // Already on disk.
        return NewKey(entry: entry, material: "")
    }

    /// Deletes the file of a key the list no longer names. `jwt-secret` is
    /// kept: `GATEHOUSE_JWT_SECRET=$(cat data/jwt-secret)` may name it.
    func removeFile(of key: ManagedKey) {
        guard key.file != SecretFile.name else { return }
        unlink(path(key.file))
    }

    // MARK: - Files

    /// Creates `path` (it must not exist) with mode 0600, writes `bytes` and
    /// flushes them to disk.
    static func writeNewFile(_ path: String, _ bytes: [UInt8]) throws(KeyStoreError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw KeyStoreError("could not create \(path): \(lastError())") }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { break }
            written += result
        }
        let synced = fsync(descriptor) == 0
        let message = lastError()
        close(descriptor)
        guard written == bytes.count, synced else {
            unlink(path)
            throw KeyStoreError("could not write \(path): \(message)")
        }
    }

    /// Flushes a directory's entries (a rename or a new file in it) to disk.
    static func syncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}

private func lastError() -> String { String(cString: strerror(errno)) }
