public import JOSE

/// The managed signing keys in PostgreSQL, shared by every instance on the
/// database: table `signing_keys` (``PostgresStore``'s migration 2), one row
/// a key with its private key (PKCS#8 PEM) or HMAC secret, in the order the
/// keys were made.
///
/// The first instance to start with no key configured makes the key ring;
/// every other one finds it. Writers (``KeyRotation``, through
/// ``update(_:)``) change the rows in one transaction holding a
/// transaction-level advisory lock, so instances starting at once make one
/// first key, and concurrent rotations apply one after the other. A trigger
/// notifies `gatehouse_keys` at commit; ``PostgresListener`` hears it and
/// every instance reloads its keys at once (and within
/// `GATEHOUSE_KEY_RELOAD_INTERVAL` anyway).
///
/// The keys are as safe as the database: whoever can read `signing_keys` can
/// sign tokens (as whoever can read the data directory can with
/// ``KeyDirectory``). Restrict the table to Gatehouse's role.
public struct PostgresKeyStorage: KeyStorage {
    /// The transaction-level advisory lock every change of the key list holds (two more than
    /// ``PostgresStore/migrationLockKey``).
    static let keysLockKey: Int64 = 5_143_520_228_326_471_029

    private let pool: PostgresPool
    public let location: String

    /// The keys in `store`'s database; `description` names it in messages (never with a password).
    public init(store: PostgresStore, description: String) {
        pool = store.pool
        location = "the signing_keys table of \(description)"
    }

    public func readSchedule() throws(KeyStoreError) -> KeySchedule? {
        try withConnection("reading the key list") { db throws(PostgresError) in try Self.schedule(in: db) }
    }

    public func loadKey(_ entry: ManagedKey) throws(KeyStoreError) -> SigningKey {
        let rows = try withConnection("reading key \(entry.kid)") { db throws(PostgresError) in
            try db.query("SELECT material FROM signing_keys WHERE kid = $1", [.text(entry.kid)]).rows
        }
        guard let material = rows.first?.optionalText(0) else {
            throw KeyStoreError("\(location) has no key \(entry.kid)")
        }
        return try KeyMaterial.parse(material, for: entry, source: "key \(entry.kid) in \(location)")
    }

    /// In one transaction, holding the keys' advisory lock: reads the rows, asks `plan`, inserts the
    /// new keys and deletes the removed ones. Nothing changes if `plan` throws.
    public func update<T>(_ plan: (KeySchedule?) throws -> (change: KeyChange, result: T)) throws -> T {
        // `plan` may throw anything; the connection's closures throw only PostgresError. So its
        // error is kept aside, and the transaction rolled back with a stand-in.
        var planError: (any Error)?
        var output: T?
        do throws(KeyStoreError) {
            try withConnection("changing the key list") { db throws(PostgresError) in
                try db.transaction { () throws(PostgresError) in
                    try db.query("SELECT pg_advisory_xact_lock($1::bigint)", [.integer(Self.keysLockKey)])
                    let current = try Self.schedule(in: db)
                    let change: KeyChange
                    do {
                        (change, output) = try plan(current)
                    } catch {
                        planError = error
                        throw PostgresError.misuse("the key change was abandoned")
                    }
                    for key in change.removed {
                        try db.query("DELETE FROM signing_keys WHERE kid = $1", [.text(key.kid)])
                    }
                    for key in change.added {
                        try db.query(
                            "INSERT INTO signing_keys (kid, alg, created, activates, material) "
                                + "VALUES ($1, $2, $3, $4, $5)",
                            [
                                .text(key.entry.kid), .text(key.entry.algorithm.rawValue),
                                .integer(key.entry.created), .integer(key.entry.activates), .text(key.material),
                            ])
                    }
                }
            }
        } catch {
            throw planError ?? error
        }
        guard let output else { throw KeyStoreError("the key change in \(location) returned nothing") }
        return output
    }

    public func makeKey(algorithm: JWSAlgorithm, now: Int64, activates: Int64) throws(KeyStoreError) -> NewKey {
        let (key, material) = try KeyMaterial.generate(algorithm)
        return NewKey(
            entry: ManagedKey(kid: key.kid, algorithm: algorithm, created: now, activates: activates, file: ""),
            material: material)
    }

    /// A new random secret: there is no `jwt-secret` to take over (each instance's data directory
    /// has its own).
    public func firstHMACKey(now: Int64) throws(KeyStoreError) -> NewKey {
        try makeKey(algorithm: .hs256, now: now, activates: now)
    }

    // MARK: - Private

    /// Every key row, oldest first; nil when there is none.
    private static func schedule(in db: PostgresConnection) throws(PostgresError) -> KeySchedule? {
        let keys = try db.query("SELECT kid, alg, created, activates FROM signing_keys ORDER BY seq") {
            row throws(PostgresError) -> ManagedKey in
            let alg = try row.text(1)
            guard let algorithm = JWSAlgorithm(rawValue: alg) else {
                throw PostgresError.corrupt("key \(try row.text(0)) has an unknown algorithm \(alg)")
            }
            return ManagedKey(
                kid: try row.text(0), algorithm: algorithm, created: try row.int64(2), activates: try row.int64(3),
                file: "")
        }
        return keys.isEmpty ? nil : KeySchedule(keys: keys)
    }

    private func withConnection<T>(
        _ action: String, _ body: (PostgresConnection) throws(PostgresError) -> T
    ) throws(KeyStoreError) -> T {
        do throws(PostgresError) {
            return try pool.withConnection(body)
        } catch {
            throw KeyStoreError("\(action) in \(location): \(error.message)")
        }
    }
}
