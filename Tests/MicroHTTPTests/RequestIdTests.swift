import Foundation
import JSON
import Testing
import TestSupport

@testable import MicroHTTP

@Suite("X-Request-Id: kept when sane, made otherwise, on every response and in the request log")
struct RequestIdTests {
    @Test(
        "ids a request may bring",
        arguments: [
            ("a", true), ("abc-123", true), ("0f8fad5b-d9cb-469f-a165-70867728950e", true), ("req:1.2_3", true),
            (String(repeating: "x", count: 128), true), ("", false), (String(repeating: "x", count: 129), false),
            ("has space", false), ("new\nline", false), ("quote\"", false), ("ümlaut", false), ("a/b", false),
            ("a=b", false), ("a,b", false), ("tab\t", false), ("semi;colon", false),
        ])
    func acceptable(_ value: String, _ accepted: Bool) {
        #expect(RequestID.isAcceptable(value) == accepted)
    }

    @Test func generatedIdsAreFifteenBase64URLCharactersAndDistinct() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let id = RequestID.generate()
            #expect(id.count == RequestID.generatedLength)
            #expect(id.allSatisfy(alphabet.contains))
            #expect(RequestID.isAcceptable(id))
            seen.insert(id)
        }
        #expect(seen.count == 20_000)
        // Every character position takes many values: the bits are used, not constant.
        let firsts = Set((0..<2_000).map { _ in RequestID.generate().first })
        #expect(firsts.count > 50)
    }

    /// A router with the live routes and one that answers with the id the handler saw.
    static var router: Router {
        var router = LiveRoutes.router
        router.get("/my-id") { request in
            .json(["id": request.header(RequestID.headerName).map(JSONValue.string) ?? nil])
        }
        router.anyMethod("/verify") { _ in Response(status: 401) }
        return router
    }

    /// Whether `id` looks generated: 15 base64url characters.
    static func isGenerated(_ id: String) -> Bool { id.wholeMatch(of: #/[A-Za-z0-9_-]{15}/#) != nil }

    /// Every kind of answer, each with the id it must carry: the request's
    /// own (sane) one, or a new one.
    @Test(
        "every response carries X-Request-Id",
        arguments: [
            ("GET /hello", [("X-Request-Id", "trace-1")], 200, "trace-1"),
            ("GET /hello", [], 200, nil),
            ("GET /hello", [("X-Request-Id", "not sane!")], 200, nil),
            ("GET /hello", [("X-Request-Id", String(repeating: "y", count: 129))], 200, nil),
            ("GET /nowhere", [("X-Request-Id", "trace-404")], 404, "trace-404"),
            ("BREW /hello", [("X-Request-Id", "trace-501")], 501, "trace-501"),
            ("DELETE /hello", [], 405, nil),
            ("OPTIONS /hello", [("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET")], 204, nil),
            ("POST /echo", [("Content-Length", "100000000"), ("X-Request-Id", "trace-413")], 413, "trace-413"),
            (
                "POST /echo", [("Content-Length", "3"), ("Transfer-Encoding", "chunked"), ("X-Request-Id", "t-400")],
                400, "t-400"
            ),
            ("GET /deferred-rate-limited", [("X-Request-Id", "trace-429")], 429, "trace-429"),
            ("GET /broken", [], 500, nil),
            ("PROPFIND /verify", [("X-Request-Id", "trace-verify")], 401, "trace-verify"),
        ] as [(String, [(String, String)], Int, String?)])
    func everyResponse(_ request: String, _ headers: [(String, String)], _ status: Int, _ kept: String?) async throws {
        let parts = request.split(separator: " ")
        try await withObservedServer(router: Self.router) { port in
            let response = try await blockingIO {
                try httpRequest(port: port, String(parts[0]), String(parts[1]), headers: headers)
            }
            #expect(response.status == status)
            #expect(response.headerValues("X-Request-Id").count == 1)
            let id = try #require(response.header("X-Request-Id"))
            if let kept {
                #expect(id == kept)
            } else {
                #expect(Self.isGenerated(id), "\(id)")
            }
        }
    }

    @Test func theHandlerSeesTheIdTheResponseCarries() async throws {
        try await withObservedServer(router: Self.router) { port in
            let client = try HTTPTestClient(port: port)
            for headers in [[], [("X-Request-Id", "mine.1")], [("X-Request-Id", "bad id")]] {
                let response = try client.send("GET", "/my-id", headers: headers)
                #expect(try response.json() == ["id": .string(response.header("X-Request-Id") ?? "-")])
            }
            // Two requests without one get two ids.
            let first = try client.send("GET", "/my-id").header("X-Request-Id")
            let second = try client.send("GET", "/my-id").header("X-Request-Id")
            #expect(first != second)
        }
    }

    @Test func browsersMaySendAndReadItWhenTheCORSPolicySaysSo() async throws {
        let cors = CORSPolicy(
            allowedHeaders: ["Authorization", "Content-Type", "X-Request-Id"],
            exposedHeaders: ["WWW-Authenticate", "Retry-After", "X-Request-Id"])
        try await withObservedServer(cors: cors) { port in
            let response = try await blockingIO {
                try httpRequest(port: port, "GET", "/hello", headers: [("Origin", "https://app.example")])
            }
            #expect(response.header("Access-Control-Expose-Headers")?.contains("X-Request-Id") == true)
        }
    }
}

@Suite("Request log: one line per request")
struct RequestLogLineTests {
    /// The request lines logged so far.
    static func requestLines(_ sink: MemoryLogSink) -> [String] {
        sink.lines.filter { $0.contains(" info request ") }
    }

    @Test func oneLinePerRequestWithItsFieldsAndNeverTheQuery() async throws {
        let sink = MemoryLogSink()
        try await withObservedServer(logger: Logger(sink: sink)) { port in
            let client = try HTTPTestClient(port: port)
            _ = try client.send(
                "GET", "/echo?token=hunter2&all=true",
                headers: [("X-Request-Id", "trace-7"), ("Authorization", "Bearer sekrit.token.value")])
            _ = try client.send(
                "POST", "/echo", headers: [("Content-Type", "application/json")],
                body: Array(#"{"password":"pa55word"}"#.utf8))
            _ = try client.send("GET", "/nowhere/%E2%9C%93%20x")
            _ = try client.send("BREW", "/hello")
            #expect(await waitUntil(timeout: 5) { Self.requestLines(sink).count == 4 }, "\(sink.lines)")
            let lines = Self.requestLines(sink)
            #expect(lines.count == 4)
            let first = try #require(lines.first)
            #expect(first.prefixMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info request /#) != nil, "\(first)")
            #expect(first.contains(" method=GET path=/echo status=200 duration_ms="), "\(first)")
            #expect(first.contains(#/ duration_ms=\d+\.\d{3} /#), "\(first)")
            #expect(first.hasSuffix(" client_ip=127.0.0.1 request_id=trace-7"), "\(first)")
            #expect(lines[1].contains("method=POST path=/echo status=200 "))
            #expect(lines[1].wholeMatch(of: #/.* request_id=[A-Za-z0-9_-]{15}/#) != nil)
            // The decoded path is quoted when it holds a space or non-ASCII.
            #expect(lines[2].contains(#"path="/nowhere/✓ x" status=404"#), "\(lines[2])")
            #expect(lines[3].contains("method=BREW path=/hello status=501"))
            for line in sink.lines {
                #expect(!line.contains("hunter2"))
                #expect(!line.contains("token="))
                #expect(!line.contains("sekrit"))
                #expect(!line.contains("pa55word"))
            }
        }
    }

    @Test func jsonLinesCarryTheSameFields() async throws {
        let sink = MemoryLogSink()
        try await withObservedServer(logger: Logger(format: .json, sink: sink)) { port in
            _ = try await blockingIO {
                try httpRequest(port: port, "GET", "/hello?x=1", headers: [("X-Request-Id", "json-1")])
            }
            #expect(await waitUntil(timeout: 5) { sink.lines.contains { $0.contains(#""message":"request""#) } })
            let line = try #require(sink.lines.first { $0.contains(#""message":"request""#) })
            let object = try #require(try JSONValue.parse(line).objectValue)
            #expect(object["level"] == "info")
            #expect(object["method"] == "GET")
            #expect(object["path"] == "/hello")
            #expect(object["status"] == 200)
            #expect(object["client_ip"] == "127.0.0.1")
            #expect(object["request_id"] == "json-1")
            let duration = try #require(object["duration_ms"])
            guard case .number(let milliseconds) = duration else {
                Issue.record("duration_ms is not a number: \(duration)")
                return
            }
            #expect(milliseconds >= 0 && milliseconds < 5_000)
            #expect(line.contains(#/"duration_ms":\d+\.\d{3}[,}]/#))
            #expect(object["time"]?.stringValue?.hasSuffix("Z") == true)
        }
    }

    @Test func behindATrustedProxyTheClientIsTheForwardedAddress() async throws {
        let sink = MemoryLogSink()
        let configuration = HTTPServerConfiguration.ephemeral {
            $0.trustedProxies = TrustedProxies(parsing: "127.0.0.0/8") ?? TrustedProxies()
        }
        try await withObservedServer(configuration: configuration, logger: Logger(sink: sink)) { port in
            _ = try await blockingIO {
                try httpRequest(port: port, "GET", "/hello", headers: [("X-Forwarded-For", "198.51.100.23")])
            }
            #expect(await waitUntil(timeout: 5) { Self.requestLines(sink).count == 1 })
            #expect(Self.requestLines(sink).first?.contains(" client_ip=198.51.100.23 ") == true)
        }
    }

    @Test func anAbandonedRequestIsLoggedWithStatusZero() async throws {
        let sink = MemoryLogSink()
        try await withObservedServer(logger: Logger(sink: sink)) { port in
            let client = try HTTPTestClient(port: port)
            try client.sendRaw(
                Array("POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-1\r\nContent-Length: 10\r\n\r\nabc".utf8))
            usleep(100_000)
            client.close()
            #expect(await waitUntil(timeout: 5) { Self.requestLines(sink).count == 1 }, "\(sink.lines)")
            let line = try #require(Self.requestLines(sink).first)
            #expect(line.contains("method=POST path=/echo status=0 "))
            #expect(line.contains(" client_ip=127.0.0.1 request_id=gone-1"))
        }
    }

    @Test func offOrBelowTheLevelNothingIsLogged() async throws {
        let off = MemoryLogSink()
        try await withObservedServer(logger: Logger(sink: off), requestLog: false) { port in
            _ = try await blockingIO { try httpRequest(port: port, "GET", "/hello") }
        }
        #expect(Self.requestLines(off).isEmpty)
        let quiet = MemoryLogSink()
        try await withObservedServer(logger: Logger(level: .warning, sink: quiet)) { port in
            _ = try await blockingIO { try httpRequest(port: port, "GET", "/hello") }
        }
        #expect(quiet.lines.isEmpty)
    }
}
