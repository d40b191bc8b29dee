import Foundation
import JSON
import Synchronization

/// Where log lines go. The server writes to standard error; tests pass an
/// in-memory sink and read what was logged.
public protocol LogSink: Sendable {
    /// Takes one line (without its line feed).
    func write(_ line: String)
    /// Takes one line of `level`. The default is `write(line)`; a buffering
    /// sink writes warnings and errors out at once.
    func write(_ line: String, level: Logger.Level)
    /// Takes one line of `level` as UTF-8 bytes, as `Logger` builds it; the
    /// bytes are valid only during the call. The default makes a `String` of
    /// them for `write(_:level:)`; a sink that stores bytes saves that copy.
    func write(utf8 line: UnsafeRawBufferPointer, level: Logger.Level)
    /// Writes out whatever the sink holds back. The default does nothing.
    func flush()
}

extension LogSink {
    public func write(_ line: String, level: Logger.Level) { write(line) }
    public func write(utf8 line: UnsafeRawBufferPointer, level: Logger.Level) {
        write(String(decoding: line, as: UTF8.self), level: level)
    }
    public func flush() {}
}

/// Writes lines to standard error, buffered: lines wait in memory until
/// 50 ms have passed, 64 KiB have piled up, a warning or an error is
/// logged, `flush()` is called, or the process exits (`exit`), and then go
/// out in one `write(2)`, in order, never interleaved. Every instance shares
/// one buffer, as they share the descriptor.
///
/// Why: one `write(2)` per request log line costs more than the token check
/// it reports. What it costs: a crash (not an exit) loses the info lines of
/// its last 50 ms.
public struct StandardErrorSink: LogSink {
    public init() {}

    /// The buffer of descriptor 2, made on first use.
    static let writer: BufferedLogWriter = {
        let writer = BufferedLogWriter(descriptor: 2)
        // Lines still buffered when the process calls exit() are written then.
        // The flusher thread is stopped and waited for first: exit() runs
        // this while that thread may still be running, and ThreadSanitizer
        // reports the two flushes at exit as a race (seen in CI).
        atexit { StandardErrorSink.writer.stopAndWait() }
        return writer
    }()

    public func write(_ line: String) { Self.writer.append(line, urgent: false) }

    public func write(_ line: String, level: Logger.Level) { Self.writer.append(line, urgent: level >= .warning) }

    public func write(utf8 line: UnsafeRawBufferPointer, level: Logger.Level) {
        Self.writer.append(utf8: line, urgent: level >= .warning)
    }

    public func flush() { Self.writer.flush() }
}

/// Lines for one file descriptor, collected in memory and written in
/// batches: by a background thread every `interval`, by the caller that
/// takes the buffer past `limit` (so a slow reader slows the writers down
/// rather than the buffer growing), on an urgent line, and on `flush()`.
/// Lines reach the descriptor whole and in the order they were appended.
public final class BufferedLogWriter: Sendable {
    private let descriptor: Int32
    private let limit: Int
    /// Bytes not written yet.
    private let pending = LockedValue<[UInt8]>([])
    /// Held while writing, so that batches go out one at a time, in order;
    /// counts the batches written (not `Void`: see `LockedValue`).
    private let output = LockedValue<Int>(0)
    private let stopped = Atomic<Bool>(false)
    /// Set by the background flusher as it returns.
    private let flusherDone = Atomic<Bool>(false)
    private let interval: Double

    /// Starts the background flusher.
    /// - Parameters:
    ///   - descriptor: where the lines go; not closed by the writer.
    ///   - interval: the longest a line waits, in seconds.
    ///   - limit: bytes buffered before the caller writes them out itself.
    public init(descriptor: Int32, interval: Double = 0.05, limit: Int = 64 * 1024) {
        self.descriptor = descriptor
        self.limit = max(1, limit)
        self.interval = interval
        let microseconds = UInt32(max(1_000, min(10_000_000, interval * 1_000_000)))
        let thread = Thread { [weak self] in
            while true {
                usleep(microseconds)
                guard let writer = self else { return }
                guard !writer.stopped.load(ordering: .acquiring) else {
                    writer.flusherDone.store(true, ordering: .releasing)
                    return
                }
                writer.flush()
            }
        }
        thread.name = "log-flush"
        thread.start()
    }

    deinit { stop() }

    /// Adds a line (a line feed is appended); writes everything out at once
    /// when `urgent` or when the buffer is over its limit.
    public func append(_ line: String, urgent: Bool = false) {
        let size = pending.withLock { bytes in
            if bytes.capacity == 0 { bytes.reserveCapacity(limit + 4096) }
            bytes.append(contentsOf: line.utf8)
            bytes.append(0x0A)
            return bytes.count
        }
        if urgent || size >= limit { flush() }
    }

    /// `append(_:urgent:)` for a line already in UTF-8.
    public func append(utf8 line: UnsafeRawBufferPointer, urgent: Bool = false) {
        let size = pending.withLock { bytes in
            if bytes.capacity == 0 { bytes.reserveCapacity(limit + 4096) }
            bytes.append(contentsOf: line)
            bytes.append(0x0A)
            return bytes.count
        }
        if urgent || size >= limit { flush() }
    }

    /// Writes out every line appended so far.
    public func flush() {
        output.withLock { batches in
            let bytes = pending.withLock { bytes -> [UInt8] in
                guard !bytes.isEmpty else { return [] }
                var taken: [UInt8] = []
                taken.reserveCapacity(limit + 4096)
                swap(&taken, &bytes)
                return taken
            }
            guard !bytes.isEmpty else { return }
            Self.writeAll(bytes, to: descriptor)
            batches += 1
        }
    }

    /// Writes what is buffered and stops the background flusher; later lines
    /// are written by `flush()` (or a full buffer) only.
    public func stop() {
        flush()
        stopped.store(true, ordering: .releasing)
    }

    /// Stops the background flusher, waits (a few intervals at most) until
    /// it has returned, then writes what is buffered: for exit, when no
    /// other thread may be flushing at the same time.
    public func stopAndWait() {
        stopped.store(true, ordering: .releasing)
        let deadline = Date().addingTimeInterval(max(0.2, interval * 4))
        while !flusherDone.load(ordering: .acquiring), Date() < deadline { usleep(1_000) }
        flush()
    }

    /// `write(2)` until all is written; gives up on an error other than an
    /// interruption (there is nowhere left to report it).
    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) {
        bytes.withUnsafeBytes { buffer in
            guard var next = buffer.baseAddress else { return }
            var remaining = buffer.count
            var stalls = 0
            while remaining > 0 {
                let count = write(descriptor, next, remaining)
                if count > 0 {
                    next += count
                    remaining -= count
                    continue
                }
                let code = errno
                if count < 0, code == EINTR { continue }
                // A non-blocking descriptor that is full: wait for it, up to about a second.
                if count < 0, code == EAGAIN || code == EWOULDBLOCK, stalls < 10 {
                    var waiting = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&waiting, 1, 100)
                    stalls += 1
                    continue
                }
                return
            }
        }
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
/// or one JSON object per line (`time`, `level`, `message`, then the fields).
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

    /// Whether lines of `level` are written (build costly fields only then).
    @inline(__always)
    public func logs(_ level: Level) -> Bool { level >= self.level }

    public func log(_ level: Level, _ message: String, _ metadata: KeyValuePairs<String, String> = [:]) {
        guard level >= self.level else { return }
        log(level, message, fields: metadata.map { ($0.key, $0.value) })
    }

    /// Logs a line whose fields are built at run time, in order. In JSON, a
    /// field named like an earlier one (or `time`, `level`, `message`) is left out.
    public func log(_ level: Level, _ message: String, fields metadata: [(String, String)]) {
        log(level, message) { line in
            for (index, (key, value)) in metadata.enumerated() {
                if format == .json {
                    if key == "time" || key == "level" || key == "message" { continue }
                    if metadata[..<index].contains(where: { $0.0 == key }) { continue }
                }
                line.add(key, value)
            }
        }
    }

    /// Logs a line whose fields `build` writes straight into it, in order:
    /// no array of fields, no string per value. For lines written on every
    /// request; `build` runs only when `level` is logged. Its keys must be
    /// distinct, and none of `time`, `level`, `message`.
    public func log(_ level: Level, _ message: String, build: (inout LogLine) -> Void) {
        guard level >= self.level else { return }
        // Written into stack memory (no allocation, no uniqueness check per
        // byte appended); a longer line moves to the heap.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer in
            var line = LogLine(buffer: buffer, format: format, level: level, message: message)
            build(&line)
            line.finish()
            line.withBytes { sink.write(utf8: $0, level: level) }
        }
    }

    /// Writes out what the sink holds back (at shutdown).
    public func flush() { sink.flush() }

    /// Now as RFC 3339 UTC to the second (`2026-11-25T05:10:00Z`), without
    /// Foundation's formatter (about 1 us a call, more than the rest of a line).
    static func timestamp(_ seconds: Int = time(nil)) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            LogLine.writeTimestamp(seconds, into: buffer.baseAddress!)
            return String(decoding: buffer, as: UTF8.self)
        }
    }

    /// A metadata value for the text format: bare when it is one plain word,
    /// else quoted with `\"`, `\\`, `\n`, `\r`, `\t` and `\u{..}` escapes, so a
    /// value (which may carry client input) can neither end its line nor its quotes.
    static func textValue(_ value: String) -> String {
        // Most values are plain printable ASCII: decided byte by byte, without
        // looking up Unicode properties.
        if !value.isEmpty, value.utf8.allSatisfy({ byte in
            byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "=")
                && byte != UInt8(ascii: "\\")
        }) {
            return value
        }
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

/// One log line being written, as UTF-8 bytes: `time level message` then
/// ` key=value` per field (text), or one JSON object (json). What
/// `Logger.log(_:_:build:)` hands its closure; valid only there.
public struct LogLine {
    /// Stack memory from `Logger.log`, then `spill` once that is full.
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private var count = 0
    private var spill: [UInt8]?
    private let format: Logger.Format

    init(buffer: UnsafeMutableBufferPointer<UInt8>, format: Logger.Format, level: Logger.Level, message: String) {
        self.buffer = buffer
        self.format = format
        switch format {
        case .text:
            appendTimestamp()
            append(UInt8(ascii: " "))
            append(level.name)
            append(UInt8(ascii: " "))
            append(message)
        case .json:
            append(#"{"time":""#)
            appendTimestamp()
            append(#"","level":"#)
            appendJSONString(level.name)
            append(#","message":"#)
            appendJSONString(message)
        }
    }

    // MARK: Fields

    /// A text field: bare or quoted (`Logger.textValue`) in text, a JSON string in json.
    public mutating func add(_ key: String, _ value: String) {
        self.key(key)
        switch format {
        case .text: appendTextValue(value)
        case .json: appendJSONString(value)
        }
    }

    /// A whole number (a JSON number in json).
    public mutating func add(_ key: String, _ value: Int) {
        self.key(key)
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDigits(UInt64(value.magnitude), minimumCount: 1)
    }

    /// `value / 10^decimals` with exactly `decimals` decimals (`0.214` for
    /// 214 and 3): a duration without floating point (a JSON number in json).
    public mutating func add(_ key: String, _ value: UInt64, decimals: Int) {
        self.key(key)
        let decimals = min(max(0, decimals), 18)
        var scale: UInt64 = 1
        for _ in 0..<decimals { scale *= 10 }
        appendDigits(value / scale, minimumCount: 1)
        guard decimals > 0 else { return }
        append(UInt8(ascii: "."))
        appendDigits(value % scale, minimumCount: decimals)
    }

    private mutating func key(_ key: String) {
        switch format {
        case .text:
            append(UInt8(ascii: " "))
            append(key)
            append(UInt8(ascii: "="))
        case .json:
            append(UInt8(ascii: ","))
            appendJSONString(key)
            append(UInt8(ascii: ":"))
        }
    }

    mutating func finish() {
        if format == .json { append(UInt8(ascii: "}")) }
    }

    /// Runs `body` with the line's bytes.
    func withBytes<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        if let spill { return spill.withUnsafeBytes(body) }
        return body(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[..<count]))
    }

    // MARK: Bytes

    private mutating func append(_ byte: UInt8) {
        if spill == nil, count < buffer.count {
            buffer[count] = byte
            count += 1
        } else {
            spillToHeap()
            spill?.append(byte)
        }
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        if spill == nil, bytes.count <= buffer.count - count {
            if let source = bytes.baseAddress, let target = buffer.baseAddress {
                (target + count).update(from: source, count: bytes.count)
            }
            count += bytes.count
        } else {
            spillToHeap()
            spill?.append(contentsOf: bytes)
        }
    }

    private mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    private mutating func spillToHeap() {
        guard spill == nil else { return }
        var heap = [UInt8](UnsafeBufferPointer(rebasing: buffer[..<count]))
        heap.reserveCapacity(count * 2)
        spill = heap
    }

    /// `value` as the text format writes it (`Logger.textValue`): plain
    /// printable ASCII is copied as it is, without making a new string.
    private mutating func appendTextValue(_ value: String) {
        // withUTF8, not utf8.withContiguousStorageIfAvailable: that has no
        // storage to give for a small (inline) string, and most values are.
        var value = value
        let copied = value.withUTF8 { bytes -> Bool in
            guard !bytes.isEmpty else { return false }
            for byte in bytes {
                guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "="),
                    byte != UInt8(ascii: "\\")
                else { return false }
            }
            append(bytes)
            return true
        }
        if !copied { append(Logger.textValue(value)) }
    }

    /// `value` as a JSON string (as `JSONValue.writeString` writes it).
    private mutating func appendJSONString(_ value: String) {
        var value = value
        let copied = value.withUTF8 { bytes -> Bool in
            for byte in bytes {
                guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\"),
                    byte != UInt8(ascii: "<"), byte != UInt8(ascii: ">"), byte != UInt8(ascii: "&")
                else { return false }
            }
            append(UInt8(ascii: "\""))
            append(bytes)
            append(UInt8(ascii: "\""))
            return true
        }
        if !copied {
            var escaped: [UInt8] = []
            JSONValue.writeString(value, to: &escaped)
            escaped.withUnsafeBufferPointer { append($0) }
        }
    }

    private mutating func appendDigits(_ value: UInt64, minimumCount: Int) {
        // UInt64.max has 20 digits.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = value
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while start > 0 && (rest > 0 || 20 - start < minimumCount)
            append(UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    private mutating func appendTimestamp() {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { stamp in
            Self.writeTimestamp(time(nil), into: stamp.baseAddress!)
            append(UnsafeBufferPointer(stamp))
        }
    }

    /// Writes the 20 bytes of `2026-11-25T05:10:00Z` for `seconds` since 1970.
    static func writeTimestamp(_ seconds: Int, into output: UnsafeMutablePointer<UInt8>) {
        // Days to civil date: Howard Hinnant's algorithm (proleptic Gregorian).
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = min(9999, max(0, yearOfEra + era * 400 + (month <= 2 ? 1 : 0)))
        func put(_ value: Int, _ digits: Int, at start: Int) {
            var rest = value
            for index in stride(from: start + digits - 1, through: start, by: -1) {
                output[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
        }
        put(year, 4, at: 0)
        output[4] = UInt8(ascii: "-")
        put(month, 2, at: 5)
        output[7] = UInt8(ascii: "-")
        put(day, 2, at: 8)
        output[10] = UInt8(ascii: "T")
        put(secondOfDay / 3600, 2, at: 11)
        output[13] = UInt8(ascii: ":")
        put(secondOfDay / 60 % 60, 2, at: 14)
        output[16] = UInt8(ascii: ":")
        put(secondOfDay % 60, 2, at: 17)
        output[19] = UInt8(ascii: "Z")
    }
}

struct DiscardSink: LogSink {
    func write(_ line: String) {}
}
