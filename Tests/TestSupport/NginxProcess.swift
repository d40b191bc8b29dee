import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real nginx (the Debian `nginx` package) run as a child process for
/// end-to-end tests of the reverse-proxy examples: one process
/// (`daemon off; master_process off;`, so it runs as the current user, root
/// included), its own prefix directory with the configuration, pid file,
/// logs and every `*_temp_path`, listening on free loopback ports.
///
/// Start it with `withNginx`, which always stops it; `deinit` kills a process
/// still running as a safety net.
public final class NginxProcess: @unchecked Sendable {
    // @unchecked: owned by one test at a time, which alone calls `isRunning`
    // and `stop` (the only writers of `exitStatus`); everything else is `let`.

    /// The nginx process id.
    public let pid: Int32
    /// The directory holding everything this nginx writes (`-p`).
    public let prefix: String
    /// The loopback ports reserved for this nginx, in the order the
    /// configuration was given them. `port` is the first.
    public let ports: [UInt16]
    /// The complete `nginx.conf` it runs with.
    public let configuration: String
    /// The wait status once reaped.
    private var exitStatus: Int32?

    /// The first reserved port: where the site under test listens.
    public var port: UInt16 { ports[0] }

    /// The nginx binary: `/usr/sbin/nginx`, else `nginx` on `PATH`; nil when neither exists.
    public static var binaryPath: String? {
        if FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") { return "/usr/sbin/nginx" }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/nginx" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// The error log: startup problems, upstream failures, and every
    /// request's errors (level `notice` and up).
    public var errorLog: String { (try? String(contentsOfFile: "\(prefix)/logs/error.log", encoding: .utf8)) ?? "" }

    /// The access log, one line per request the client made (not per subrequest).
    public var accessLog: String { (try? String(contentsOfFile: "\(prefix)/logs/access.log", encoding: .utf8)) ?? "" }

    /// Writes the configuration into `prefix`, starts nginx and waits until it
    /// serves on every port in `ports`.
    /// - Parameters:
    ///   - prefix: an empty directory this nginx owns.
    ///   - ports: the ports `http` listens on (from `reserveLoopbackPorts`).
    ///   - http: http-context configuration (upstreams, servers), as
    ///     `NginxProcess.mainConfiguration(prefix:http:)` wraps it.
    ///   - timeout: seconds to wait for the ports to answer.
    /// - Throws: `HarnessError` when nginx is missing, exits early (its error
    ///   log is in the message), or does not answer in time;
    ///   `NginxProcess.AddressInUse` when another process took a port first.
    public init(prefix: String, ports: [UInt16], http: String, timeout: Double = 10) throws {
        guard let binary = Self.binaryPath else {
            throw HarnessError(
                "nginx is not installed (looked for /usr/sbin/nginx and nginx on PATH): "
                    + "`make test-deps` installs it (Debian package nginx)")
        }
        self.prefix = prefix
        self.ports = ports
        configuration = Self.mainConfiguration(prefix: prefix, http: http)
        for directory in ["logs", "temp/client_body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi"] {
            try FileManager.default.createDirectory(
                atPath: "\(prefix)/\(directory)", withIntermediateDirectories: true)
        }
        try configuration.write(toFile: "\(prefix)/nginx.conf", atomically: true, encoding: .utf8)
        // -e: the error log before the configuration is read, too.
        pid = try Self.spawn(
            binary,
            arguments: ["-p", "\(prefix)/", "-c", "\(prefix)/nginx.conf", "-e", "\(prefix)/logs/error.log"],
            output: "\(prefix)/logs/stderr.log")
        do {
            try waitUntilServing(timeout: timeout)
        } catch {
            // SIGKILL, not SIGQUIT: before nginx installs its handlers (while
            // it retries a bind, say) SIGQUIT would make it dump core.
            terminate()
            throw error
        }
    }

    /// Thrown by `init` when nginx could not bind a reserved port because
    /// another process took it in the meantime; `withNginx` retries.
    public struct AddressInUse: Error, CustomStringConvertible {
        public var description: String { "nginx could not bind a reserved loopback port: address already in use" }
    }

    /// Starts `binary` with stdin from /dev/null and stdout and stderr
    /// appended to `output`, with no signal blocked (`spawnChild`: nginx must
    /// see the SIGQUIT that stops it gracefully).
    private static func spawn(_ binary: String, arguments: [String], output: String) throws -> Int32 {
        try spawnChild(binary, arguments: arguments, output: output)
    }

    /// Whether nginx has not exited yet; reaps it once it has.
    public var isRunning: Bool {
        childIsRunning(pid, exitStatus: &exitStatus)
    }

    /// The exit code, `128 + signal` when a signal ended it, nil while it runs.
    public var terminationStatus: Int32? {
        guard !isRunning, let status = exitStatus else { return nil }
        if status < 0 { return status }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// The `nginx.conf` around `http`: one process in the foreground, the pid
    /// file, logs and temporary files in `prefix`, no path outside it.
    /// - Parameters:
    ///   - prefix: the directory nginx runs in.
    ///   - http: configuration for inside `http { }`.
    public static func mainConfiguration(prefix: String, http: String) -> String {
        var main = """
            # Generated by TestSupport/NginxProcess.swift for one test run.
            daemon off;
            master_process off;
            pid \(prefix)/nginx.pid;
            error_log \(prefix)/logs/error.log notice;

            """
        // As root, nginx would otherwise look up the user "nobody" (and own
        // its temporary directories by it); as anyone else it warns that
        // `user` is ignored. Name the current user only when root.
        if geteuid() == 0, let user = getpwuid(geteuid()), let group = getgrgid(getegid()) {
            main += "user \(String(cString: user.pointee.pw_name)) \(String(cString: group.pointee.gr_name));\n"
        }
        main += """
            events {
                worker_connections 256;
            }

            http {
                access_log \(prefix)/logs/access.log;
                client_body_temp_path \(prefix)/temp/client_body;
                proxy_temp_path \(prefix)/temp/proxy;
                fastcgi_temp_path \(prefix)/temp/fastcgi;
                uwsgi_temp_path \(prefix)/temp/uwsgi;
                scgi_temp_path \(prefix)/temp/scgi;
                default_type application/octet-stream;

            \(http)
            }

            """
        return main
    }

    /// Waits for the pid file (written once every listening socket is bound)
    /// to name this process, then for each port to accept a connection.
    private func waitUntilServing(timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let pidFile = "\(prefix)/nginx.pid"
        while true {
            guard isRunning else {
                let log = errorLog
                if log.contains("Address already in use") { throw AddressInUse() }
                throw HarnessError(
                    "nginx exited with status \(terminationStatus ?? -1) before serving:\n\(log)"
                        + "\n--- nginx.conf ---\n\(configuration)")
            }
            let written = (try? String(contentsOfFile: pidFile, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if written == String(pid), ports.allSatisfy(Self.accepts) { return }
            // nginx retries a failed bind for 2.5 s before giving up; no need to wait for that.
            if written != String(pid), errorLog.contains("Address already in use") { throw AddressInUse() }
            guard Date() < deadline else {
                throw HarnessError("nginx did not serve on \(ports) within \(timeout) s:\n\(errorLog)")
            }
            usleep(10_000)
        }
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    private static func accepts(_ port: UInt16) -> Bool {
        guard let client = try? HTTPTestClient(port: port, timeout: 1) else { return false }
        client.close()
        return true
    }

    /// Stops nginx: SIGQUIT (graceful: it finishes requests in flight, closes
    /// idle connections), then SIGKILL if it is still running after `timeout`.
    /// Safe to call more than once.
    /// - Returns: the exit status (0 after a graceful stop), or -1 when it had to be killed.
    @discardableResult
    public func stop(timeout: Double = 10) -> Int32 {
        if isRunning { kill(pid, SIGQUIT) }
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning, Date() < deadline { usleep(5_000) }
        if isRunning {
            terminate()
            return -1
        }
        return terminationStatus ?? -1
    }

    /// Kills nginx (SIGKILL) and reaps it, if it still runs.
    private func terminate() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        exitStatus = status
    }

    deinit { terminate() }
}

/// Reserves `count` distinct free TCP ports on 127.0.0.1: binds each to port
/// 0, reads the port the kernel picked, and closes them all. Another process
/// may take one before the caller binds it; retry then.
public func reserveLoopbackPorts(_ count: Int) throws -> [UInt16] {
    var sockets: [Int32] = []
    defer { for fd in sockets { close(fd) } }
    var ports: [UInt16] = []
    for _ in 0..<count {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        sockets.append(fd)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else { throw HarnessError("bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
        ports.append(UInt16(bigEndian: address.sin_port))
    }
    return ports
}

/// Runs `body` against a real nginx serving the configuration `http` builds,
/// and always stops it (SIGQUIT, then SIGKILL) and removes its directory.
///
/// - Parameters:
///   - portCount: how many free loopback ports to reserve; `http` gets them
///     and must listen on every one (`NginxProcess.port` is the first).
///   - http: builds the http-context configuration from the ports. Called
///     again with new ports if another process took one first (up to five
///     attempts).
///   - body: the test, given the running nginx.
/// - Throws: `HarnessError` when nginx is missing (`make test-deps` installs
///   it), refuses the configuration, or does not start.
public func withNginx<T>(
    portCount: Int = 1,
    http: ([UInt16]) throws -> String,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (NginxProcess) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        var attempt = 0
        while true {
            attempt += 1
            let ports = try reserveLoopbackPorts(portCount)
            let configuration = try http(ports)
            let prefix = "\(directory)/attempt-\(attempt)"
            let nginx: NginxProcess
            do {
                // Starting and stopping wait on the process: off the cooperative pool.
                nginx = try await blockingIO { try NginxProcess(prefix: prefix, ports: ports, http: configuration) }
            } catch is NginxProcess.AddressInUse where attempt < 5 {
                continue
            }
            do {
                let result = try await body(nginx)
                try await blockingIO { try stopGracefully(nginx) }
                return result
            } catch {
                _ = await blockingIO { nginx.stop() }
                throw error
            }
        }
    }
}

/// Stops `nginx` and fails when it does not exit cleanly within the
/// timeout: a test leaving it stuck would otherwise only be slower.
private func stopGracefully(_ nginx: NginxProcess) throws {
    let status = nginx.stop()
    guard status == 0 else {
        throw HarnessError("nginx did not stop cleanly on SIGQUIT (status \(status)):\n\(nginx.errorLog)")
    }
}

/// Replaces every line of an nginx configuration whose directive (the text
/// before any `#` comment, trimmed) is exactly `directive` with
/// `replacement`, keeping the line's indentation.
///
/// - Parameters:
///   - directive: a whole directive as written, `server gatehouse:8080;`.
///   - replacement: the directive to put there instead.
///   - text: the configuration.
/// - Throws: `HarnessError` naming `directive` when no line has it, so a test
///   built on an example file breaks loudly when the example changes shape.
public func replacingNginxDirective(_ directive: String, with replacement: String, in text: String) throws -> String {
    var found = 0
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
        let code = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard code.trimmingCharacters(in: .whitespaces) == directive else { return String(line) }
        found += 1
        let indentation = line.prefix { $0 == " " || $0 == "\t" }
        return indentation + replacement
    }
    guard found > 0 else {
        throw HarnessError("no line of the nginx configuration is `\(directive)`: the example changed shape")
    }
    return lines.joined(separator: "\n")
}
