import Foundation
import JSON
import Testing
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What can be checked of `docker/` without a Docker engine (none runs where
/// the tests run, so the image is never built here).
///
/// - The release binary, built as the Dockerfile builds it (`make build`,
///   `--static-swift-stdlib`), loads only shared libraries that the runtime
///   stage's packages or `debian:bookworm-slim` itself provide
///   (`Tests/Deploy/deploy_check.py libraries`, which maps every `ldd` path to
///   its Debian package with `dpkg -S`; the slim image's package list, and
///   its source, are in `Tests/Deploy/bookworm-slim-packages.txt`).
/// - The Dockerfile agrees with itself, the Makefile and the toolchain.
/// - That binary runs as an unprivileged user with the Dockerfile's
///   environment, and the image's `HEALTHCHECK` command passes against it,
///   then fails once it has stopped.
/// - `docker-compose.yml` parses (PyYAML) and names only what exists, and
///   agrees with `docker/nginx.conf`, `docker/demo-app.conf` and the
///   Dockerfile; `docker/demo-app.conf` runs in a real nginx.
///
/// Every check is also shown to fail on a broken copy of the file it reads.
/// The Python parts run with the test venv's interpreter (`make venv`).
@Suite(.serialized) struct DeploymentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let dockerfile = root.appendingPathComponent("docker/Dockerfile").path
    static let compose = root.appendingPathComponent("docker/docker-compose.yml").path
    static let nginxConf = root.appendingPathComponent("docker/nginx.conf").path
    static let demoAppConf = root.appendingPathComponent("docker/demo-app.conf").path
    static let makefile = root.appendingPathComponent("Makefile").path
    static let script = root.appendingPathComponent("Tests/Deploy/deploy_check.py").path
    static let basePackages = root.appendingPathComponent("Tests/Deploy/bookworm-slim-packages.txt").path

    /// The binary the image would hold: `$GATEHOUSE_RELEASE_BINARY`, else
    /// `make build`'s `.build/release/gatehouse` (`make test` builds it first).
    static func releaseBinary() throws -> String {
        let path =
            ProcessInfo.processInfo.environment["GATEHOUSE_RELEASE_BINARY"]
            ?? root.appendingPathComponent(".build/release/gatehouse").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError(
                "no release binary at \(path): run `make build` (`make test` does), which builds it with the "
                    + "Dockerfile's flags, or point GATEHOUSE_RELEASE_BINARY at one")
        }
        return path
    }

    /// Runs `deploy_check.py <arguments>` with the venv's Python.
    static func check(_ arguments: [String]) async throws -> ChildRun {
        let python = PyJWT.python
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw HarnessError("no Python at \(python): run `make venv` (`make test` does)")
        }
        return try await ChildRun.run(python, [script] + arguments, timeout: 60)
    }

    // MARK: - Libraries

    @Test func everyLibraryOfTheReleaseBinaryComesFromTheRuntimeImage() async throws {
        let run = try await Self.check([
            "libraries", "--binary", try Self.releaseBinary(), "--dockerfile", Self.dockerfile,
            "--base-packages", Self.basePackages,
        ])
        #expect(run.status == 0, "\(run.output)")
        // The five C libraries come from packages installed by name.
        for library in ["libmicrohttpd.so.12", "libcrypto.so.3", "libargon2.so.1", "libsqlite3.so.0", "libpq.so.5"] {
            #expect(
                run.output.split(separator: "\n").contains {
                    $0.hasPrefix(library) && $0.contains("the runtime stage (apt-get install)")
                }, "\(library) is not installed by name:\n\(run.output)")
        }
    }

    /// The library check on broken copies of the Dockerfile: a package left
    /// out, a package the binary does not need, a different base image.
    @Test(arguments: [
        ("libargon2-1 ", "", "libargon2.so.1 (/"),
        ("libssl3 ", "libssl3 ca-certificates ", "installs ca-certificates, which provides no library"),
        ("FROM debian:bookworm-slim", "FROM debian:bookworm", "starts FROM debian:bookworm;"),
    ])
    func libraryCheckNoticesMistakes(_ row: (replace: String, with: String, problem: String)) async throws {
        try await withTemporaryDirectory { directory in
            let broken = try Self.copy(Self.dockerfile, to: directory, replacing: row.replace, with: row.with)
            let run = try await Self.check([
                "libraries", "--binary", try Self.releaseBinary(), "--dockerfile", broken,
                "--base-packages", Self.basePackages,
            ])
            #expect(run.status == 1, "\(run.output)")
            #expect(run.output.contains(row.problem), "\(run.output)")
        }
    }

    // MARK: - Dockerfile

    @Test func dockerfileAgreesWithItselfTheMakefileAndTheToolchain() async throws {
        let run = try await Self.check([
            "dockerfile", "--dockerfile", Self.dockerfile, "--makefile", Self.makefile,
            "--binary", try Self.releaseBinary(),
        ])
        #expect(run.status == 0, "\(run.output)")
    }

    @Test(arguments: [
        ("FROM swift:6.3.1-bookworm AS builder", "FROM swift:6.0-bookworm AS builder", "the toolchain here is"),
        (" --static-swift-stdlib \\", " \\", "lacks --static-swift-stdlib"),
        ("EXPOSE 8080", "EXPOSE 80", "EXPOSE 80 does not match GATEHOUSE_PORT 8080"),
        ("USER 10001:10001", "USER root", "USER root is root"),
        ("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL", "not SIGTERM"),
        (#"CMD ["gatehouse", "healthcheck"]"#, "CMD curl -f http://localhost:8080/healthz", "HEALTHCHECK CMD is None"),
        ("GATEHOUSE_HOST=0.0.0.0", "GATEHOUSE_HOST=127.0.0.1", "GATEHOUSE_HOST must be 0.0.0.0"),
        ("GATEHOUSE_LOG_FORMAT=json", "GATEHOUSE_LOG_FROMAT=json", "GATEHOUSE_LOG_FROMAT is not a setting"),
        (#"VOLUME ["/data"]"#, #"VOLUME ["/var/lib/gatehouse"]"#, "/data is not a VOLUME"),
    ])
    func dockerfileCheckNoticesMistakes(_ row: (replace: String, with: String, problem: String)) async throws {
        try await withTemporaryDirectory { directory in
            let broken = try Self.copy(Self.dockerfile, to: directory, replacing: row.replace, with: row.with)
            let run = try await Self.check([
                "dockerfile", "--dockerfile", broken, "--makefile", Self.makefile, "--binary", try Self.releaseBinary(),
            ])
            #expect(run.status == 1, "\(run.output)")
            #expect(run.output.contains(row.problem), "\(run.output)")
        }
    }

    // MARK: - The binary with the image's settings

    /// The runtime stage's ENV, USER and HEALTHCHECK, as the script reads them.
    struct ImageSettings {
        let environment: [String: String]
        let healthcheck: [String]

        init(_ json: String) throws {
            let object = try #require(try JSONValue.parse(json).objectValue)
            environment = (object["env"]?.objectValue?.members ?? []).reduce(into: [:]) { result, pair in
                result[pair.key] = pair.value.stringValue
            }
            healthcheck = object["healthcheck"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
    }

    /// The release binary as the container runs it: an unprivileged user
    /// (`nobody` through `setpriv` when the tests run as root, as CI does;
    /// the current user otherwise), the Dockerfile's environment (the data
    /// directory and the port moved to a temporary directory and a free
    /// port; `GATEHOUSE_HOST=0.0.0.0` kept, and only loopback is asked). The
    /// HEALTHCHECK command, run the same way, passes while it serves and
    /// fails once it has stopped.
    @Test func releaseBinaryRunsUnprivilegedAndItsHealthcheckPasses() async throws {
        let settings = try ImageSettings(try await Self.check(["env", "--dockerfile", Self.dockerfile]).output)
        #expect(settings.healthcheck == ["gatehouse", "healthcheck"])
        #expect(settings.environment["GATEHOUSE_HOST"] == "0.0.0.0")
        let binary = try Self.releaseBinary()

        try await withTemporaryDirectory { directory in
            let account = Account.unprivileged
            // mkdtemp made the directory 0700 and root's: the user must reach the binary and its data.
            chmod(directory, 0o755)
            let bin = directory + "/bin"
            let data = directory + "/data"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: false)
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: false)
            try FileManager.default.copyItem(atPath: binary, toPath: bin + "/gatehouse")
            chmod(bin + "/gatehouse", 0o755)
            chown(data, account.uid, account.gid)
            chmod(data, 0o700)

            let port = try reserveLoopbackPorts(1)[0]
            var environment = settings.environment
            environment["GATEHOUSE_DATA_DIR"] = data
            environment["GATEHOUSE_PORT"] = String(port)
            environment["PATH"] = bin + ":/usr/bin:/bin"
            environment["HOME"] = data

            let server = try ChildProcess(
                account.command(["gatehouse", "serve"]), environment: environment, logPath: directory + "/server.log")
            defer { server.kill() }
            let healthcheck = account.command(settings.healthcheck)

            // Docker's start period: the healthcheck is retried until the service is up.
            var healthy = false
            let deadline = Date().addingTimeInterval(20)
            while !healthy, Date() < deadline, server.isRunning {
                healthy =
                    try await ChildRun.run(healthcheck[0], Array(healthcheck.dropFirst()), environment: environment)
                    .status == 0
                if !healthy { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(healthy, "the HEALTHCHECK never passed; log:\n\(server.output)")

            // It runs as that user, not as root.
            let status = (try? String(contentsOfFile: "/proc/\(server.pid)/status", encoding: .utf8)) ?? ""
            let uids =
                status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(whereSeparator: \.isWhitespace)
                .dropFirst().compactMap { UInt32($0) } ?? []
            #expect(!uids.isEmpty && uids.allSatisfy { $0 == account.uid && $0 != 0 }, "\(status)")

            #expect(try httpRequest(port: port, "GET", "/healthz").status == 200)
            #expect(try httpRequest(port: port, "GET", "/readyz").status == 200)

            // What it wrote to the volume belongs to the user, and the secrets to it alone.
            let database = try FileManager.default.attributesOfItem(atPath: data + "/gatehouse.db")
            #expect((database[.ownerAccountID] as? NSNumber)?.uint32Value == account.uid)
            #expect((database[.posixPermissions] as? Int) == 0o600)
            // GATEHOUSE_LOG_FORMAT=json: one JSON object a line, for the log collector.
            let lines = server.output.split(separator: "\n")
            #expect(
                !lines.isEmpty && lines.allSatisfy { (try? JSONValue.parse(String($0)).objectValue) != nil },
                "\(server.output)")

            // STOPSIGNAL SIGTERM: a clean exit, and the HEALTHCHECK notices.
            #expect(server.stop(signal: SIGTERM, timeout: 15) == 0, "\(server.output)")
            let down = try await ChildRun.run(healthcheck[0], Array(healthcheck.dropFirst()), environment: environment)
            #expect(down.status == 1, "\(down.output)")
        }
    }

    // MARK: - Compose

    @Test func composeFileParsesAndNamesOnlyWhatExists() async throws {
        let run = try await Self.check([
            "compose", "--compose", Self.compose, "--dockerfile", Self.dockerfile, "--nginx-conf", Self.nginxConf,
        ])
        #expect(run.status == 0, "\(run.output)")
    }

    @Test(arguments: [
        (
            "      app:\n        condition: service_healthy", "      api:\n        condition: service_healthy",
            "depends_on api, which is not a service"
        ),
        ("./demo-app.conf:", "./missing.conf:", "mounts ./missing.conf"),
        ("./nginx.conf:/etc/nginx/conf.d/default.conf", "./nginx.conf:/etc/nginx/nginx.conf", "is not mounted at"),
        ("context: ..", "context: ../nowhere", "is not a directory"),
        ("- gatehouse-data:/data", "- gatehouse-state:/data", "named volume gatehouse-state is not declared"),
        ("ipv4_address: 172.28.0.10", "ipv4_address: 172.28.0.20", "is not in GATEHOUSE_TRUSTED_PROXIES"),
        ("      - \"8000\"", "      - \"8001\"", "app: exposes 8001, but listens on ['8000']"),
        (
            "      GATEHOUSE_SIGNING_ALG: ES256", "      GATEHOUSE_PORT: \"9090\"\n      GATEHOUSE_SIGNING_ALG: ES256",
            "names upstream gatehouse:8080, but gatehouse listens on ['9090']"
        ),
        ("stop_grace_period: 15s", "stop_grace_period: 5s", "stop_grace_period must exceed"),
        (
            "image: nginx:1.28-bookworm\n    volumes:\n      - ./demo", "image: nginx\n    volumes:\n      - ./demo",
            "image nginx is not pinned"
        ),
        ("services:\n", "services:\n  - [\n", "does not parse"),
    ])
    func composeCheckNoticesMistakes(_ row: (replace: String, with: String, problem: String)) async throws {
        try await withTemporaryDirectory { directory in
            let broken = try Self.copy(Self.compose, to: directory, replacing: row.replace, with: row.with)
            let run = try await Self.check([
                "compose", "--compose", broken, "--as-path", Self.compose, "--dockerfile", Self.dockerfile,
                "--nginx-conf", Self.nginxConf,
            ])
            #expect(run.status == 1, "\(run.output)")
            #expect(run.output.contains(row.problem), "\(run.output)")
        }
    }

    /// The compose file's demo application, in a real nginx: it shows the
    /// `X-Auth-*` headers it is given, and answers its healthcheck.
    @Test func demoAppShowsTheHeadersItReceives() async throws {
        let site = try replacingNginxDirective(
            "listen 8000;", with: "listen 127.0.0.1:PORT;",
            in: try String(contentsOfFile: Self.demoAppConf, encoding: .utf8))
        try await withNginx(http: { ports in site.replacingOccurrences(of: "PORT", with: String(ports[0])) }) { nginx in
            let response = try httpRequest(
                port: nginx.port, "GET", "/api/orders?x=1",
                headers: [
                    ("X-Auth-User", "alice"), ("X-Auth-Subject", "u-1"), ("X-Auth-Session", "s-1"),
                    ("X-Auth-Roles", "admin,ops"),
                ])
            #expect(response.status == 200)
            for line in [
                "demo app: GET /api/orders?x=1", "X-Auth-User: alice", "X-Auth-Subject: u-1", "X-Auth-Session: s-1",
                "X-Auth-Roles: admin,ops",
            ] {
                #expect(response.text.contains(line), "\(response.text)")
            }
            #expect(try httpRequest(port: nginx.port, "GET", "/healthz").status == 200)
        }
    }

    // MARK: - Helpers

    /// Copies `path` into `directory` with one change; fails if `replace` is not in it.
    static func copy(_ path: String, to directory: String, replacing replace: String, with replacement: String) throws
        -> String
    {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard text.contains(replace) else {
            throw HarnessError("\(path) no longer contains \(replace.debugDescription)")
        }
        let copy = directory + "/" + URL(fileURLWithPath: path).lastPathComponent
        try text.replacingOccurrences(of: replace, with: replacement).write(
            toFile: copy, atomically: true, encoding: .utf8)
        return copy
    }
}

/// Who runs the binary: `nobody` when the tests run as root, else the
/// current (already unprivileged) user.
struct Account {
    let uid: uid_t
    let gid: gid_t
    /// Prefix that runs a command as this account.
    let prefix: [String]

    static var unprivileged: Account {
        guard getuid() == 0, let nobody = getpwnam("nobody") else {
            return Account(uid: getuid(), gid: getgid(), prefix: [])
        }
        let uid = nobody.pointee.pw_uid
        let gid = nobody.pointee.pw_gid
        // setpriv execs the command: the process keeps its pid, so signals reach gatehouse itself.
        return Account(
            uid: uid, gid: gid,
            prefix: ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--"])
    }

    /// `command` run as this account (the first word looked up on the environment's PATH).
    func command(_ command: [String]) -> [String] {
        prefix.isEmpty ? ["/usr/bin/env"] + command : prefix + command
    }
}

/// A child process that has finished: its exit status and everything it wrote.
struct ChildRun: Sendable {
    let status: Int32
    let output: String

    /// Runs `executable` with `arguments` on a thread of its own; kills it after `timeout` seconds.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Double = 30
    ) async throws -> ChildRun {
        try await blockingIO {
            let directory = NSTemporaryDirectory() + "gatehouse-child-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let child = try ChildProcess(
                [executable] + arguments, environment: environment, logPath: directory + "/output")
            let status = child.waitForExit(timeout: timeout)
            return ChildRun(status: status, output: child.output)
        }
    }
}

/// A child process with stdout and stderr in one file.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: owned by one test; `process` is only read after launch.
    let process = Process()
    let logPath: String

    init(_ command: [String], environment: [String: String]?, logPath: String) throws {
        self.logPath = logPath
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        if let environment { process.environment = environment }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits for the exit; kills the process after `timeout` seconds.
    /// - Returns: the exit status, or -1 if it had to be killed.
    func waitForExit(timeout: Double) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill()
            return -1
        }
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    /// Sends `signal`, then waits as `waitForExit` does.
    func stop(signal: Int32, timeout: Double) -> Int32 {
        if process.isRunning { Glibc.kill(pid, signal) }
        return waitForExit(timeout: timeout)
    }

    /// SIGKILL, if it still runs.
    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    deinit { kill() }
}
