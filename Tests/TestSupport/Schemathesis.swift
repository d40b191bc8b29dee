import Foundation
public import JSON

#if canImport(Glibc)
    import Glibc
#endif

/// schemathesis (PyPI), a property-based API fuzzer nobody on this project
/// wrote, run from the test virtual environment against a live Gatehouse and
/// the OpenAPI document it serves (`ContractTests`).
///
/// It runs `<repository>/.venv/bin/schemathesis` (made by `make venv`, which
/// `make test` runs), or the `schemathesis` beside `$GATEHOUSE_TEST_PYTHON`.
/// Each run gets a directory of its own (its working directory, its
/// configuration file, its reports), is killed by its pid after a timeout,
/// and leaves nothing behind.
public enum Schemathesis {
    /// What one run left behind.
    public struct Run: Sendable, CustomStringConvertible {
        /// The exit status: 0 when every check passed on every test case.
        public let status: Int32
        /// Everything it printed (standard output, then standard error): its report for a person.
        public let output: String
        /// Its JSON run report (`--report json`), if it wrote one.
        public let report: JSONObject?
        /// Every response it got, by operation (`"get /me"`, lowercase
        /// method and path without the query), from its HAR log (`--report har`).
        public let responses: [String: [Int]]

        /// Operations that were tested (`operations.tested` in the report).
        public var operationsTested: Int? { report?["operations"]?.objectValue?["tested"]?.numberValue.map { Int($0) } }

        /// Test cases generated over all operations and phases.
        public var testCasesGenerated: Int? {
            report?["test_cases"]?.objectValue?["generated"]?.numberValue.map { Int($0) }
        }

        /// The groups of failures the report lists (empty when none).
        public var failures: [JSONValue] { report?["failures"]?.arrayValue ?? [] }

        /// The errors the report lists: the run could not do its job somewhere.
        public var errors: [JSONValue] { report?["errors"]?.arrayValue ?? [] }

        public var description: String {
            var text = "schemathesis exited with status \(status)\n\(output)"
            if let report { text += "\nJSON report: \(JSONValue.object(report).serializedString)" }
            return text
        }
    }

    /// The `schemathesis` command: beside `$GATEHOUSE_TEST_PYTHON` when that
    /// is set, else `<repository>/.venv/bin/schemathesis`. It may not exist;
    /// `run` then throws.
    public static var executable: String {
        if let python = ProcessInfo.processInfo.environment["GATEHOUSE_TEST_PYTHON"], !python.isEmpty {
            return URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("schemathesis").path
        }
        return VenvTool.repositoryRoot.appendingPathComponent(".venv/bin/schemathesis").path
    }

    /// `Tests/Interop/run_schemathesis.py`, which runs schemathesis's command line.
    static var wrapper: String {
        VenvTool.repositoryRoot.appendingPathComponent("Tests/Interop/run_schemathesis.py").path
    }

    /// Runs `schemathesis [--config-file <file>] run <arguments> --report json,har`
    /// in a directory of its own.
    /// - Parameters:
    ///   - arguments: what follows `run`: the schema URL and the options.
    ///   - configuration: the text of a `schemathesis.toml` for this run, if any.
    ///   - timeout: seconds the run may take before it is killed.
    /// - Returns: the run, whatever its status.
    /// - Throws: `VenvToolError` when it could not start or was killed at the timeout.
    public static func run(arguments: [String], configuration: String? = nil, timeout: Double) async throws -> Run {
        try await blockingIO {
            try VenvTool.withScratchDirectory { directory in
                var global = ["--no-color"]
                if let configuration {
                    let path = directory.appendingPathComponent("schemathesis.toml")
                    try Data(configuration.utf8).write(to: path)
                    global += ["--config-file", path.path]
                }
                let reportPath = directory.appendingPathComponent("report.json").path
                let harPath = directory.appendingPathComponent("report.har").path
                let reports = ["--report", "json,har", "--report-json-path", reportPath, "--report-har-path", harPath]
                // Through Tests/Interop/run_schemathesis.py: the schemathesis command line with
                // ast.parse serialized (a CPython 3.11 thread-safety bug, explained there).
                let result = try VenvTool.run(
                    PyJWT.python, arguments: [wrapper] + global + ["run"] + arguments + reports, input: "",
                    workingDirectory: directory, timeout: timeout, missingHint: "schemathesis")
                let read = { (path: String) in
                    FileManager.default.contents(atPath: path).flatMap { try? JSONValue.parse(Array($0)).objectValue }
                }
                return Run(
                    status: result.status, output: result.output + result.errors, report: read(reportPath),
                    responses: read(harPath).map(responses(inHAR:)) ?? [:])
            }
        }
    }
}

extension Schemathesis {
    /// The status of every response in a HAR log, by `"<method> <path>"`.
    static func responses(inHAR har: JSONObject) -> [String: [Int]] {
        var responses: [String: [Int]] = [:]
        for entry in har["log"]?.objectValue?["entries"]?.arrayValue ?? [] {
            guard let request = entry.objectValue?["request"]?.objectValue,
                let method = request["method"]?.stringValue, let url = request["url"]?.stringValue.flatMap(URL.init),
                let status = entry.objectValue?["response"]?.objectValue?["status"]?.numberValue
            else { continue }
            responses["\(method.lowercased()) \(url.path)", default: []].append(Int(status))
        }
        return responses
    }
}

/// PyYAML (`yaml.safe_load`), run from the test virtual environment with
/// `Tests/Interop/yaml_to_json.py`: the YAML reader the tests hold
/// Gatehouse's own (`YAML.parse`) to.
public enum PyYAML {
    /// A YAML file as PyYAML reads it, as JSON.
    /// - Throws: `VenvToolError`, with PyYAML's message when the file is not YAML.
    public static func load(file path: String, timeout: Double = 30) async throws -> JSONValue {
        let result = try await runScript(arguments: [path], input: "", timeout: timeout)
        guard result.status == 0, let value = try? JSONValue.parse(result.output) else {
            throw VenvToolError("yaml_to_json.py \(path) exited with status \(result.status):\n\(result.errors)")
        }
        return value
    }

    /// Each YAML text as PyYAML reads it (all in one Python process): the
    /// document as JSON, or PyYAML's error.
    public static func load(documents: [String], timeout: Double = 30) async throws -> [Result<
        JSONValue, VenvToolError
    >] {
        let input = JSONValue.array(documents.map(JSONValue.string)).serializedString
        let result = try await runScript(arguments: ["--batch"], input: input, timeout: timeout)
        guard result.status == 0, let results = try? JSONValue.parse(result.output).arrayValue,
            results.count == documents.count
        else {
            throw VenvToolError("yaml_to_json.py --batch exited with status \(result.status):\n\(result.errors)")
        }
        return results.map { result in
            if let value = result.objectValue?["value"] { return .success(value) }
            return .failure(VenvToolError(result.objectValue?["error"]?.stringValue ?? "no value and no error"))
        }
    }

    private static func runScript(arguments: [String], input: String, timeout: Double) async throws -> VenvTool.Result {
        let script = VenvTool.repositoryRoot.appendingPathComponent("Tests/Interop/yaml_to_json.py").path
        return try await blockingIO {
            try VenvTool.withScratchDirectory { directory in
                try VenvTool.run(
                    PyJWT.python, arguments: [script] + arguments, input: input, workingDirectory: directory,
                    timeout: timeout, missingHint: "Python")
            }
        }
    }
}

/// A program from the test virtual environment could not do its job: it is
/// missing, timed out, or answered something unreadable.
public struct VenvToolError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a program of the test virtual environment: files for its standard
/// streams (nothing can fill up and stall), a timeout after which it is
/// killed by its pid, loopback kept off any proxy.
enum VenvTool {
    struct Result: Sendable {
        let status: Int32
        let output: String
        let errors: String
    }

    /// The repository root, from this file's place in it (`Tests/TestSupport/`).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `body` with a new temporary directory, removed afterwards.
    static func withScratchDirectory<T>(_ body: (URL) throws -> T) throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gatehouse-venv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try body(directory)
    }

    static func run(
        _ executable: String, arguments: [String], input: String, workingDirectory: URL, timeout: Double,
        missingHint: String
    ) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw VenvToolError(
                "no \(missingHint) at \(executable): run `make venv` (`make test` runs it) to create .venv from "
                    + "Tests/Interop/requirements.txt, or point GATEHOUSE_TEST_PYTHON at an interpreter of a venv "
                    + "that has those packages")
        }
        let inputURL = workingDirectory.appendingPathComponent(".stdin")
        let outputURL = workingDirectory.appendingPathComponent(".stdout")
        let errorsURL = workingDirectory.appendingPathComponent(".stderr")
        try Data(input.utf8).write(to: inputURL)
        for url in [outputURL, errorsURL] { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let inputHandle = try FileHandle(forReadingFrom: inputURL)
        let outputHandle = try FileHandle(forWritingTo: outputURL)
        let errorsHandle = try FileHandle(forWritingTo: errorsURL)
        defer { for handle in [inputHandle, outputHandle, errorsHandle] { try? handle.close() } }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = workingDirectory
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["PYTHONUTF8"] = "1"
        // Rich (schemathesis's output) would otherwise wrap at 80 columns.
        environment["COLUMNS"] = "160"
        environment["HOME"] = workingDirectory.path
        for name in ["no_proxy", "NO_PROXY"] {
            environment[name] = [environment[name], "127.0.0.1,localhost,::1"].compactMap { $0 }
                .joined(separator: ",")
        }
        process.environment = environment
        process.standardInput = inputHandle
        process.standardOutput = outputHandle
        process.standardError = errorsHandle
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            throw VenvToolError("could not start \(executable): \(error)")
        }
        let read = { (url: URL) in (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw VenvToolError(
                "\(URL(fileURLWithPath: executable).lastPathComponent) did not finish within \(timeout) s; output:\n"
                    + read(outputURL) + read(errorsURL))
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: read(outputURL), errors: read(errorsURL))
    }
}
