// The only file of the PostgreSQL store that speaks C: a thin wrapper over one libpq connection and
// its prepared statements. Nothing here knows the schema.
internal import CLibPQ
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL failure: the SQLSTATE the server sent (nil for a failure on the client side, a broken
/// connection among them), its message, and the constraint it names.
struct PostgresError: Error, Sendable {
    /// The five-character SQLSTATE (`23505`), or nil when the server sent none.
    let sqlState: String?
    /// What was being done, and the server's (or libpq's) message.
    let message: String
    /// The violated constraint (`users_username_lower`), for integrity violations.
    let constraint: String?
    /// The connection is unusable (lost, never made): the pool drops it.
    let connectionBroken: Bool
    /// The server did not answer in time: what was sent may yet be applied, so it is not repeated.
    let unanswered: Bool

    init(
        sqlState: String? = nil, message: String, constraint: String? = nil, connectionBroken: Bool = false,
        unanswered: Bool = false
    ) {
        self.sqlState = sqlState
        self.message = message
        self.constraint = constraint
        self.connectionBroken = connectionBroken || unanswered
        self.unanswered = unanswered
    }

    /// A `UNIQUE` (or primary-key) constraint was violated.
    var isUniqueViolation: Bool { sqlState == "23505" }

    /// A `REFERENCES` clause was violated.
    var isForeignKeyViolation: Bool { sqlState == "23503" }

    /// The damage class of the failure, for ``StoreError``.
    var storeCode: StoreError.Code {
        if connectionBroken { return .unavailable }
        guard let sqlState else { return .failure }
        // Class 08 connection exception, 53 insufficient resources (too many connections, disk
        // full), 57 operator intervention (57014 statement timeout or cancel, 57P01 shutdown),
        // 58 system error (I/O), 28 authorization, 3D000 no such database, 40001/40P01
        // serialization failure and deadlock, 55P03 lock not available: retry later.
        let retryable = ["08", "53", "57", "58", "28"]
        if retryable.contains(String(sqlState.prefix(2))) || ["3D000", "40001", "40P01", "55P03"].contains(sqlState) {
            return .unavailable
        }
        // XX001 data corrupted, XX002 index corrupted.
        if sqlState == "XX001" || sqlState == "XX002" { return .corrupt }
        return .failure
    }

    /// A failure detected by the wrapper itself (a value the server handed back that the schema forbids).
    static func corrupt(_ message: String) -> PostgresError {
        PostgresError(sqlState: "XX001", message: message)
    }

    /// A failure detected by the wrapper itself (misuse: an argument PostgreSQL cannot take).
    static func misuse(_ message: String) -> PostgresError {
        PostgresError(message: message)
    }
}

/// A value bound to a statement parameter, sent as text (PostgreSQL converts it to the parameter's type).
enum PostgresValue {
    case integer(Int64)
    case text(String)
    /// Sent as `bytea` hex text (`\x0aff...`).
    case bytes([UInt8])
    case bool(Bool)
    case null
}

/// One result row, copied out of libpq at once (text format: every value as the server prints it).
struct PostgresRow: Sendable {
    let values: [String?]

    /// A column the schema declares `NOT NULL`, as text.
    func text(_ column: Int) throws(PostgresError) -> String {
        guard column < values.count, let value = values[column] else {
            throw .corrupt("unexpected NULL in column \(column)")
        }
        return value
    }

    /// A column that may be `NULL`, as text.
    func optionalText(_ column: Int) -> String? {
        column < values.count ? values[column] : nil
    }

    /// A `bigint` (or `integer`) column the schema declares `NOT NULL`.
    func int64(_ column: Int) throws(PostgresError) -> Int64 {
        let text = try text(column)
        guard let value = Int64(text) else { throw .corrupt("column \(column) is not an integer: \(text)") }
        return value
    }

    /// A `bigint` column that may be `NULL`.
    func optionalInt64(_ column: Int) throws(PostgresError) -> Int64? {
        guard optionalText(column) != nil else { return nil }
        return try int64(column)
    }

    /// A `boolean` column the schema declares `NOT NULL` (`t` or `f`).
    func bool(_ column: Int) throws(PostgresError) -> Bool {
        switch try text(column) {
        case "t": return true
        case "f": return false
        case let other: throw .corrupt("column \(column) is not a boolean: \(other)")
        }
    }
}

/// What a statement returned: its rows and, for `INSERT`/`UPDATE`/`DELETE`, how many rows it changed.
struct PostgresResult: Sendable {
    let rows: [PostgresRow]
    let affected: Int
}

/// One libpq connection with its prepared statements, closed when the object goes away.
///
/// Blocking: every call waits for the server, bounded twice. The server cancels a statement after
/// `statement_timeout` (set at connect); and the client waits for an answer at most
/// ``responseTimeout`` (that plus a second), because a server that stops answering altogether (a
/// paused VM, a hung disk, a network that drops packets) would otherwise hold the caller forever:
/// the kernel acknowledges TCP data and keepalives even for a stopped process. A connection whose
/// answer did not come in time is given up (``isOpen`` false), and the pool drops it.
final class PostgresConnection: @unchecked Sendable {
    // @unchecked: a connection is used by one thread at a time. `PostgresPool` hands it to one
    // caller, which returns it when done; nothing else keeps a reference.
    private let handle: OpaquePointer
    /// SQL text to the name of its prepared statement on this connection.
    private var statements: [String: String] = [:]
    /// How many statements (or batches) have been sent on this connection, failed ones included.
    private(set) var sent = 0
    /// How long a call waits for the server's answer, in seconds: the statement timeout plus one.
    private(set) var responseTimeout: Double
    /// Set when an answer did not come within its deadline: the connection's state is unknown.
    private var abandoned = false

    /// Connects.
    /// - Parameters:
    ///   - url: a libpq connection URI (`postgres://` or `postgresql://`) or `key=value` string. Its
    ///     parameters win over the defaults set here (connect timeout, keepalives, application name).
    ///   - statementTimeoutMilliseconds: `statement_timeout` for every statement on this connection.
    init(url: String, statementTimeoutMilliseconds: Int) throws(PostgresError) {
        // Defaults first: with expand_dbname, the parameters in the URL (the dbname value) override
        // the ones before it.
        let parameters: [(String, String)] = [
            ("connect_timeout", "5"),
            ("keepalives", "1"),
            ("keepalives_idle", "10"),
            ("keepalives_interval", "5"),
            ("keepalives_count", "3"),
            ("tcp_user_timeout", "15000"),
            ("client_encoding", "UTF8"),
            ("fallback_application_name", "gatehouse"),
            ("dbname", url),
        ]
        let keywords: [UnsafePointer<CChar>?] = parameters.map { strdup($0.0).map { UnsafePointer($0) } } + [nil]
        let values: [UnsafePointer<CChar>?] = parameters.map { strdup($0.1).map { UnsafePointer($0) } } + [nil]
        defer {
            for pointer in keywords + values { free(UnsafeMutablePointer(mutating: pointer)) }
        }
        guard let connection = PQconnectdbParams(keywords, values, 1) else {
            throw PostgresError(message: "connecting to PostgreSQL: out of memory", connectionBroken: true)
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let detail = Self.message(PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError(message: "connecting to PostgreSQL: \(detail)", connectionBroken: true)
        }
        handle = connection
        responseTimeout = Self.responseTimeout(statementTimeoutMilliseconds)
        // From here a throw runs deinit, which closes the connection.
        // Notices (`relation already exists, skipping`) would go to standard error; nobody reads them.
        _ = PQsetNoticeProcessor(handle, { _, _ in }, nil)
        try setStatementTimeout(milliseconds: statementTimeoutMilliseconds)
    }

    /// Sets `statement_timeout`, and the client's own deadline with it.
    func setStatementTimeout(milliseconds: Int) throws(PostgresError) {
        let milliseconds = max(1, milliseconds)
        responseTimeout = max(responseTimeout, Self.responseTimeout(milliseconds))
        try execute("SET statement_timeout = \(milliseconds)")
        responseTimeout = Self.responseTimeout(milliseconds)
    }

    private static func responseTimeout(_ statementTimeoutMilliseconds: Int) -> Double {
        Double(max(1, statementTimeoutMilliseconds)) / 1000 + 1
    }

    deinit {
        PQfinish(handle)
    }

    /// Checks a connection string without connecting.
    /// - Returns: libpq's complaint, or nil when it parses.
    static func problem(withURL url: String) -> String? {
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &error) else {
            let detail = error.map { message(UnsafePointer($0)) } ?? "out of memory"
            PQfreemem(error)
            return detail
        }
        PQconninfoFree(options)
        return nil
    }

    /// Whether the connection is still usable; false once libpq has seen it break, or an answer
    /// did not come in time.
    var isOpen: Bool { !abandoned && PQstatus(handle) == CONNECTION_OK }

    /// Whether a transaction is open (or failed and not yet rolled back) on this connection.
    var inTransaction: Bool { PQtransactionStatus(handle) != PQTRANS_IDLE }

    /// Runs one or more statements without parameters (schema changes, `BEGIN`, `SET`) with the
    /// simple query protocol.
    func execute(_ sql: String) throws(PostgresError) {
        sent += 1
        let result = try roundTrip(sql, timeout: responseTimeout) { PQsendQuery(handle, sql) }
        defer { PQclear(result) }
        _ = try check(result, sql)
    }

    /// Runs one statement, prepared on this connection the first time it is seen, and copies its rows.
    /// - Parameter timeout: how long to wait for the answer, in seconds (default ``responseTimeout``).
    @discardableResult
    func query(_ sql: String, _ parameters: [PostgresValue] = [], timeout: Double? = nil) throws(PostgresError)
        -> PostgresResult
    {
        sent += 1
        let name = try prepared(sql)
        var texts: [UnsafePointer<CChar>?] = []
        texts.reserveCapacity(parameters.count)
        defer {
            for pointer in texts { free(UnsafeMutablePointer(mutating: pointer)) }
        }
        for (index, parameter) in parameters.enumerated() {
            let text: String?
            switch parameter {
            case .integer(let number): text = String(number)
            case .text(let string): text = string
            case .bool(let flag): text = flag ? "t" : "f"
            case .bytes(let bytes): text = Self.hex(bytes)
            case .null: text = nil
            }
            guard let text else {
                texts.append(nil)
                continue
            }
            // A C string ends at the first NUL; PostgreSQL text cannot hold one either.
            guard !text.utf8.contains(0) else {
                throw .misuse("parameter \(index + 1) contains a NUL byte, which PostgreSQL text cannot hold")
            }
            texts.append(strdup(text).map { UnsafePointer($0) })
        }
        guard let count = Int32(exactly: texts.count) else { throw .misuse("too many parameters") }
        let result = try roundTrip(sql, timeout: timeout ?? responseTimeout) {
            PQsendQueryPrepared(handle, name, count, texts, nil, nil, 0)
        }
        defer { PQclear(result) }
        return try check(result, sql)
    }

    /// Runs one statement (as ``query(_:_:)``) and maps each row it returned.
    func query<T>(
        _ sql: String, _ parameters: [PostgresValue] = [], row transform: (PostgresRow) throws(PostgresError) -> T
    ) throws(PostgresError) -> [T] {
        let result = try query(sql, parameters)
        var mapped: [T] = []
        mapped.reserveCapacity(result.rows.count)
        for row in result.rows {
            mapped.append(try transform(row))
        }
        return mapped
    }

    /// The connection's socket, for `poll(2)` while waiting for notifications; -1 when there is none.
    var socket: Int32 { PQsocket(handle) }

    /// Reads what the server has sent (without blocking) and returns the notifications
    /// (`LISTEN`/`NOTIFY`) received so far: channel and payload.
    /// - Throws: a broken-connection error when the server closed the connection or it failed.
    func notifications() throws(PostgresError) -> [(channel: String, payload: String)] {
        if PQconsumeInput(handle) == 0 || !isOpen {
            throw PostgresError(
                message: "waiting for notifications: \(Self.message(PQerrorMessage(handle)))", connectionBroken: true)
        }
        var received: [(channel: String, payload: String)] = []
        while let notification = PQnotifies(handle) {
            received.append(
                (
                    notification.pointee.relname.map { String(cString: $0) } ?? "",
                    notification.pointee.extra.map { String(cString: $0) } ?? ""
                ))
            PQfreemem(notification)
        }
        return received
    }

    /// Runs `body` in a transaction: commits if it returns, rolls back if it throws.
    func transaction<T>(_ body: () throws(PostgresError) -> T) throws(PostgresError) -> T {
        try execute("BEGIN")
        do throws(PostgresError) {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // A failed statement leaves the transaction aborted; a broken connection has none left.
            if isOpen, inTransaction {
                do throws(PostgresError) {
                    try execute("ROLLBACK")
                } catch let rollbackError {
                    throw PostgresError(
                        sqlState: error.sqlState,
                        message: "\(error.message); then rollback failed: \(rollbackError.message)",
                        constraint: error.constraint,
                        connectionBroken: error.connectionBroken || rollbackError.connectionBroken)
                }
            }
            throw error
        }
    }

    // MARK: - Private

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// `bytea` as hex text: `\x` and two digits a byte.
    private static func hex(_ bytes: [UInt8]) -> String {
        var text: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        text.reserveCapacity(2 + 2 * bytes.count)
        for byte in bytes {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private func prepared(_ sql: String) throws(PostgresError) -> String {
        if let name = statements[sql] { return name }
        let name = "gatehouse_\(statements.count + 1)"
        // nParams 0, no types: the server infers every parameter's type from the statement.
        let result = try roundTrip("preparing \(sql)", timeout: responseTimeout) {
            PQsendPrepare(handle, name, sql, 0, nil)
        }
        defer { PQclear(result) }
        _ = try check(result, "preparing \(sql)")
        statements[sql] = name
        return name
    }

    /// Sends a command (`send`: one of libpq's `PQsend...`) and waits for all of its results, at most
    /// `timeout` seconds in all (`poll(2)` on the socket). Returns what `PQexec` would: the first
    /// failed result if any, else the last one (nil if libpq had none, which `check` reports).
    /// - Throws: a broken-connection error if sending fails, the connection breaks, or the answer is
    ///   late (then the connection is given up: its state is unknown).
    private func roundTrip(
        _ what: String, timeout: Double, send: () -> Int32
    ) throws(PostgresError) -> OpaquePointer? {
        guard !abandoned else {
            throw PostgresError(message: "the connection was given up earlier, in: \(what)", connectionBroken: true)
        }
        guard send() == 1 else {
            throw PostgresError(
                message: "\(Self.message(PQerrorMessage(handle))) in: \(what)", connectionBroken: !isOpen)
        }
        let deadline = Date().addingTimeInterval(timeout)
        var answer: OpaquePointer?
        while true {
            while PQisBusy(handle) == 1 {
                let remaining = deadline.timeIntervalSinceNow
                guard remaining > 0 else {
                    abandoned = true
                    PQclear(answer)
                    throw PostgresError(
                        message: "PostgreSQL did not answer within \(timeout) s in: \(what)", unanswered: true)
                }
                var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, Int32(min(remaining * 1000 + 1, 1000)))
                if ready < 0, errno != EINTR {
                    abandoned = true
                    PQclear(answer)
                    throw PostgresError(message: "poll failed: errno \(errno), in: \(what)", connectionBroken: true)
                }
                if ready > 0, PQconsumeInput(handle) == 0 {
                    PQclear(answer)
                    throw PostgresError(
                        message: "\(Self.message(PQerrorMessage(handle))) in: \(what)", connectionBroken: true)
                }
            }
            guard let result = PQgetResult(handle) else { return answer }
            if let kept = answer, PQresultStatus(kept) == PGRES_FATAL_ERROR {
                PQclear(result)
            } else {
                PQclear(answer)
                answer = result
            }
        }
    }

    /// Turns a result into rows, or its failure into an error.
    private func check(_ result: OpaquePointer?, _ sql: String) throws(PostgresError) -> PostgresResult {
        guard let result else {
            throw PostgresError(
                message: "\(Self.message(PQerrorMessage(handle))) in: \(sql)", connectionBroken: !isOpen)
        }
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY {
            return PostgresResult(rows: [], affected: Self.affectedRows(result))
        }
        if status == PGRES_TUPLES_OK {
            let rowCount = PQntuples(result)
            let columnCount = PQnfields(result)
            var rows: [PostgresRow] = []
            rows.reserveCapacity(Int(rowCount))
            for row in 0..<rowCount {
                var values: [String?] = []
                values.reserveCapacity(Int(columnCount))
                for column in 0..<columnCount {
                    if PQgetisnull(result, row, column) == 1 {
                        values.append(nil)
                    } else {
                        values.append(String(cString: PQgetvalue(result, row, column)))
                    }
                }
                rows.append(PostgresRow(values: values))
            }
            return PostgresResult(rows: rows, affected: Self.affectedRows(result))
        }
        let sqlState = CLibPQ_sqlstate(result).map { String(cString: $0) }
        let primary = CLibPQ_primaryMessage(result).map { String(cString: $0) }
        let constraint = CLibPQ_constraintName(result).map { String(cString: $0) }
        let detail = primary ?? Self.message(PQresultErrorMessage(result))
        throw PostgresError(
            sqlState: sqlState,
            message: "\(detail) (SQLSTATE \(sqlState ?? "none")) in: \(sql)",
            constraint: constraint,
            connectionBroken: !isOpen)
    }

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    /// A libpq message without its trailing newline.
    private static func message(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "unknown error" }
        return String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
