import JSON
import MicroHTTP
import Testing

@Suite("Logger")
struct LoggerTests {
    @Test("text lines: time, level, message, then key=value, quoting values with spaces")
    func textFormat() throws {
        let sink = MemoryLogSink()
        let logger = Logger(sink: sink)
        logger.error("unhandled error", ["path": "/x", "error": "it broke", "empty": ""])
        let line = try #require(sink.lines.first)
        let parts = line.split(separator: " ", maxSplits: 2)
        #expect(parts.count == 3)
        #expect(parts[1] == "error")
        #expect(parts[2] == #"unhandled error path=/x error="it broke" empty="""#)
    }

    @Test("lines below the level are dropped")
    func levels() {
        let sink = MemoryLogSink()
        let logger = Logger(level: .warning, sink: sink)
        logger.debug("d")
        logger.info("i")
        logger.warning("w")
        logger.error("e")
        #expect(sink.lines.count == 2)
        #expect(sink.lines.allSatisfy { $0.contains(" warning w") || $0.contains(" error e") })
        Logger.silent.error("goes nowhere")
    }

    @Test("JSON lines are one object each, metadata as members")
    func jsonFormat() throws {
        let sink = MemoryLogSink()
        Logger(format: .json, sink: sink).info("started", ["port": "8080", "note": "a \"quoted\"\nvalue"])
        #expect(sink.lines.count == 1)
        let line = try #require(sink.lines.first)
        let object = try #require(try JSONValue.parse(line).objectValue)
        #expect(object["level"] == "info")
        #expect(object["message"] == "started")
        #expect(object["port"] == "8080")
        #expect(object["note"] == "a \"quoted\"\nvalue")
        #expect(object["time"]?.stringValue != nil)
    }

    /// A value can carry client-controlled text: the `error` of an unhandled
    /// error (a JSON key decoded from `\n`), a percent-decoded path. In the text
    /// format it must not start a new line, or a client can forge log entries.
    @Test(
        "a text-format value cannot break out of its line or its quotes",
        arguments: ["evil\n2026-01-01T00:00:00Z error forged=1", "cr\rlf", "ends in \\", "quote \" and space"])
    func textInjection(_ value: String) throws {
        let sink = MemoryLogSink()
        Logger(sink: sink).error("unhandled error", ["error": value, "after": "x"])
        let line = try #require(sink.lines.first)
        #expect(!line.contains("\n"))
        #expect(!line.contains("\r"))
        // The field that follows is still parsed as its own key=value pair.
        #expect(line.hasSuffix(" after=x"))
        let quoted = try #require(line.split(separator: " error=", maxSplits: 1).last)
        let field = String(quoted.dropLast(" after=x".count))
        #expect(field.hasPrefix("\"") && field.hasSuffix("\""))
        #expect(unquote(field) == value)
    }

    /// Reads back a value quoted the way the text format should quote it:
    /// `"` ... `"` with `\"`, `\\`, `\n`, `\r` escapes.
    private func unquote(_ field: String) -> String {
        var result = ""
        var escaped = false
        for character in field.dropFirst().dropLast() {
            if escaped {
                switch character {
                case "n": result.append("\n")
                case "r": result.append("\r")
                case "t": result.append("\t")
                default: result.append(character)
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return result
    }
}
