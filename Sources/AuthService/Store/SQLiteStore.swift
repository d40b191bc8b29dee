import JSON
import MicroHTTP

/// The embedded default ``UserStore``: one SQLite file in WAL mode.
///
/// One connection serves the whole process; a lock serializes its use, so no prepared statement
/// is ever shared between threads. Every multi-step change runs in a `BEGIN IMMEDIATE` transaction,
/// which also keeps it atomic against other processes using the same file (for instance
/// `gatehouse users ...` while the service runs); they wait up to the busy timeout for each other.
public final class SQLiteStore: UserStore {
    /// How long a statement waits for a lock held by another connection, in milliseconds.
    public static let busyTimeoutMilliseconds = 5000

    /// The database file.
    public let path: String

    private let connection: LockedValue<SQLiteConnection?>

    /// Opens the database file, creating it (not its directory) if missing, and brings its schema up
    /// to date.
    /// - Parameter path: the file; its directory must exist.
    /// - Throws: ``StoreError/Code/unavailable`` if the file cannot be opened or set up (missing
    ///   directory, permissions, locked), ``StoreError/Code/corrupt`` if it is not a usable database,
    ///   ``StoreError/Code/incompatibleSchema`` if a newer Gatehouse wrote it.
    public init(path: String) throws(StoreError) {
        self.path = path
        let opened: SQLiteConnection
        let version: Int64
        do throws(SQLiteError) {
            opened = try SQLiteConnection(path: path, busyTimeoutMilliseconds: Self.busyTimeoutMilliseconds)
            try Self.configure(opened)
            version = try Self.migrate(opened)
        } catch {
            throw StoreError(error.storeCode, "opening SQLite store at \(path): \(error.message)")
        }
        guard version <= Int64(Self.migrations.count) else {
            throw StoreError(
                .incompatibleSchema,
                "SQLite store at \(path) has schema version \(version); this build knows up to \(Self.migrations.count)"
            )
        }
        connection = LockedValue(opened)
    }

    /// Closes the database. Later calls throw ``StoreError/Code/unavailable``. Calling it again does
    /// nothing. Dropping the last reference to the store closes it too.
    public func close() {
        // The connection's deinit finalizes its statements and closes the handle, under the lock.
        connection.withLock { $0 = nil }
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
        let meanings = ConstraintMeanings(unique: StoreError(.usernameTaken, "a user with this username exists"))
        return try withConnection("creating user", constraints: meanings) { db throws(SQLiteError) in
            try db.run(
                "INSERT INTO users (id, username, password_hash, created_at, roles) VALUES (?, ?, ?, ?, ?)",
                [.text(id), .text(username), .text(passwordHash), .integer(createdAt), .text(Self.encode(roles))]
            )
            return User(id: id, username: username, passwordHash: passwordHash, createdAt: createdAt, roles: roles)
        }
    }

    public func user(named username: String) throws(StoreError) -> User? {
        try withConnection("finding user by name") { db throws(SQLiteError) in
            try db.query(
                "SELECT \(Self.userColumns) FROM users WHERE username = ? COLLATE NOCASE",
                [.text(username)],
                row: Self.user(from:)
            ).first
        }
    }

    public func user(id: String) throws(StoreError) -> User? {
        try withConnection("finding user by id") { db throws(SQLiteError) in
            try Self.user(id: id, in: db)
        }
    }

    private static func user(id: String, in db: SQLiteConnection) throws(SQLiteError) -> User? {
        try db.query("SELECT \(userColumns) FROM users WHERE id = ?", [.text(id)], row: user(from:)).first
    }

    public func updatePasswordHash(userID: String, passwordHash: String) throws(StoreError) {
        let changed = try withConnection("updating password hash") { db throws(SQLiteError) in
            try db.run("UPDATE users SET password_hash = ? WHERE id = ?", [.text(passwordHash), .text(userID)])
        }
        guard changed > 0 else {
            throw StoreError(.notFound, "updating password hash: no such user")
        }
    }

    public func deleteUser(id: String) throws(StoreError) {
        let deleted = try withConnection("deleting user") { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) -> Int in
                // Keep the sessions' ids until they expire: their access tokens must stay refused
                // after a restart, when the in-memory revocation set is rebuilt from revokedSessions.
                try db.run(
                    """
                    INSERT OR REPLACE INTO deleted_sessions (id, expires_at)
                    SELECT id, expires_at FROM sessions WHERE user_id = ?
                    """,
                    [.text(id)]
                )
                // Sessions and their refresh tokens go by ON DELETE CASCADE.
                return try db.run("DELETE FROM users WHERE id = ?", [.text(id)])
            }
        }
        guard deleted > 0 else {
            throw StoreError(.notFound, "deleting user: no such user")
        }
    }

    // MARK: - Administration

    public func updateUser(id: String, _ changes: UserChanges, at: Int64) throws(StoreError) -> UserUpdate {
        let update = try withConnection("updating user") { db throws(SQLiteError) -> UserUpdate? in
            try db.transaction { () throws(SQLiteError) -> UserUpdate? in
                guard let before = try Self.user(id: id, in: db) else { return nil }
                let roles = changes.roles(from: before.roles)
                let metadata = changes.appMetadata ?? before.appMetadata
                let locked = changes.locked ?? before.locked
                let after = User(
                    id: before.id, username: before.username, passwordHash: before.passwordHash,
                    createdAt: before.createdAt, roles: roles, appMetadata: metadata, locked: locked)
                guard after != before else { return UserUpdate(user: before, endedSessions: []) }
                try db.run(
                    "UPDATE users SET roles = ?, app_metadata = ?, locked = ? WHERE id = ?",
                    [
                        .text(Self.encode(roles)), metadata.map { .text(Self.encode($0)) } ?? .null,
                        .integer(locked ? 1 : 0), .text(id),
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
        let users = try withConnection("listing users") { db throws(SQLiteError) in
            // instr on lower(): a substring match without LIKE's wildcards (usernames are ASCII).
            try db.query(
                """
                SELECT \(Self.userColumns) FROM users
                WHERE (?1 IS NULL OR username > ?1 COLLATE NOCASE)
                  AND (?2 IS NULL OR instr(lower(username), lower(?2)) > 0)
                ORDER BY username COLLATE NOCASE
                LIMIT ?3
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
        try withConnection("reading the revocation sequence") { db throws(SQLiteError) in
            // sqlite_sequence keeps the largest position ever given, even after pruning.
            try db.query("SELECT seq FROM sqlite_sequence WHERE name = 'session_revocations'") {
                row throws(SQLiteError) in try row.int64(0)
            }.first ?? 0
        }
    }

    public func revocations(after cursor: Int64) throws(StoreError) -> RevocationBatch {
        let rows = try withConnection("reading revocations") { db throws(SQLiteError) in
            // One writer at a time: a position is visible only once every smaller one is.
            try db.query(
                "SELECT seq, session_id, expires_at FROM session_revocations WHERE seq > ? ORDER BY seq LIMIT 10000",
                [.integer(cursor)]
            ) { row throws(SQLiteError) in
                RevocationRow(seq: try row.int64(0), id: try row.text(1), expiresAt: try row.int64(2))
            }
        }
        return RevocationBatch(
            sessions: rows.map { (id: $0.id, expiresAt: $0.expiresAt) }, cursor: rows.last?.seq ?? cursor)
    }

    /// Sessions deleted per transaction by ``pruneExpired(now:)``.
    static let pruneBatch = 500

    public func pruneExpired(now: Int64) throws(StoreError) {
        // In batches, each a short transaction of its own, and with the ping's short busy timeout:
        // the store's one connection and SQLite's write lock are held for milliseconds at a time,
        // and a write lock held elsewhere (`gatehouse users ...`) makes this give up quickly
        // (the next round goes on) rather than hold up requests for the busy timeout.
        let cutoff = now - Self.expiredSessionRetention
        var deleted = Self.pruneBatch
        while deleted == Self.pruneBatch {
            deleted = try withConnection("pruning expired sessions") { db throws(SQLiteError) -> Int in
                try db.setBusyTimeout(milliseconds: Self.pingTimeoutMilliseconds)
                defer { _ = try? db.setBusyTimeout(milliseconds: Self.busyTimeoutMilliseconds) }
                return try db.transaction { () throws(SQLiteError) -> Int in
                    // Refresh tokens go with their sessions (ON DELETE CASCADE). The sessions_deleted
                    // trigger records the live ones among them in the sequence, already expired:
                    // the last statement takes those out again.
                    let sessions = try db.run(
                        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= ? LIMIT ?)",
                        [.integer(cutoff), .integer(Int64(Self.pruneBatch))])
                    _ = try db.run("DELETE FROM deleted_sessions WHERE expires_at <= ?", [.integer(now)])
                    _ = try db.run("DELETE FROM session_revocations WHERE expires_at <= ?", [.integer(now)])
                    return sessions
                }
            }
        }
    }

    // MARK: - Sessions and refresh tokens

    public func createSession(_ session: Session, refreshTokenHash: [UInt8], refreshExpiresAt: Int64)
        throws(StoreError)
    {
        let meanings = ConstraintMeanings(foreignKey: StoreError(.notFound, "creating session: no such user"))
        try withConnection("creating session", constraints: meanings) { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) in
                try db.run(
                    "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?)",
                    [
                        .text(session.id), .text(session.userID), .integer(session.createdAt),
                        .integer(session.expiresAt), session.revokedAt.map { .integer($0) } ?? .null,
                    ]
                )
                try db.run(
                    "INSERT INTO refresh_tokens (hash, session_id, expires_at, consumed_at) VALUES (?, ?, ?, NULL)",
                    [.blob(refreshTokenHash), .text(session.id), .integer(refreshExpiresAt)]
                )
            }
        }
    }

    public func rotateRefreshToken(hash: [UInt8], newHash: [UInt8], newExpiresAt: Int64, now: Int64)
        throws(StoreError) -> RefreshRotation
    {
        try withConnection("rotating refresh token") { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) -> RefreshRotation in
                let found = try db.query(
                    """
                    SELECT t.expires_at, t.consumed_at, s.id, s.user_id, s.created_at, s.expires_at, s.revoked_at
                    FROM refresh_tokens AS t JOIN sessions AS s ON s.id = t.session_id
                    WHERE t.hash = ?
                    """,
                    [.blob(hash)]
                ) { row throws(SQLiteError) in
                    (
                        tokenExpiresAt: try row.int64(0),
                        consumedAt: row.optionalInt64(1),
                        session: Session(
                            id: try row.text(2),
                            userID: try row.text(3),
                            createdAt: try row.int64(4),
                            expiresAt: try row.int64(5),
                            revokedAt: row.optionalInt64(6)
                        )
                    )
                }.first
                guard let found, found.session.isActive(at: now) else {
                    return .invalid
                }
                // A consumed token presented while its session lives is a replay, even once the
                // token itself has expired: the caller ends the session.
                guard found.consumedAt == nil else {
                    return .reused(sessionID: found.session.id)
                }
                guard now < found.tokenExpiresAt else {
                    return .invalid
                }
                try db.run("UPDATE refresh_tokens SET consumed_at = ? WHERE hash = ?", [.integer(now), .blob(hash)])
                try db.run(
                    "INSERT INTO refresh_tokens (hash, session_id, expires_at, consumed_at) VALUES (?, ?, ?, NULL)",
                    [.blob(newHash), .text(found.session.id), .integer(newExpiresAt)]
                )
                let expiresAt = max(found.session.expiresAt, newExpiresAt)
                if expiresAt != found.session.expiresAt {
                    try db.run(
                        "UPDATE sessions SET expires_at = ? WHERE id = ?",
                        [.integer(expiresAt), .text(found.session.id)]
                    )
                }
                guard let user = try Self.user(id: found.session.userID, in: db) else {
                    throw .corrupt("session \(found.session.id) has no user")
                }
                return .rotated(
                    Session(
                        id: found.session.id,
                        userID: found.session.userID,
                        createdAt: found.session.createdAt,
                        expiresAt: expiresAt,
                        revokedAt: nil
                    ),
                    user: user
                )
            }
        }
    }

    public func revokeSession(id: String, at: Int64) throws(StoreError) {
        let found = try withConnection("revoking session") { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) -> Bool in
                let matched = try db.run(
                    "UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                    [.integer(at), .text(id)]
                )
                try db.run("DELETE FROM refresh_tokens WHERE session_id = ?", [.text(id)])
                return matched > 0
            }
        }
        guard found else {
            throw StoreError(.notFound, "revoking session: no such session")
        }
    }

    public func revokeSessions(userID: String, except: String?, at: Int64) throws(StoreError) -> [String] {
        try withConnection("revoking sessions of user") { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) -> [String] in
                try Self.revokeSessions(userID: userID, except: except, at: at, in: db)
            }
        }
    }

    /// `revokeSessions`, inside the caller's transaction.
    private static func revokeSessions(userID: String, except: String?, at: Int64, in db: SQLiteConnection)
        throws(SQLiteError) -> [String]
    {
        // `id IS NOT NULL` (no exception) holds for every row.
        let revoked = try db.query(
            """
            UPDATE sessions SET revoked_at = ?
            WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND id IS NOT ?
            RETURNING id
            """,
            [.integer(at), .text(userID), .integer(at), except.map { .text($0) } ?? .null]
        ) { row throws(SQLiteError) in try row.text(0) }
        try db.run(
            """
            DELETE FROM refresh_tokens WHERE session_id IN
            (SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NOT NULL)
            """,
            [.text(userID)]
        )
        return revoked
    }

    public func session(id: String) throws(StoreError) -> Session? {
        try withConnection("finding session") { db throws(SQLiteError) in
            try db.query(
                "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = ?",
                [.text(id)]
            ) { row throws(SQLiteError) in
                Session(
                    id: try row.text(0),
                    userID: try row.text(1),
                    createdAt: try row.int64(2),
                    expiresAt: try row.int64(3),
                    revokedAt: row.optionalInt64(4)
                )
            }.first
        }
    }

    public func revokedSessions(now: Int64) throws(StoreError) -> [(id: String, expiresAt: Int64)] {
        let rows = try withConnection("listing revoked sessions") { db throws(SQLiteError) in
            try db.query(
                """
                SELECT id, expires_at FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > ?
                UNION ALL
                SELECT id, expires_at FROM deleted_sessions WHERE expires_at > ?
                """,
                [.integer(now), .integer(now)]
            ) { row throws(SQLiteError) in
                RevokedSession(id: try row.text(0), expiresAt: try row.int64(1))
            }
        }
        return rows.map { (id: $0.id, expiresAt: $0.expiresAt) }
    }

    /// How long ``ping()`` waits for the write lock, in milliseconds. A readiness probe must answer
    /// quickly, and a lock held longer than this stalls every write anyway.
    public static let pingTimeoutMilliseconds = 500

    /// Checks that the store can serve requests now: the connection is open, the database file is
    /// still the one it opened (not deleted, renamed or replaced: the open connection would keep
    /// working on a file the next start will not see), and the write lock can be taken within
    /// ``pingTimeoutMilliseconds`` (`BEGIN IMMEDIATE`, a read of the schema, `ROLLBACK`; nothing is
    /// written). A plain read would pass in all those cases: in WAL mode readers never wait for a
    /// writer, and the schema is cached.
    ///
    /// Bounded by the ping timeout, plus the wait for the connection when another call holds it
    /// (itself bounded by ``busyTimeoutMilliseconds``).
    /// - Throws: ``StoreError/Code/unavailable`` when any of those fails.
    public func ping() throws(StoreError) {
        try withConnection("ping") { db throws(SQLiteError) in
            guard !db.databaseFileHasMoved else {
                throw .unavailable("the database file was deleted, renamed or replaced since it was opened")
            }
            try db.setBusyTimeout(milliseconds: Self.pingTimeoutMilliseconds)
            defer { _ = try? db.setBusyTimeout(milliseconds: Self.busyTimeoutMilliseconds) }
            try db.run("BEGIN IMMEDIATE")
            do throws(SQLiteError) {
                _ = try db.query("SELECT count(*) FROM sqlite_master") { row throws(SQLiteError) in try row.int64(0) }
            } catch {
                _ = try? db.run("ROLLBACK")
                throw error
            }
            try db.run("ROLLBACK")
        }
    }

    // MARK: - Private

    /// The domain errors that violated constraints stand for, in one call.
    private struct ConstraintMeanings {
        var unique: StoreError?
        var foreignKey: StoreError?

        init(unique: StoreError? = nil, foreignKey: StoreError? = nil) {
            self.unique = unique
            self.foreignKey = foreignKey
        }
    }

    private struct RevokedSession: Sendable {
        let id: String
        let expiresAt: Int64
    }

    /// Runs `body` with the connection held, mapping SQLite failures to ``StoreError``.
    /// - Parameters:
    ///   - action: what is being done, for the message.
    ///   - constraints: what a violated constraint means in the domain; other failures map to their
    ///     damage class.
    private func withConnection<T: Sendable>(
        _ action: String,
        constraints: ConstraintMeanings = ConstraintMeanings(),
        _ body: (SQLiteConnection) throws(SQLiteError) -> T
    ) throws(StoreError) -> T {
        try connection.withLock { (connection) throws(StoreError) -> T in
            guard let connection else {
                throw StoreError(.unavailable, "\(action): the store is closed")
            }
            do throws(SQLiteError) {
                return try body(connection)
            } catch {
                if error.isUniqueConstraint, let meaning = constraints.unique {
                    throw meaning
                }
                if error.isForeignKeyConstraint, let meaning = constraints.foreignKey {
                    throw meaning
                }
                throw StoreError(error.storeCode, "\(action): \(error.message)")
            }
        }
    }

    private struct RevocationRow: Sendable {
        let seq: Int64
        let id: String
        let expiresAt: Int64
    }

    /// The columns ``user(from:)`` reads, in its order.
    private static let userColumns = "id, username, password_hash, created_at, roles, app_metadata, locked"

    private static func user(from row: SQLiteRow) throws(SQLiteError) -> User {
        let rolesText = try row.text(4)
        guard let roles = (try? JSONValue.parse(rolesText))?.arrayValue?.compactMap(\.stringValue) else {
            throw .corrupt("the roles of a user are not a JSON array of strings")
        }
        var metadata: JSONObject?
        if let text = try row.optionalText(5) {
            guard let object = (try? JSONValue.parse(text))?.objectValue else {
                throw .corrupt("the app_metadata of a user is not a JSON object")
            }
            metadata = object
        }
        return User(
            id: try row.text(0), username: try row.text(1), passwordHash: try row.text(2), createdAt: try row.int64(3),
            roles: roles, appMetadata: metadata, locked: try row.int64(6) != 0)
    }

    private static func encode(_ roles: [String]) -> String {
        String(decoding: JSONValue.array(roles.map { .string($0) }).serialized(), as: UTF8.self)
    }

    private static func encode(_ object: JSONObject) -> String {
        String(decoding: JSONValue.object(object).serialized(), as: UTF8.self)
    }

    private static func configure(_ db: SQLiteConnection) throws(SQLiteError) {
        let mode = try db.query("PRAGMA journal_mode = WAL") { row throws(SQLiteError) in try row.text(0) }.first
        // An in-memory database reports "memory"; anything else means WAL is unavailable here (for
        // instance on some network file systems), and concurrent readers would block on writers.
        guard let mode, ["wal", "memory"].contains(mode.lowercased()) else {
            throw .unavailable("journal_mode WAL refused (got \(mode ?? "nothing"))")
        }
        // FULL: in WAL mode every commit syncs the WAL before it returns, so an acknowledged logout,
        // revocation or refresh rotation survives power loss too; NORMAL survives only a process crash
        // and may roll the last commits back after an OS crash (README, Durability; ~0.4 ms a commit).
        try db.execute("PRAGMA synchronous = FULL")
        try db.execute("PRAGMA foreign_keys = ON")
        let foreignKeys = try db.query("PRAGMA foreign_keys") { row throws(SQLiteError) in try row.int64(0) }.first
        guard foreignKeys == 1 else {
            throw .unavailable("this SQLite does not enforce foreign keys")
        }
    }

    /// Applies the migrations the file lacks, all in one transaction.
    /// - Returns: the schema version found before migrating.
    private static func migrate(_ db: SQLiteConnection) throws(SQLiteError) -> Int64 {
        // The version is read inside the write transaction, so two processes opening a new file at
        // once do not both create the schema.
        try db.transaction { () throws(SQLiteError) -> Int64 in
            let version = try db.query("PRAGMA user_version") { row throws(SQLiteError) in try row.int64(0) }.first ?? 0
            guard version >= 0, version < Int64(migrations.count) else {
                return version
            }
            for migration in migrations[Int(version)...] {
                try db.execute(migration)
            }
            try db.execute("PRAGMA user_version = \(migrations.count)")
            return version
        }
    }

    /// Schema migrations; migration `n` (1-based) brings `PRAGMA user_version` from `n - 1` to `n`.
    /// Never edit one that has shipped: append a new one.
    private static let migrations: [String] = [
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY NOT NULL,
            username TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX users_username_nocase ON users (username COLLATE NOCASE);

        CREATE TABLE sessions (
            id TEXT PRIMARY KEY NOT NULL,
            user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            revoked_at INTEGER
        );
        CREATE INDEX sessions_user_id ON sessions (user_id);
        CREATE INDEX sessions_revoked_expires_at ON sessions (expires_at) WHERE revoked_at IS NOT NULL;

        CREATE TABLE refresh_tokens (
            hash BLOB PRIMARY KEY NOT NULL,
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            expires_at INTEGER NOT NULL,
            consumed_at INTEGER
        );
        CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

        -- Sessions deleted with their user, kept until they expire so that their access tokens
        -- stay refused across restarts.
        CREATE TABLE deleted_sessions (
            id TEXT PRIMARY KEY NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX deleted_sessions_expires_at ON deleted_sessions (expires_at);
        """,
        // 2: roles, app claims and locking (issue #10), and the revocation sequence through which a
        // running service learns of sessions another process (`gatehouse users ...`) ended.
        """
        ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE users ADD COLUMN app_metadata TEXT;
        ALTER TABLE users ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;

        -- Every session that ends, in the order it ended: AUTOINCREMENT never reuses a position.
        -- Filled by the triggers below, so no writer can forget it.
        CREATE TABLE session_revocations (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX session_revocations_expires_at ON session_revocations (expires_at);

        CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
        WHEN old.revoked_at IS NULL AND new.revoked_at IS NOT NULL
        BEGIN
            INSERT INTO session_revocations (session_id, expires_at) VALUES (new.id, new.expires_at);
        END;

        -- Sessions deleted with their user (ON DELETE CASCADE fires this too).
        CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
        WHEN old.revoked_at IS NULL
        BEGIN
            INSERT INTO session_revocations (session_id, expires_at) VALUES (old.id, old.expires_at);
        END;
        """,
        // 3: expired sessions are pruned (`pruneExpired`), found by their expiry.
        """
        CREATE INDEX sessions_expires_at ON sessions (expires_at);
        """,
    ]
}
