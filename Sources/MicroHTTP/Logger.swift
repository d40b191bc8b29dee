import Foundation

/// Where log lines go. The server writes to standard error; tests pass an
/// in-memory sink and read what was logged.
public protocol LogSink: Sendable {
    func write(_ line: String)
}

/// Writes each line to standard error.
public struct StandardErrorSink: LogSink {
    public init() {}

    public func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// Keeps lines in memory, for tests.
public final class MemoryLogSink: LogSink {
    private let storage = LockedValue<[String]>([])

    public init() {}

    public func write(_ line: String) { storage.withLock { $0.append(line) } }

    /// Every line written so far.
    public var lines: [String] { storage.withLock { $0 } }
}

/// A small structured logger: `time level message key=value ...` lines,
/// or one JSON object per line.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case debug, info, warning, error

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

        public var name: String {
            switch self {
            case .debug: "debug"
            case .info: "info"
            case .warning: "warning"
            case .error: "error"
            }
        }
    }

    public enum Format: String, Sendable { case text, json }

    public var level: Level
    public var format: Format
    public let sink: any LogSink

    public init(level: Level = .info, format: Format = .text, sink: any LogSink = StandardErrorSink()) {
        self.level = level
        self.format = format
        self.sink = sink
    }

    /// A logger that drops everything.
    public static var silent: Logger { Logger(level: .error, sink: DiscardSink()) }

    public func log(_ level: Level, _ message: String, _ metadata: KeyValuePairs<String, String> = [:]) {
        guard level >= self.level else { return }
        log(level, message, fields: metadata.map { ($0.key, $0.value) })
    }

    /// Logs a line whose fields are built at run time, in order.
    public func log(_ level: Level, _ message: String, fields metadata: [(String, String)]) {
        guard level >= self.level else { return }
        let time = Date().formatted(.iso8601)
        switch format {
        case .text:
            var line = "\(time) \(level.name) \(message)"
            for (key, value) in metadata {
                line += " \(key)=" + Logger.textValue(value)
            }
            sink.write(line)
        case .json:
            var object = ["time": time, "level": level.name, "message": message]
            for (key, value) in metadata { object[key] = value }
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                sink.write(String(decoding: data, as: UTF8.self))
            }
        }
    }

    /// A metadata value for the text format: bare when it is one plain word,
    /// else quoted with `\"`, `\\`, `\n`, `\r`, `\t` and `\u{..}` escapes, so a
    /// value (which may carry client input) can neither end its line nor its quotes.
    static func textValue(_ value: String) -> String {
        func breaksLines(_ scalar: Unicode.Scalar) -> Bool {
            scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}"
        }
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { scalar in
            !breaksLines(scalar) && !scalar.properties.isWhitespace && scalar != "\"" && scalar != "="
                && scalar != "\\"
        }
        if plain { return value }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case _ where breaksLines(scalar):
                quoted += "\\u{\(String(scalar.value, radix: 16))}"
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    public func debug(_ message: String, _ metadata: KeyValuePairs<String, String> = [:]) {
        log(.debug, message, metadata)
    }
    public func info(_ message: String, _ metadata: KeyValuePairs<String, String> = [:]) {
        log(.info, message, metadata)
    }
    public func warning(_ message: String, _ metadata: KeyValuePairs<String, String> = [:]) {
        log(.warning, message, metadata)
    }
    public func error(_ message: String, _ metadata: KeyValuePairs<String, String> = [:]) {
        log(.error, message, metadata)
    }
}

struct DiscardSink: LogSink {
    func write(_ line: String) {}
}
