import Foundation
import JSON
import Testing

@testable import MicroHTTP

@Suite("Request log: the buffered sink and the line format")
struct RequestLogSinkTests {
    /// A pipe whose read end is drained on a thread of its own into memory.
    final class Pipe: @unchecked Sendable {
        // @unchecked: `received` is behind its lock; the descriptors are set once.
        let readEnd: Int32
        let writeEnd: Int32
        private let received = LockedValue<[UInt8]>([])
        private let done = DispatchSemaphore(value: 0)

        init() throws {
            var descriptors: [Int32] = [0, 0]
            guard pipe(&descriptors) == 0 else { throw POSIXError(.EMFILE) }
            readEnd = descriptors[0]
            writeEnd = descriptors[1]
            Thread { [self] in
                var chunk = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                    if count <= 0 { break }
                    received.withLock { $0.append(contentsOf: chunk[..<count]) }
                }
                done.signal()
            }.start()
        }

        var text: String { String(decoding: received.withLock { $0 }, as: UTF8.self) }

        /// Closes the write end and waits for the reader to see the end.
        func finish() -> String {
            close(writeEnd)
            done.wait()
            close(readEnd)
            return text
        }
    }

    @Test func linesFromManyThreadsArriveWholeAndInOrderPerThread() async throws {
        let pipe = try Pipe()
        let writer = BufferedLogWriter(descriptor: pipe.writeEnd, interval: 0.01, limit: 4096)
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<8 {
                group.addTask {
                    await blockingThread {
                        for index in 0..<2_000 {
                            let padding = String(repeating: "x", count: index % 300)
                            writer.append("thread=\(thread) line=\(index) " + padding)
                        }
                    }
                }
            }
        }
        writer.stop()
        let lines = pipe.finish().split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 16_000)
        var next = [Int](repeating: 0, count: 8)
        for line in lines {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let thread = Int(fields[0].dropFirst(7)), let index = Int(fields[1].dropFirst(5))
            else {
                Issue.record("a broken line: \(line.prefix(80))")
                continue
            }
            #expect(index == next[thread], "thread \(thread) out of order")
            next[thread] = index + 1
            #expect(line.count == fields[0].count + fields[1].count + 2 + index % 300)
        }
    }

    @Test func anUrgentLineGoesOutAtOnceWithEverythingBeforeIt() throws {
        let pipe = try Pipe()
        let writer = BufferedLogWriter(descriptor: pipe.writeEnd, interval: 10, limit: 1 << 20)
        writer.append("first")
        usleep(50_000)
        #expect(pipe.text.isEmpty)  // held back: the flusher waits 10 s
        writer.append("second", urgent: true)
        let deadline = Date().addingTimeInterval(5)
        while pipe.text != "first\nsecond\n", Date() < deadline { usleep(5_000) }
        #expect(pipe.text == "first\nsecond\n")
        writer.append("third")
        writer.flush()
        writer.stop()
        #expect(pipe.finish() == "first\nsecond\nthird\n")
    }

    @Test func theBackgroundFlusherWritesWithinItsInterval() throws {
        let pipe = try Pipe()
        let writer = BufferedLogWriter(descriptor: pipe.writeEnd, interval: 0.02)
        writer.append("soon")
        let deadline = Date().addingTimeInterval(5)
        while pipe.text.isEmpty, Date() < deadline { usleep(5_000) }
        #expect(pipe.text == "soon\n")
        writer.stop()
        _ = pipe.finish()
    }

    @Test(
        "timestamps match Foundation's ISO 8601",
        arguments: [0, 951_782_400, 1_709_164_799, 1_764_047_400, 4_102_444_799, 1_234_567_890])
    func timestamps(_ seconds: Int) {
        let expected = Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601)
        #expect(Logger.timestamp(seconds) == expected)
    }

    @Test func jsonLinesNeverRepeatAMember() throws {
        let sink = MemoryLogSink()
        Logger(format: .json, sink: sink).info("hello", ["message": "forged", "a": "1", "a": "2", "path": "/x"])
        let line = try #require(sink.lines.first)
        let object = try #require(try JSONValue.parse(line).objectValue)  // the parser refuses duplicates
        #expect(object["message"] == "hello")
        #expect(object["a"] == "1")
        #expect(object["path"] == "/x")
    }

    @Test(
        "plain ASCII values stay bare; anything else is quoted as before",
        arguments: [
            ("/protected", "/protected"), ("", #""""#), ("a b", #""a b""#), ("a=b", #""a=b""#), ("ü", "ü"),
            ("✓ x", #""✓ x""#), ("\u{2028}", #""\u{2028}""#),
        ])
    func textValues(_ value: String, _ written: String) {
        #expect(Logger.textValue(value) == written)
    }
}

@Suite("Request log: client addresses")
struct RequestLogAddressTests {
    @Test(
        "addresses are written as IPAddress.description writes them",
        arguments: ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.200.3.45", "192.0.2.100", "::1", "2001:db8::7"])
    func addresses(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(ServerCore.logText(address) == address.description)
        #expect(ServerCore.logText(address) == text)
    }
}

@Suite("Request log: lines built in place")
struct LogLineTests {
    @Test(arguments: [Logger.Format.text, .json])
    func numbersAndLongLinesComeOutWhole(_ format: Logger.Format) throws {
        let sink = MemoryLogSink()
        let long = String(repeating: "abcdefgh", count: 400)  // past the 1 KiB of stack
        Logger(format: format, sink: sink).log(.info, "request") { line in
            line.add("status", 0)
            line.add("negative", -42)
            line.add("duration_ms", 1_234_567, decimals: 3)
            line.add("small", 7, decimals: 3)
            line.add("path", long)
            line.add("after", "x y")
        }
        let line = try #require(sink.lines.first)
        switch format {
        case .text:
            #expect(line.contains(" info request status=0 negative=-42 duration_ms=1234.567 small=0.007 path="))
            #expect(line.hasSuffix(" path=\(long) after=\"x y\""))
        case .json:
            let object = try #require(try JSONValue.parse(line).objectValue)
            #expect(object["status"] == 0)
            #expect(object["negative"] == -42)
            #expect(object["duration_ms"] == .number(1234.567))
            #expect(object["small"] == .number(0.007))
            #expect(object["path"] == .string(long))
            #expect(object["after"] == "x y")
            #expect(object["message"] == "request")
        }
    }
}
