import JSON
import MicroHTTP

/// The shared ``UserStore``: a PostgreSQL database that several Gatehouse instances (and
/// `gatehouse users ...`) use at once.
///
/// The same tables and meanings as ``SQLiteStore``, and the same semantics call for call. What
/// SQLite gets from having one writer at a time, this store gets from the database: a unique index
/// on `lower(username)` decides concurrent registrations; refresh-token rotation locks the session
/// row, then the token row (`SELECT ... FOR UPDATE`), so two instances presenting one token at once
/// give one rotation and one reuse; every transaction that can end a session takes one
/// transaction-level advisory lock first, so the revocation sequence hands out positions in commit
/// order (a reader that sees a position has seen every smaller one) and row locks are always taken
/// in one order (sessions before refresh tokens), which leaves nothing to deadlock on.
///
/// Connections come from a bounded pool (``PostgresPool``); every statement is prepared once per
/// connection and bound by `statement_timeout`. Calls block: run them off the HTTP threads (the
/// `store` worker pool), as every controller does.
public final class PostgresStore: UserStore {
    /// Connections per store when the configuration does not say (`GATEHOUSE_DB_POOL_SIZE`).
    public static let defaultPoolSize = 8
    /// `statement_timeout` of every connection, and how long a call waits for a free connection.
    public static let statementTimeoutMilliseconds = 5000
    /// How long ``ping()`` waits for a free connection, in milliseconds.
    public static let pingTimeoutMilliseconds = 500
    /// How long ``ping()`` waits for `SELECT 1` to be answered, in seconds.
    static let pingAnswerTimeout = 1.0
    /// The session-level advisory lock held while migrations run ("Gatehous" in ASCII).
    static let migrationLockKey: Int64 = 5_143_520_228_326_471_027
    /// The transaction-level advisory lock every session-ending transaction takes first (one more).
    static let revocationLockKey: Int64 = 5_143_520_228_326_471_028

    /// Also used by ``PostgresKeyStorage`` for the signing keys.
    let pool: PostgresPool

    /// Connects, and brings the schema up to date under an advisory lock (so instances starting at
    /// once apply each migration once).
    /// - Parameters:
    ///   - url: `postgres://` or `postgresql://` URI, or a libpq `key=value` string. May hold a
    ///     password: it is never logged or put in an error.
    ///   - poolSize: the most connections this store opens at once (at least 1).
    /// - Throws: ``StoreError/Code/unavailable`` if the database cannot be reached or set up,
    ///   ``StoreError/Code/incompatibleSchema`` if a newer Gatehouse migrated it.
    public init(url: String, poolSize: Int = PostgresStore.defaultPoolSize) throws(StoreError) {
        pool = PostgresPool(
            url: url, size: poolSize, statementTimeoutMilliseconds: Self.statementTimeoutMilliseconds,
            acquireTimeout: Double(Self.statementTimeoutMilliseconds) / 1000)
        let version: Int64
        do throws(PostgresError) {
            version = try pool.withConnection { db throws(PostgresError) in try Self.migrate(db) }
        } catch {
            pool.close()
            throw StoreError(error.storeCode, "opening PostgreSQL store: \(error.message)")
        }
        guard version <= Int64(Self.migrations.count) else {
            pool.close()
            throw StoreError(
                .incompatibleSchema,
                "PostgreSQL store has schema version \(version); this build knows up to \(Self.migrations.count)")
        }
    }

    /// Closes every connection. Later calls throw ``StoreError/Code/unavailable``. Calling it again does
    /// nothing.
    public func close() {
        pool.close()
    }

    // MARK: - Users

    public func createUser(id: String, username: String, passwordHash: String, createdAt: Int64) throws(StoreError)
        -> User
    {
        try createUser(id: id, username: username, passwordHash: passwordHash, createdAt: createdAt, roles: [])
    }

    public func createUser(id: String, username: String, passwordHash: String, createdAt: Int64, roles: [String])
        throws(StoreError) -> User
    {
        let roles = Array(Set(roles)).sorted()
        // The unique index decides: concurrent registrations of one name cannot both pass.
        let meanings = ConstraintMeanings(
            unique: ["users_username_lower": StoreError(.usernameTaken, "a user with this username exists")])
        return try withConnection("creating user", constraints: meanings) { db throws(PostgresError) in
            try db.query(
                "INSERT INTO users (id, username, password_hash, created_at, roles) VALUES ($1, $2, $3, $4, $5)",
                [.text(id), .text(username), .text(passwordHash), .integer(createdAt), .text(Self.encode(roles))]
            )
            return User(id: id, username: username, passwordHash: passwordHash, createdAt: createdAt, roles: roles)
        }
    }

    public func user(named username: String) throws(StoreError) -> User? {
        try withConnection("finding user by name") { db throws(PostgresError) in
            try db.query(
                "SELECT \(Self.userColumns) FROM users WHERE lower(username) = lower($1::text)", [.text(username)],
                row: Self.user(from:)
            ).first
        }
    }

    public func user(id: String) throws(StoreError) -> User? {
        try withConnection("finding user by id") { db throws(PostgresError) in
            try Self.user(id: id, in: db, lock: false)
        }
    }

    private static func user(id: String, in db: PostgresConnection, lock: Bool) throws(PostgresError) -> User? {
        let sql = "SELECT \(userColumns) FROM users WHERE id = $1" + (lock ? " FOR UPDATE" : "")
        return try db.query(sql, [.text(id)], row: user(from:)).first
    }

    public func updatePasswordHash(userID: String, passwordHash: String) throws(StoreError) {
        let changed = try withConnection("updating password hash") { db throws(PostgresError) in
            try db.query("UPDATE users SET password_hash = $1 WHERE id = $2", [.text(passwordHash), .text(userID)])
                .affected
        }
        guard changed > 0 else {
            throw StoreError(.notFound, "updating password hash: no such user")
        }
    }

    public func deleteUser(id: String) throws(StoreError) {
        let deleted = try withConnection("deleting user") { db throws(PostgresError) in
            try db.transaction { () throws(PostgresError) -> Int in
                try Self.lockRevocations(db)
                // Keep the sessions' ids until they expire: their access tokens must stay refused
                // after a restart, when the in-memory revocation set is rebuilt from revokedSessions.
                try db.query(
                    """
                    INSERT INTO deleted_sessions (id, expires_at)
                    SELECT id, expires_at FROM sessions WHERE user_id = $1
                    ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
                    """,
                    [.text(id)]
                )
                // Sessions and their refresh tokens go by ON DELETE CASCADE (sessions first, then
                // their tokens: the lock order of every other call).
                return try db.query("DELETE FROM users WHERE id = $1", [.text(id)]).affected
            }
        }
        guard deleted > 0 else {
            throw StoreError(.notFound, "deleting user: no such user")
        }
    }

    // MARK: - Administration

    public func updateUser(id: String, _ changes: UserChanges, at: Int64) throws(StoreError) -> UserUpdate {
        let update = try withConnection("updating user") { db throws(PostgresError) -> UserUpdate? in
            try db.transaction { () throws(PostgresError) -> UserUpdate? in
                try Self.lockRevocations(db)
                guard let before = try Self.user(id: id, in: db, lock: true) else { return nil }
                let roles = changes.roles(from: before.roles)
                let metadata = changes.appMetadata ?? before.appMetadata
                let locked = changes.locked ?? before.locked
                let after = User(
                    id: before.id, username: before.username, passwordHash: before.passwordHash,
                    createdAt: before.createdAt, roles: roles, appMetadata: metadata, locked: locked)
                guard after != before else { return UserUpdate(user: before, endedSessions: []) }
                try db.query(
                    "UPDATE users SET roles = $1, app_metadata = $2, locked = $3 WHERE id = $4",
                    [
                        .text(Self.encode(roles)), metadata.map { .text(Self.encode($0)) } ?? .null, .bool(locked),
                        .text(id),
                    ]
                )
                // What its tokens say changed, or it may hold none: every session ends with the change.
                let endsSessions =
                    roles != before.roles || metadata != before.appMetadata || (locked && !before.locked)
                let ended = endsSessions ? try Self.revokeSessions(userID: id, except: nil, at: at, in: db) : []
                return UserUpdate(user: after, endedSessions: ended)
            }
        }
        guard let update else {
            throw StoreError(.notFound, "updating user: no such user")
        }
        return update
    }

    public func listUsers(limit: Int, after: String?, matching: String?) throws(StoreError) -> UserPage {
        let limit = max(1, limit)
        let users = try withConnection("listing users") { db throws(PostgresError) in
            // Ordered and compared byte by byte (COLLATE "C") on lower(username), whatever the
            // database's collation: the order of SQLite's NOCASE. strpos: a substring match without
            // LIKE's wildcards.
            try db.query(
                """
                SELECT \(Self.userColumns) FROM users
                WHERE ($1::text IS NULL OR lower(username) COLLATE "C" > lower($1::text) COLLATE "C")
                  AND ($2::text IS NULL OR strpos(lower(username), lower($2::text)) > 0)
                ORDER BY lower(username) COLLATE "C"
                LIMIT $3::bigint
                """,
                [
                    after.map { .text($0) } ?? .null, matching.map { .text($0) } ?? .null,
                    .integer(Int64(limit) + 1),
                ],
                row: Self.user(from:)
            )
        }
        let page = Array(users.prefix(limit))
        return UserPage(users: page, next: users.count > limit ? page.last?.username : nil)
    }

    public func revocationCursor() throws(StoreError) -> Int64 {
        try withConnection("reading the revocation sequence") { db throws(PostgresError) in
            // The sequence keeps the largest position ever given, even after pruning. Under the shared
            // lock no session-ending transaction is in flight, so no position given out is still
            // invisible: the feed, starting here, misses none.
            try db.transaction { () throws(PostgresError) -> Int64 in
                try db.query("SELECT pg_advisory_xact_lock_shared($1::bigint)", [.integer(Self.revocationLockKey)])
                guard let row = try db.query("SELECT last_value, is_called FROM session_revocations_seq").rows.first
                else { throw .corrupt("the sequence session_revocations_seq is empty") }
                // Before the first nextval, last_value is the start value, not a position given out.
                guard try row.bool(1) else { return 0 }
                return try row.int64(0)
            }
        }
    }

    public func revocations(after cursor: Int64) throws(StoreError) -> RevocationBatch {
        let rows = try withConnection("reading revocations") { db throws(PostgresError) in
            // Positions are handed out under the revocation lock, in commit order: one is visible only
            // once every smaller one is.
            try db.query(
                """
                SELECT seq, session_id, expires_at FROM session_revocations
                WHERE seq > $1::bigint ORDER BY seq LIMIT 10000
                """,
                [.integer(cursor)]
            ) { row throws(PostgresError) in
                RevocationRow(seq: try row.int64(0), id: try row.text(1), expiresAt: try row.int64(2))
            }
        }
        return RevocationBatch(
            sessions: rows.map { (id: $0.id, expiresAt: $0.expiresAt) }, cursor: rows.last?.seq ?? cursor)
    }

    /// Sessions deleted per transaction by ``pruneExpired(now:)``.
    static let pruneBatch = 500

    public func pruneExpired(now: Int64) throws(StoreError) {
        // In batches, each a short transaction: the revocation lock (taken first, as by every
        // transaction that can end a session: deleting live sessions fires the trigger) and the
        // pool connection are held briefly, and other writers go on between batches.
        let cutoff = now - Self.expiredSessionRetention
        var deleted = Self.pruneBatch
        while deleted == Self.pruneBatch {
            deleted = try withConnection("pruning expired sessions") { db throws(PostgresError) -> Int in
                try db.transaction { () throws(PostgresError) -> Int in
                    try Self.lockRevocations(db)
                    // Refresh tokens go with their sessions (ON DELETE CASCADE). The trigger records
                    // the live ones among them in the sequence, already expired: the last statement
                    // takes those out again.
                    let sessions = try db.query(
                        """
                        DELETE FROM sessions WHERE id IN
                            (SELECT id FROM sessions WHERE expires_at <= $1::bigint LIMIT $2::bigint) RETURNING id
                        """,
                        [.integer(cutoff), .integer(Int64(Self.pruneBatch))]
                    ) { row throws(PostgresError) in try row.text(0) }
                    try db.query("DELETE FROM deleted_sessions WHERE expires_at <= $1", [.integer(now)])
                    try db.query("DELETE FROM session_revocations WHERE expires_at <= $1", [.integer(now)])
                    return sessions.count
                }
            }
        }
    }

    // MARK: - Sessions and refresh tokens

    public func createSession(_ session: Session, refreshTokenHash: [UInt8], refreshExpiresAt: Int64)
        throws(StoreError)
    {
        let meanings = ConstraintMeanings(foreignKey: StoreError(.notFound, "creating session: no such user"))
        try withConnection("creating session", constraints: meanings) { db throws(PostgresError) in
            try db.transaction { () throws(PostgresError) in
                try db.query(
                    """
                    INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at)
                    VALUES ($1, $2, $3, $4, $5)
                    """,
                    [
                        .text(session.id), .text(session.userID), .integer(session.createdAt),
                        .integer(session.expiresAt), session.revokedAt.map { .integer($0) } ?? .null,
                    ]
                )
                try db.query(
                    "INSERT INTO refresh_tokens (hash, session_id, expires_at, consumed_at) VALUES ($1, $2, $3, NULL)",
                    [.bytes(refreshTokenHash), .text(session.id), .integer(refreshExpiresAt)]
                )
            }
        }
    }

    public func rotateRefreshToken(hash: [UInt8], newHash: [UInt8], newExpiresAt: Int64, now: Int64)
        throws(StoreError) -> RefreshRotation
    {
        try withConnection("rotating refresh token") { db throws(PostgresError) in
            try db.transaction { () throws(PostgresError) -> RefreshRotation in
                // The session row first, then the token row: the lock order of revocation. A second
                // rotation of the same token waits here until the first commits, then reads the token
                // as the first left it (consumed), in a statement of its own that sees that commit.
                let sessionRow = try db.query(
                    """
                    SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions
                    WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = $1::bytea)
                    FOR UPDATE
                    """,
                    [.bytes(hash)]
                ).rows.first
                guard let sessionRow else { return .invalid }
                let session = Session(
                    id: try sessionRow.text(0),
                    userID: try sessionRow.text(1),
                    createdAt: try sessionRow.int64(2),
                    expiresAt: try sessionRow.int64(3),
                    revokedAt: try sessionRow.optionalInt64(4)
                )
                let tokenRow = try db.query(
                    "SELECT expires_at, consumed_at FROM refresh_tokens WHERE hash = $1::bytea FOR UPDATE",
                    [.bytes(hash)]
                ).rows.first
                // Gone meanwhile: its session was revoked (and its tokens deleted) first.
                guard let tokenRow, session.isActive(at: now) else {
                    return .invalid
                }
                // A consumed token presented while its session lives is a replay, even once the
                // token itself has expired: the caller ends the session.
                guard try tokenRow.optionalInt64(1) == nil else {
                    return .reused(sessionID: session.id)
                }
                let tokenExpiresAt = try tokenRow.int64(0)
                guard now < tokenExpiresAt else {
                    return .invalid
                }
                try db.query(
                    "UPDATE refresh_tokens SET consumed_at = $1 WHERE hash = $2::bytea", [.integer(now), .bytes(hash)])
                try db.query(
                    "INSERT INTO refresh_tokens (hash, session_id, expires_at, consumed_at) VALUES ($1, $2, $3, NULL)",
                    [.bytes(newHash), .text(session.id), .integer(newExpiresAt)]
                )
                let expiresAt = max(session.expiresAt, newExpiresAt)
                if expiresAt != session.expiresAt {
                    try db.query(
                        "UPDATE sessions SET expires_at = $1 WHERE id = $2", [.integer(expiresAt), .text(session.id)])
                }
                guard let user = try Self.user(id: session.userID, in: db, lock: false) else {
                    throw .corrupt("session \(session.id) has no user")
                }
                return .rotated(
                    Session(
                        id: session.id, userID: session.userID, createdAt: session.createdAt, expiresAt: expiresAt,
                        revokedAt: nil),
                    user: user)
            }
        }
    }

    public func revokeSession(id: String, at: Int64) throws(StoreError) {
        let found = try withConnection("revoking session") { db throws(PostgresError) in
            try db.transaction { () throws(PostgresError) -> Bool in
                try Self.lockRevocations(db)
                let matched = try db.query(
                    "UPDATE sessions SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2", [.integer(at), .text(id)]
                ).affected
                try db.query("DELETE FROM refresh_tokens WHERE session_id = $1", [.text(id)])
                return matched > 0
            }
        }
        guard found else {
            throw StoreError(.notFound, "revoking session: no such session")
        }
    }

    public func revokeSessions(userID: String, except: String?, at: Int64) throws(StoreError) -> [String] {
        try withConnection("revoking sessions of user") { db throws(PostgresError) in
            try db.transaction { () throws(PostgresError) -> [String] in
                try Self.lockRevocations(db)
                return try Self.revokeSessions(userID: userID, except: except, at: at, in: db)
            }
        }
    }

    /// `revokeSessions`, inside the caller's transaction (which holds the revocation lock).
    private static func revokeSessions(userID: String, except: String?, at: Int64, in db: PostgresConnection)
        throws(PostgresError) -> [String]
    {
        let revoked = try db.query(
            """
            UPDATE sessions SET revoked_at = $1
            WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1 AND id IS DISTINCT FROM $3::text
            RETURNING id
            """,
            [.integer(at), .text(userID), except.map { .text($0) } ?? .null]
        ) { row throws(PostgresError) in try row.text(0) }
        try db.query(
            """
            DELETE FROM refresh_tokens WHERE session_id IN
            (SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NOT NULL)
            """,
            [.text(userID)]
        )
        return revoked
    }

    public func session(id: String) throws(StoreError) -> Session? {
        try withConnection("finding session") { db throws(PostgresError) in
            try db.query(
                "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1", [.text(id)]
            ) { row throws(PostgresError) in
                Session(
                    id: try row.text(0),
                    userID: try row.text(1),
                    createdAt: try row.int64(2),
                    expiresAt: try row.int64(3),
                    revokedAt: try row.optionalInt64(4)
                )
            }.first
        }
    }

    public func revokedSessions(now: Int64) throws(StoreError) -> [(id: String, expiresAt: Int64)] {
        let rows = try withConnection("listing revoked sessions") { db throws(PostgresError) in
            try db.query(
                """
                SELECT id, expires_at FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > $1
                UNION ALL
                SELECT id, expires_at FROM deleted_sessions WHERE expires_at > $1
                """,
                [.integer(now)]
            ) { row throws(PostgresError) in
                RevokedSession(id: try row.text(0), expiresAt: try row.int64(1))
            }
        }
        return rows.map { (id: $0.id, expiresAt: $0.expiresAt) }
    }

    /// Checks that the store can serve requests now: a connection comes free within
    /// ``pingTimeoutMilliseconds`` (or a new one opens) and answers `SELECT 1`.
    ///
    /// Bounded by the ping timeout for a free connection, plus 1 s for the answer
    /// (``pingAnswerTimeout``), or, when a new connection must be opened to a server that does not
    /// answer, libpq's `connect_timeout` (5 s unless the URL sets it).
    /// - Throws: ``StoreError/Code/unavailable`` when either fails.
    public func ping() throws(StoreError) {
        do throws(PostgresError) {
            try pool.withConnection(timeout: Double(Self.pingTimeoutMilliseconds) / 1000) {
                db throws(PostgresError) in
                guard try db.query("SELECT 1", timeout: Self.pingAnswerTimeout).rows.first?.int64(0) == 1 else {
                    throw .corrupt("SELECT 1 did not answer 1")
                }
            }
        } catch {
            throw StoreError(error.storeCode, "ping: \(error.message)")
        }
    }

    // MARK: - Private

    /// The domain errors that violated constraints stand for, in one call: unique violations by
    /// constraint name (a primary-key clash is not a taken username), any foreign-key violation.
    private struct ConstraintMeanings {
        var unique: [String: StoreError]
        var foreignKey: StoreError?

        init(unique: [String: StoreError] = [:], foreignKey: StoreError? = nil) {
            self.unique = unique
            self.foreignKey = foreignKey
        }
    }

    private struct RevokedSession: Sendable {
        let id: String
        let expiresAt: Int64
    }

    private struct RevocationRow: Sendable {
        let seq: Int64
        let id: String
        let expiresAt: Int64
    }

    /// Runs `body` with a connection of the pool, mapping PostgreSQL failures to ``StoreError``.
    /// - Parameters:
    ///   - action: what is being done, for the message.
    ///   - constraints: what a violated constraint means in the domain; other failures map to their
    ///     damage class.
    private func withConnection<T: Sendable>(
        _ action: String,
        constraints: ConstraintMeanings = ConstraintMeanings(),
        _ body: (PostgresConnection) throws(PostgresError) -> T
    ) throws(StoreError) -> T {
        do throws(PostgresError) {
            return try pool.withConnection(body)
        } catch {
            if error.isUniqueViolation, let constraint = error.constraint,
                let meaning = constraints.unique[constraint]
            {
                throw meaning
            }
            if error.isForeignKeyViolation, let meaning = constraints.foreignKey {
                throw meaning
            }
            throw StoreError(error.storeCode, "\(action): \(error.message)")
        }
    }

    /// Takes the revocation lock for the rest of the caller's transaction. Every transaction that can
    /// end a session takes it before any row lock.
    private static func lockRevocations(_ db: PostgresConnection) throws(PostgresError) {
        try db.query("SELECT pg_advisory_xact_lock($1::bigint)", [.integer(revocationLockKey)])
    }

    /// The columns ``user(from:)`` reads, in its order.
    private static let userColumns = "id, username, password_hash, created_at, roles, app_metadata, locked"

    private static func user(from row: PostgresRow) throws(PostgresError) -> User {
        let rolesText = try row.text(4)
        guard let roles = (try? JSONValue.parse(rolesText))?.arrayValue?.compactMap(\.stringValue) else {
            throw .corrupt("the roles of a user are not a JSON array of strings")
        }
        var metadata: JSONObject?
        if let text = row.optionalText(5) {
            guard let object = (try? JSONValue.parse(text))?.objectValue else {
                throw .corrupt("the app_metadata of a user is not a JSON object")
            }
            metadata = object
        }
        return User(
            id: try row.text(0), username: try row.text(1), passwordHash: try row.text(2), createdAt: try row.int64(3),
            roles: roles, appMetadata: metadata, locked: try row.bool(6))
    }

    private static func encode(_ roles: [String]) -> String {
        String(decoding: JSONValue.array(roles.map { .string($0) }).serialized(), as: UTF8.self)
    }

    private static func encode(_ object: JSONObject) -> String {
        String(decoding: JSONValue.object(object).serialized(), as: UTF8.self)
    }

    /// Applies the migrations the database lacks, each in its own transaction, holding a
    /// session-level advisory lock throughout: a second instance starting at the same time waits,
    /// then finds them applied.
    /// - Returns: the schema version found before migrating.
    private static func migrate(_ db: PostgresConnection) throws(PostgresError) -> Int64 {
        // Waiting for another instance's migrations may take longer than one statement should.
        try db.setStatementTimeout(milliseconds: migrationTimeoutMilliseconds)
        try db.query("SELECT pg_advisory_lock($1::bigint)", [.integer(migrationLockKey)])
        defer {
            _ = try? db.query("SELECT pg_advisory_unlock($1::bigint)", [.integer(migrationLockKey)])
            _ = try? db.setStatementTimeout(milliseconds: statementTimeoutMilliseconds)
        }
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let version = try db.query("SELECT coalesce(max(version), 0) FROM schema_migrations").rows.first?.int64(0) ?? 0
        guard version >= 0, version < Int64(migrations.count) else {
            return version
        }
        for (index, migration) in migrations.enumerated().dropFirst(Int(version)) {
            try db.transaction { () throws(PostgresError) in
                try db.execute(migration)
                try db.query("INSERT INTO schema_migrations (version) VALUES ($1)", [.integer(Int64(index + 1))])
            }
        }
        return version
    }

    /// `statement_timeout` while migrating: how long an instance waits for another one's migrations.
    static let migrationTimeoutMilliseconds = 60_000

    /// Schema migrations; migration `n` (1-based) is recorded as version `n` in `schema_migrations`.
    /// Never edit one that has shipped: append a new one.
    ///
    /// Migration 1 is ``SQLiteStore``'s first two in one: the same tables with PostgreSQL types
    /// (`bigint` seconds, `bytea` hashes, `boolean`), the unique index on `lower(username)`, and the
    /// revocation sequence filled by triggers. Migration 2 adds the shared signing keys.
    static let migrations: [String] = [
        """
        CREATE TABLE users (
            id text PRIMARY KEY,
            username text NOT NULL,
            password_hash text NOT NULL,
            created_at bigint NOT NULL,
            roles text NOT NULL DEFAULT '[]',
            app_metadata text,
            locked boolean NOT NULL DEFAULT false
        );
        CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
        CREATE INDEX users_username_order ON users ((lower(username)) COLLATE "C");

        CREATE TABLE sessions (
            id text PRIMARY KEY,
            user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            revoked_at bigint
        );
        CREATE INDEX sessions_user_id ON sessions (user_id);
        CREATE INDEX sessions_revoked_expires_at ON sessions (expires_at) WHERE revoked_at IS NOT NULL;
        -- Expired sessions are pruned (`pruneExpired`), found by their expiry.
        CREATE INDEX sessions_expires_at ON sessions (expires_at);

        CREATE TABLE refresh_tokens (
            hash bytea PRIMARY KEY,
            session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            expires_at bigint NOT NULL,
            consumed_at bigint
        );
        CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

        -- Sessions deleted with their user, kept until they expire so that their access tokens
        -- stay refused across restarts.
        CREATE TABLE deleted_sessions (
            id text PRIMARY KEY,
            expires_at bigint NOT NULL
        );
        CREATE INDEX deleted_sessions_expires_at ON deleted_sessions (expires_at);

        -- Every session that ends, in the order it ended. Positions come from a sequence (never
        -- reused, kept across pruning) inside the trigger, under the transaction-level advisory lock
        -- 5143520228326471028 that every session-ending transaction holds until it commits: so they
        -- become visible in order, as SQLite's one writer at a time gives for free.
        CREATE SEQUENCE session_revocations_seq AS bigint;
        CREATE TABLE session_revocations (
            seq bigint PRIMARY KEY DEFAULT nextval('session_revocations_seq'),
            session_id text NOT NULL,
            expires_at bigint NOT NULL
        );
        ALTER SEQUENCE session_revocations_seq OWNED BY session_revocations.seq;
        CREATE INDEX session_revocations_expires_at ON session_revocations (expires_at);

        CREATE FUNCTION gatehouse_session_ended() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            ended_seq bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(5143520228326471028);
            IF TG_OP = 'DELETE' THEN
                INSERT INTO session_revocations (session_id, expires_at) VALUES (OLD.id, OLD.expires_at)
                RETURNING seq INTO ended_seq;
            ELSE
                INSERT INTO session_revocations (session_id, expires_at) VALUES (NEW.id, NEW.expires_at)
                RETURNING seq INTO ended_seq;
            END IF;
            -- Delivered to every listening instance at commit, in commit order (PostgresListener):
            -- they read the sequence at once instead of at their next poll.
            PERFORM pg_notify('gatehouse_revocations', ended_seq::text);
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
        FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
        EXECUTE FUNCTION gatehouse_session_ended();

        -- Sessions deleted with their user (ON DELETE CASCADE fires this too).
        CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
        FOR EACH ROW WHEN (OLD.revoked_at IS NULL)
        EXECUTE FUNCTION gatehouse_session_ended();
        """,
        // 2: the signing keys every instance shares (PostgresKeyStorage), in the order they were
        // made; any change is notified to the listening instances at commit, which reload them.
        """
        CREATE TABLE signing_keys (
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            kid text PRIMARY KEY,
            alg text NOT NULL,
            created bigint NOT NULL,
            activates bigint NOT NULL,
            material text NOT NULL
        );

        CREATE FUNCTION gatehouse_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('gatehouse_keys', '');
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
        FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_keys_changed();
        """,
    ]
}
