public import AuthService
public import Foundation
public import MicroHTTP

/// A Gatehouse built by `buildApplication`, serving on 127.0.0.1 with an
/// ephemeral port, a temporary data directory and a clock the test moves.
public struct GatehouseInstance: Sendable {
    public let application: Application
    public let port: UInt16
    public let clock: ManualClock
    public let logs: MemoryLogSink
    public let dataDirectory: String

    /// A new keep-alive connection to this instance.
    public func client() throws -> HTTPTestClient { try HTTPTestClient(port: port) }
}

extension Configuration {
    /// Settings for tests: loopback, port 0, cheap Argon2 (so the suite runs
    /// fast; the default cost has its own test), two threads.
    public static func testing(dataDirectory: String) -> Configuration {
        var configuration = Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.dataDirectory = dataDirectory
        configuration.threads = 2
        configuration.hashWorkers = 2
        configuration.argon2 = Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)
        // Every test talks from 127.0.0.1; the rate-limit tests turn limits on.
        configuration.rateLimits = .disabled
        return configuration
    }
}

/// Runs `body` against a started Gatehouse and always shuts it down and
/// removes its data directory.
/// - Parameters:
///   - configure: changes to `Configuration.testing` (the data directory is set already).
///   - body: the test, given the running instance.
public func withGatehouse<T>(
    _ configure: (inout Configuration) -> Void = { _ in },
    _ body: (GatehouseInstance) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        var configuration = Configuration.testing(dataDirectory: directory)
        configure(&configuration)
        let clock = ManualClock(start: Date().timeIntervalSince1970.rounded(.down))
        let logs = MemoryLogSink()
        let application = try buildApplication(
            configuration: configuration, logger: Logger(level: .debug, sink: logs), clock: clock.clock)
        let port = try application.start()
        defer { application.shutdown() }
        return try await body(
            GatehouseInstance(
                application: application, port: port, clock: clock, logs: logs, dataDirectory: directory))
    }
}

/// The real `gatehouse` binary run as a child process, for what only a
/// process shows: signals, restarts, exit codes, the command line.
public final class GatehouseProcess: @unchecked Sendable {
    // @unchecked: used from one test at a time; the Process is only read
    // after launch.
    public let process: Process
    public let logPath: String
    public private(set) var port: UInt16 = 0

    /// The binary built next to the test bundle (`swift build --build-tests`).
    public static var binaryPath: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
                "gatehouse"
            ).path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug/gatehouse").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    /// Starts `gatehouse <arguments>` with `environment` (added to a clean
    /// one with PATH and HOME only) and its stderr captured to a file.
    public init(arguments: [String] = [], environment: [String: String], logPath: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = arguments
        var base = ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()]
        // Sanitizer settings (make sanitize) apply to the child too.
        for name in ["ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"] {
            if let value = ProcessInfo.processInfo.environment[name] { base[name] = value }
        }
        base.merge(environment) { $1 }
        process.environment = base
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardError = log
        process.standardOutput = log
        try process.run()
    }

    /// Everything the process has written so far.
    public var output: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Waits for the "listening" log line and reads the port from it.
    @discardableResult
    public func waitUntilListening(timeout: Double = 15) throws -> UInt16 {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = output.split(separator: "\n").first(where: { $0.contains(" listening ") }),
                let range = line.range(of: #"address=http://127\.0\.0\.1:(\d+)"#, options: .regularExpression),
                let port = UInt16(line[range].split(separator: ":").last ?? "")
            {
                self.port = port
                return port
            }
            guard process.isRunning else { throw HarnessError("gatehouse exited early:\n\(output)") }
            usleep(20_000)
        }
        throw HarnessError("gatehouse did not log its address within \(timeout) s:\n\(output)")
    }

    /// Sends `signal` and waits for the exit; kills it if it takes longer than `timeout`.
    /// - Returns: the exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: Double = 15) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        return waitForExit(timeout: timeout)
    }

    /// Waits for the process to end by itself; kills it after `timeout`.
    public func waitForExit(timeout: Double = 15) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return -1
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
