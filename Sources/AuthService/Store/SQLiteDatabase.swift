// The only file of the store that speaks C: a thin wrapper over one sqlite3 connection and its
// prepared statements. Nothing here knows the schema.
internal import CSQLite

/// A SQLite failure: the extended result code and the connection's message at the time.
struct SQLiteError: Error, Sendable {
    /// Extended result code (`sqlite3_extended_result_codes` is on).
    let code: Int
    /// `sqlite3_errmsg` (or `sqlite3_errstr`), with what was being done.
    let message: String

    /// The primary result code (the low byte of the extended one).
    var primaryCode: Int { code & 0xFF }

    // sqlite3.h defines the extended codes as `(SQLITE_CONSTRAINT | (n<<8))`, a macro shape Swift
    // does not import; these are the same values.

    /// A `UNIQUE` index was violated (`SQLITE_CONSTRAINT_UNIQUE`; not the primary key).
    var isUniqueConstraint: Bool { code == Int(SQLITE_CONSTRAINT) | (8 << 8) }

    /// A `REFERENCES` clause was violated (`SQLITE_CONSTRAINT_FOREIGNKEY`).
    var isForeignKeyConstraint: Bool { code == Int(SQLITE_CONSTRAINT) | (3 << 8) }

    /// The damage class of the failure, for ``StoreError``.
    var storeCode: StoreError.Code {
        switch Int32(truncatingIfNeeded: primaryCode) {
        case SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_FORMAT:
            return .corrupt
        case SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_FULL, SQLITE_READONLY,
            SQLITE_PERM, SQLITE_NOMEM, SQLITE_PROTOCOL, SQLITE_AUTH:
            return .unavailable
        default:
            return .failure
        }
    }

    fileprivate init(code: Int32, message: String) {
        self.code = Int(code)
        self.message = message
    }

    /// A failure detected by the wrapper itself (a value SQLite handed back that the schema forbids).
    static func corrupt(_ message: String) -> SQLiteError {
        SQLiteError(code: SQLITE_CORRUPT, message: message)
    }

    /// A failure detected by the wrapper itself (the database cannot be used as this code needs).
    static func unavailable(_ message: String) -> SQLiteError {
        SQLiteError(code: SQLITE_CANTOPEN, message: message)
    }

    /// A failure detected by the wrapper itself (misuse: an argument SQLite cannot take).
    static func misuse(_ message: String) -> SQLiteError {
        SQLiteError(code: SQLITE_MISUSE, message: message)
    }
}

/// A value bound to a statement parameter.
enum SQLiteValue {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

/// One result row. Valid only inside the closure it is passed to: do not keep it.
struct SQLiteRow {
    private let statement: OpaquePointer

    fileprivate init(_ statement: OpaquePointer) {
        self.statement = statement
    }

    /// An `INTEGER` column that the schema declares `NOT NULL`.
    func int64(_ column: Int) throws(SQLiteError) -> Int64 {
        guard let value = optionalInt64(column) else {
            throw .corrupt("unexpected NULL in integer column \(column)")
        }
        return value
    }

    /// An `INTEGER` column that may be `NULL`.
    func optionalInt64(_ column: Int) -> Int64? {
        let index = Int32(column)
        guard sqlite3_column_type(statement, index) != SQLITE_NULL else { return nil }
        return sqlite3_column_int64(statement, index)
    }

    /// A `TEXT` column that the schema declares `NOT NULL`.
    func text(_ column: Int) throws(SQLiteError) -> String {
        let index = Int32(column)
        // sqlite3_column_text must come before sqlite3_column_bytes (the conversion sets the length).
        guard let bytes = sqlite3_column_text(statement, index) else {
            throw .corrupt("unexpected NULL in text column \(column)")
        }
        let count = Int(sqlite3_column_bytes(statement, index))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// A `TEXT` column that may be `NULL`.
    func optionalText(_ column: Int) throws(SQLiteError) -> String? {
        guard sqlite3_column_type(statement, Int32(column)) != SQLITE_NULL else { return nil }
        return try text(column)
    }
}

/// A prepared statement, finalized when the object goes away.
private final class SQLiteStatement {
    let handle: OpaquePointer

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        // sqlite3_finalize repeats the error of the last step, already reported by step; it cannot fail itself.
        _ = sqlite3_finalize(handle)
    }
}

/// One sqlite3 connection (opened in multi-thread mode: the owner serializes all use of it) with a
/// cache of prepared statements. Closed when the object goes away.
final class SQLiteConnection {
    private let handle: OpaquePointer
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens (creating if missing) a database file for reading and writing.
    /// - Parameters:
    ///   - path: file path; the directory must exist.
    ///   - busyTimeoutMilliseconds: how long a statement waits for a lock held by another connection.
    init(path: String, busyTimeoutMilliseconds: Int) throws(SQLiteError) {
        var opened: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &opened, flags, nil)
        guard rc == SQLITE_OK, let opened else {
            let detail = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            // Even a failed open may allocate a handle, which must be released; closing nil is a no-op.
            _ = sqlite3_close_v2(opened)
            throw SQLiteError(code: rc, message: "cannot open database at \(path): \(detail) (SQLite \(rc))")
        }
        handle = opened
        // From here a throw runs deinit, which closes the handle.
        try check(sqlite3_extended_result_codes(handle, 1), "enabling extended result codes")
        try check(sqlite3_busy_timeout(handle, Int32(clamping: busyTimeoutMilliseconds)), "setting busy timeout")
    }

    deinit {
        // Statements first: a connection with live statements would only become a zombie.
        statements.removeAll()
        // sqlite3_close_v2 returns SQLITE_OK for any valid handle (it defers if anything is still open).
        _ = sqlite3_close_v2(handle)
    }

    /// Sets how long a statement waits for a lock held by another connection.
    func setBusyTimeout(milliseconds: Int) throws(SQLiteError) {
        try check(sqlite3_busy_timeout(handle, Int32(clamping: milliseconds)), "setting busy timeout")
    }

    /// Whether the main database file was deleted, renamed or replaced since this connection opened
    /// it (`SQLITE_FCNTL_HAS_MOVED`): the connection then reads and writes a file that the next start
    /// will not find. False where the VFS cannot tell (an in-memory database).
    var databaseFileHasMoved: Bool {
        var moved: Int32 = 0
        let rc = sqlite3_file_control(handle, "main", SQLITE_FCNTL_HAS_MOVED, &moved)
        return rc == SQLITE_OK && moved != 0
    }

    /// Runs one or more statements that return no rows (schema changes, pragmas that set).
    func execute(_ sql: String) throws(SQLiteError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        let detail = errorMessage.map { String(cString: $0) }
        sqlite3_free(errorMessage)
        guard rc == SQLITE_OK else {
            throw SQLiteError(code: rc, message: "\(detail ?? lastMessage) (SQLite \(rc))")
        }
    }

    /// Runs one statement that returns no rows.
    /// - Returns: the number of rows it changed.
    @discardableResult
    func run(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> Int {
        let statement = try prepared(sql)
        defer { reset(statement) }
        try bind(bindings, to: statement)
        while try step(statement, sql) {}
        return Int(sqlite3_changes(handle))
    }

    /// Runs one statement and maps each row it returns.
    func query<T>(
        _ sql: String,
        _ bindings: [SQLiteValue] = [],
        row transform: (SQLiteRow) throws(SQLiteError) -> T
    ) throws(SQLiteError) -> [T] {
        let statement = try prepared(sql)
        defer { reset(statement) }
        try bind(bindings, to: statement)
        var rows: [T] = []
        while try step(statement, sql) {
            let row = SQLiteRow(statement.handle)
            rows.append(try transform(row))
        }
        return rows
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: the write lock is taken at the start, so two
    /// connections doing read-then-write never interleave. Commits if `body` returns, rolls back if
    /// it throws.
    func transaction<T>(_ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try run("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try run("COMMIT")
            return result
        } catch {
            // SQLite may already have rolled back (some errors do); then there is nothing to undo.
            if sqlite3_get_autocommit(handle) == 0 {
                do {
                    try run("ROLLBACK")
                } catch let rollbackError {
                    throw SQLiteError(
                        code: Int32(truncatingIfNeeded: rollbackError.code),
                        message: "\(error.message); then rollback failed: \(rollbackError.message)"
                    )
                }
            }
            throw error
        }
    }

    // MARK: - Private

    private var lastMessage: String {
        String(cString: sqlite3_errmsg(handle))
    }

    private func check(_ rc: Int32, _ action: String) throws(SQLiteError) {
        guard rc == SQLITE_OK else {
            throw SQLiteError(code: rc, message: "\(action): \(lastMessage) (SQLite \(rc))")
        }
    }

    private func prepared(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let statement = statements[sql] {
            return statement
        }
        var raw: OpaquePointer?
        var rest = ""
        let rc = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v3(handle, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, &tail)
            // The tail points into `text`: read it before the buffer goes away.
            if let tail {
                rest = String(cString: tail)
            }
            return rc
        }
        guard rc == SQLITE_OK, let raw else {
            _ = sqlite3_finalize(raw)
            throw SQLiteError(code: rc, message: "preparing \(sql): \(lastMessage) (SQLite \(rc))")
        }
        let statement = SQLiteStatement(handle: raw)
        // One statement per call: text after the first statement would silently never run.
        guard rest.allSatisfy({ $0.isWhitespace || $0 == ";" }) else {
            throw .misuse("more than one statement in: \(sql)")
        }
        statements[sql] = statement
        return statement
    }

    private func bind(_ values: [SQLiteValue], to statement: SQLiteStatement) throws(SQLiteError) {
        let expected = Int(sqlite3_bind_parameter_count(statement.handle))
        guard values.count == expected else {
            throw .misuse("statement takes \(expected) parameters, given \(values.count)")
        }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .integer(let number):
                rc = sqlite3_bind_int64(statement.handle, index, number)
            case .null:
                rc = sqlite3_bind_null(statement.handle, index)
            case .text(let string):
                var string = string
                rc = string.withUTF8 { utf8 in
                    guard let length = Int32(exactly: utf8.count) else { return SQLITE_TOOBIG }
                    // A NULL pointer would bind SQL NULL; an empty string must stay an empty string.
                    guard let base = utf8.baseAddress, length > 0 else {
                        return CSQLite_bind_text(statement.handle, index, "", 0)
                    }
                    return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) { chars in
                        CSQLite_bind_text(statement.handle, index, chars, length)
                    }
                }
            case .blob(let bytes):
                rc = bytes.withUnsafeBytes { raw in
                    guard let length = Int32(exactly: raw.count) else { return SQLITE_TOOBIG }
                    guard let base = raw.baseAddress, length > 0 else {
                        return sqlite3_bind_zeroblob(statement.handle, index, 0)
                    }
                    return CSQLite_bind_blob(statement.handle, index, base, length)
                }
            }
            try check(rc, "binding parameter \(index)")
        }
    }

    /// Advances a statement. Returns `true` when a row is ready, `false` when it is done.
    private func step(_ statement: SQLiteStatement, _ sql: String) throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(statement.handle)
        switch rc {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            return false
        default:
            throw SQLiteError(code: rc, message: "\(lastMessage) (SQLite \(rc)) in: \(sql)")
        }
    }

    private func reset(_ statement: SQLiteStatement) {
        // sqlite3_reset repeats the error of the last step (already thrown by step); resetting at
        // once ends the statement's read snapshot, which in WAL mode would otherwise stay open.
        _ = sqlite3_reset(statement.handle)
        // sqlite3_clear_bindings always returns SQLITE_OK; it drops copies of bound secrets early.
        _ = sqlite3_clear_bindings(statement.handle)
    }
}
