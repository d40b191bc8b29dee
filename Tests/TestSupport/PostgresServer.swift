import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real PostgreSQL (Debian's `postgresql` package) run as a child process
/// for the PostgreSQL store's tests: a cluster made by `initdb` in a fresh
/// directory, listening on a free loopback port and on a Unix socket in that
/// directory, with `trust` authentication for the role `gatehouse` (a
/// superuser), durability off (`fsync=off`: a test server holds nothing worth
/// keeping), small memory, and room for 300 connections (the tests of a
/// suite run in parallel, each with its own pools).
///
/// PostgreSQL refuses to run as root, and the tests run as root in CI, so the
/// directory is given to the `postgres` system user and `initdb` and
/// `postgres` run as that user through `runuser -u postgres --` (when the
/// tests do not run as root, as the current user, directly).
///
/// Tests share one server and each takes a database of its own
/// (`createDatabase()`). Start it with `withPostgres` (or the `.postgres`
/// suite trait of AuthServiceTests, built on it), which always stops it (SIGINT, PostgreSQL's fast shutdown,
/// then SIGKILL) and remove its directory; `deinit` kills a server still
/// running as a safety net.
public final class PostgresServer: @unchecked Sendable {
    // @unchecked: `exitStatus` is written only by `stop`, `terminate` and
    // `isRunning`, which the one owner (`withPostgres`) calls; the tests that
    // share the server only read `let`s and run `psql`.

    /// The process started: `runuser` (which starts `postgres` as its child
    /// and exits with it) when running as root, else `postgres` itself. A
    /// new one after `restart()`.
    public private(set) var pid: Int32
    /// The directory holding the cluster (`data/`), the socket and the log.
    public let directory: String
    /// The loopback TCP port it listens on.
    public let port: UInt16
    /// The role every test connects as (a superuser, no password).
    public var user: String { Self.role }
    private static let role = "gatehouse"
    /// The directory of `initdb`, `postgres` and `psql`.
    public let binDirectory: String
    private var exitStatus: Int32?

    /// The PostgreSQL server log (startup, shutdown, failed statements).
    public var log: String { (try? String(contentsOfFile: "\(directory)/postgres.log", encoding: .utf8)) ?? "" }

    /// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and
    /// `postgres`; nil when PostgreSQL is not installed.
    public static var installedBinDirectory: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { Int($0) }.sorted(by: >)
        return versions.map { "\(root)/\($0)/bin" }.first { bin in
            ["initdb", "postgres", "psql"].allSatisfy { FileManager.default.isExecutableFile(atPath: "\(bin)/\($0)") }
        }
    }

    /// Makes a cluster in `directory` (an empty directory this server owns)
    /// and starts it on a free loopback port, waiting until it accepts
    /// connections.
    /// - Parameters:
    ///   - directory: where everything goes; given to the `postgres` user when running as root.
    ///   - timeout: seconds to wait for `initdb`, and again for the server to be ready.
    /// - Throws: `HarnessError` when PostgreSQL is missing, `initdb` fails, or
    ///   the server exits early or is not ready in time (its log is in the message).
    public init(directory: String, timeout: Double = 30) throws {
        guard let bin = Self.installedBinDirectory else {
            throw HarnessError(
                "PostgreSQL is not installed (looked for /usr/lib/postgresql/<version>/bin/initdb): "
                    + "`make test-deps` installs it (Debian package postgresql)")
        }
        binDirectory = bin
        self.directory = directory
        let data = "\(directory)/data"
        let asRoot = geteuid() == 0
        if asRoot {
            guard let account = getpwnam("postgres") else {
                throw HarnessError("running as root, but there is no `postgres` user to run PostgreSQL as")
            }
            guard chown(directory, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw HarnessError("chown \(directory) to postgres: \(String(cString: strerror(errno)))")
            }
        }
        // -N: no fsync of the new cluster (a test server); C locale: lower() folds ASCII only, as
        // SQLite's NOCASE does.
        let initdb = try runChild(
            asRoot ? "/usr/sbin/runuser" : "\(bin)/initdb",
            arguments: (asRoot ? ["-u", "postgres", "--", "\(bin)/initdb"] : []) + [
                "-D", data, "--auth=trust", "-U", Self.role, "--encoding=UTF8", "--locale=C", "-N",
            ],
            output: "\(directory)/initdb.log", timeout: timeout)
        guard initdb.status == 0 else {
            throw HarnessError("initdb failed with status \(initdb.status):\n\(initdb.output)")
        }

        var attempt = 0
        while true {
            attempt += 1
            let port = try reserveLoopbackPorts(1)[0]
            let (pid, started) = try Self.launch(bin: bin, directory: directory, port: port, timeout: timeout)
            switch started {
            case .ready:
                self.pid = pid
                self.port = port
                return
            case .addressInUse where attempt < 5:
                continue
            case .addressInUse, .failed:
                let log = (try? String(contentsOfFile: "\(directory)/postgres.log", encoding: .utf8)) ?? ""
                throw HarnessError("PostgreSQL did not start (\(started)):\n\(log)")
            }
        }
    }

    /// Starts `postgres` on the cluster in `directory` and waits until it is ready (or fails).
    private static func launch(bin: String, directory: String, port: UInt16, timeout: Double) throws
        -> (pid: Int32, started: Start)
    {
        let data = "\(directory)/data"
        let asRoot = geteuid() == 0
        let arguments = [
            "-D", data, "-k", directory, "-h", "127.0.0.1", "-p", String(port),
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=16MB", "-c", "max_connections=300", "-c", "log_min_messages=warning",
        ]
        let pid = try spawnChild(
            asRoot ? "/usr/sbin/runuser" : "\(bin)/postgres",
            arguments: (asRoot ? ["-u", "postgres", "--", "\(bin)/postgres"] : []) + arguments,
            output: "\(directory)/postgres.log")
        return (pid, waitUntilReady(pid: pid, data: data, log: "\(directory)/postgres.log", timeout: timeout))
    }

    /// Starts the server again after `stop()`, on the same cluster and port:
    /// a database restart, for tests of what clients do meanwhile. Does
    /// nothing while it runs.
    /// - Throws: `HarnessError` when it does not start (another process took
    ///   the port meanwhile, say), with its log.
    public func restart(timeout: Double = 30) throws {
        guard !isRunning else { return }
        let (pid, started) = try Self.launch(bin: binDirectory, directory: directory, port: port, timeout: timeout)
        guard case .ready = started else {
            throw HarnessError("PostgreSQL did not start again on port \(port) (\(started)):\n\(log)")
        }
        self.pid = pid
        exitStatus = nil
    }

    private enum Start: CustomStringConvertible {
        case ready
        case addressInUse
        case failed(String)

        var description: String {
            switch self {
            case .ready: "ready"
            case .addressInUse: "address in use"
            case .failed(let reason): reason
            }
        }
    }

    /// Waits until `postmaster.pid` says `ready` (its eighth line, written
    /// once the server accepts connections). Kills the process on failure.
    private static func waitUntilReady(pid: Int32, data: String, log: String, timeout: Double) -> Start {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            if waitpid(pid, &status, WNOHANG) == pid {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                return text.contains("Address already in use") ? .addressInUse : .failed("it exited (status \(status))")
            }
            let lines = ((try? String(contentsOfFile: "\(data)/postmaster.pid", encoding: .utf8)) ?? "")
                .split(separator: "\n", omittingEmptySubsequences: false)
            if lines.count >= 8, lines[7].trimmingCharacters(in: .whitespaces) == "ready" { return .ready }
            guard Date() < deadline else {
                stopProcess(pid, postmaster: postmasterPID(data: data), timeout: 5)
                return .failed("not ready within \(timeout) s")
            }
            usleep(10_000)
        }
    }

    /// The postmaster's process id, from the first line of `postmaster.pid`.
    private static func postmasterPID(data: String) -> Int32? {
        let text = (try? String(contentsOfFile: "\(data)/postmaster.pid", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// A libpq connection URL for `database` on this server.
    public func url(database: String) -> String {
        "postgresql://\(user)@127.0.0.1:\(port)/\(database)"
    }

    /// Creates a new empty database `t_<random>` and returns its name.
    /// - Throws: `HarnessError` with `psql`'s output when it fails (or takes over 30 s).
    public func createDatabase() throws -> String {
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try psql("CREATE DATABASE \(name)")
        return name
    }

    /// Runs SQL with `psql` as `gatehouse` on `database` (stops at the first error).
    /// - Returns: what `psql` printed (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres", timeout: Double = 30) throws -> String {
        let output = "\(NSTemporaryDirectory())gatehouse-psql-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let run = try runChild(
            "\(binDirectory)/psql",
            arguments: [
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", user,
                "-d", database, "-c", sql,
            ],
            output: output, timeout: timeout)
        guard run.status == 0 else {
            throw HarnessError("psql -c \(sql) failed with status \(run.status):\n\(run.output)")
        }
        return run.output
    }

    /// Whether the started process has not exited yet; reaps it once it has.
    public var isRunning: Bool {
        childIsRunning(pid, exitStatus: &exitStatus)
    }

    /// Stops the server: SIGINT to the postmaster (fast shutdown: it ends
    /// every session and exits), then SIGKILL to it and to `runuser` if they
    /// still run after `timeout`. Safe to call more than once.
    /// - Returns: whether it stopped within `timeout` (false: it had to be killed).
    @discardableResult
    public func stop(timeout: Double = 10) -> Bool {
        guard isRunning else { return true }
        // A server left frozen (a test that failed before thawing it) could not act on SIGINT.
        thaw()
        let stopped = Self.stopProcess(pid, postmaster: Self.postmasterPID(data: "\(directory)/data"), timeout: timeout)
        exitStatus = exitStatus ?? -1
        return stopped
    }

    /// Signals the postmaster itself (runuser would turn every signal into
    /// SIGTERM, PostgreSQL's smart shutdown, which waits for every client),
    /// waits for `pid` to exit, and kills both when that takes over `timeout`.
    @discardableResult
    private static func stopProcess(_ pid: Int32, postmaster: Int32?, timeout: Double) -> Bool {
        if let postmaster, postmaster > 0 { kill(postmaster, SIGINT) } else { kill(pid, SIGINT) }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while Date() < deadline {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno == ECHILD) { return true }
            usleep(5_000)
        }
        if let postmaster, postmaster > 0 { kill(postmaster, SIGKILL) }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
        return false
    }

    deinit {
        if isRunning { Self.stopProcess(pid, postmaster: Self.postmasterPID(data: "\(directory)/data"), timeout: 5) }
    }

    /// The server of the enclosing `.postgres` suite (AuthServiceTests), or
    /// of whatever scope set it; nil outside one.
    @TaskLocal public static var current: PostgresServer?
}

/// Runs `body` against a PostgreSQL server of its own and always stops it
/// and removes its directory, also when `body` throws.
public func withPostgres<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresServer) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        // Starting and stopping wait on processes: off the cooperative pool.
        let server = try await blockingIO { try PostgresServer(directory: directory) }
        do {
            let result = try await body(server)
            let clean = await blockingIO { server.stop() }
            guard clean else { throw HarnessError("PostgreSQL did not stop on SIGINT within 10 s:\n\(server.log)") }
            return result
        } catch {
            _ = await blockingIO { server.stop() }
            throw error
        }
    }
}
