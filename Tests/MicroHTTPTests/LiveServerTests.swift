import Foundation
import JSON
import MicroHTTP
import TestSupport
import Testing

@Suite("Live server: routing, keep-alive, errors")
struct LiveServerTests {
    @Test("five requests on one connection: all answered, one client port, no Connection: close")
    func keepAlive() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let client = try HTTPTestClient(port: port)
            defer { client.close() }
            let firstPort = client.localPort
            #expect(firstPort != 0)
            for index in 0..<5 {
                let response =
                    index.isMultiple(of: 2)
                    ? try client.send("GET", "/hello")
                    : try client.send("POST", "/echo", body: Array("request \(index)".utf8))
                #expect(response.status == 200)
                #expect(!response.closesConnection)
                #expect(client.localPort == firstPort)
            }
            #expect(!client.isClosedByPeer(within: 0.1))
        }
    }

    @Test("a header field libmicrohttpd cannot send is left out; the response still goes out")
    func unsendableHeaderFields() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let client = try HTTPTestClient(port: port)
            defer { client.close() }
            let response = try client.send("GET", "/unsendable-headers")
            #expect(response.status == 200)
            #expect(try response.json() == ["sent": true])
            #expect(response.header("X-Fine") == "yes")
            #expect(response.header("X-Empty") == nil)
            #expect(response.header("X-Split") == nil)
            #expect(response.header("Set-Cookie") == nil)
            #expect(try client.send("GET", "/hello").status == 200)
        }
    }

    @Test("GET answers JSON with the security headers")
    func hello() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let response = try httpRequest(port: port, "GET", "/hello")
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json")
            #expect(try response.json() == ["hello": "world"])
            #expect(response.header("X-Content-Type-Options") == "nosniff")
            #expect(response.header("X-Frame-Options") == "DENY")
            #expect(response.header("Referrer-Policy") == "no-referrer")
        }
    }

    @Test("HEAD gets GET's headers and no body, and the connection stays usable")
    func head() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let client = try HTTPTestClient(port: port)
            defer { client.close() }
            let get = try client.send("GET", "/hello")
            let head = try client.send("HEAD", "/hello")
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.header("Content-Type") == "application/json")
            #expect(head.header("Content-Length") == String(get.body.count))
            // Had the server sent a body after all, this would read it as a status line.
            #expect(try client.send("GET", "/hello").status == 200)
        }
    }

    @Test("unknown path: 404 JSON not_found")
    func notFound() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let response = try httpRequest(port: port, "GET", "/nope")
            #expect(response.status == 404)
            #expect(response.header("Content-Type") == "application/json")
            let body = try response.json()
            #expect(body.objectValue?["error"] == "not_found")
            #expect(body.objectValue?["message"]?.stringValue?.contains("/nope") == true)
        }
    }

    @Test("wrong method: 405 with Allow and method_not_allowed")
    func methodNotAllowed() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let response = try httpRequest(port: port, "DELETE", "/hello")
            #expect(response.status == 405)
            #expect(response.header("Allow") == "GET, HEAD, OPTIONS")
            #expect(try response.json().objectValue?["error"] == "method_not_allowed")
            let post = try httpRequest(port: port, "PUT", "/echo", body: [])
            #expect(post.status == 405)
            #expect(post.header("Allow") == "GET, HEAD, OPTIONS, POST")
        }
    }

    @Test("error responses keep the connection alive")
    func errorsKeepAlive() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let client = try HTTPTestClient(port: port)
            defer { client.close() }
            let localPort = client.localPort
            #expect(try client.send("GET", "/nope").status == 404)
            #expect(try client.send("DELETE", "/hello").status == 405)
            #expect(try client.send("GET", "/rate-limited").status == 429)
            #expect(try client.send("GET", "/hello").status == 200)
            #expect(client.localPort == localPort)
        }
    }

    @Test(
        "a thrown HTTPResponseError renders its status, code, message and headers",
        arguments: ["/rate-limited", "/deferred-rate-limited"])
    func httpResponseError(_ path: String) async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let response = try await blockingIO { try httpRequest(port: port, "GET", path) }
            #expect(response.status == 429)
            #expect(response.header("Retry-After") == "7")
            #expect(try response.json() == ["error": "rate_limited", "message": "Slow down."])
            #expect(response.header("X-Content-Type-Options") == "nosniff")
        }
    }

    @Test(
        "any other thrown error is a logged 500 internal_error that reveals nothing",
        arguments: ["/broken", "/deferred-broken"])
    func internalError(_ path: String) async throws {
        let sink = MemoryLogSink()
        try await withHTTPServer(router: LiveRoutes.router, logger: Logger(sink: sink)) { _, port in
            let response = try await blockingIO { try httpRequest(port: port, "GET", path) }
            #expect(response.status == 500)
            #expect(try response.json().objectValue?["error"] == "internal_error")
            #expect(!response.text.contains("hunter2"))
        }
        let lines = sink.lines
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line.contains("error unhandled error"))
        #expect(line.contains("path=\(path)"))
        #expect(line.contains("hunter2"))
    }

    @Test("the query string is parsed and is not part of the path")
    func query() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let response = try httpRequest(port: port, "GET", "/echo?all=true&x=1&empty=&spaced=a%20b")
            #expect(response.status == 200)
            let body = try #require(try response.json().objectValue)
            #expect(body["path"] == "/echo")
            #expect(body["all"] == "true")
            #expect(body["query"] == ["all": "true", "x": "1", "empty": "", "spaced": "a b"])
            #expect(body["query"]?.objectValue?.keys == ["all", "x", "empty", "spaced"])
        }
    }

    /// libmicrohttpd decodes the path before the handler sees it (the doc
    /// comment on `Request.path` says decoding is left to the handler): it must
    /// happen exactly once.
    @Test("the path and query arrive percent-decoded, once")
    func percentDecoding() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            #expect(try httpRequest(port: port, "GET", "/h%65llo").status == 200)
            let response = try httpRequest(port: port, "GET", "/ech%6F?all=%2541&plus=a+b")
            let body = try #require(try response.json().objectValue)
            #expect(body["path"] == "/echo")
            #expect(body["all"] == "%41")
            #expect(body["query"]?.objectValue?["plus"] == "a b")
            let encodedQuestionMark = try httpRequest(port: port, "GET", "/echo%3Fall=true")
            #expect(encodedQuestionMark.status == 404)
        }
    }

    /// `%00` decodes to a NUL byte and the path is handed over as a C string,
    /// so everything after it vanished: `/hello%00junk` was served as `/hello`
    /// (the classic null-byte truncation behind "allow *.json" proxy rules).
    @Test("a NUL byte in the path does not truncate it", arguments: ["/hello%00junk", "/hello%00", "/hello%00.json"])
    func nulInPath(_ path: String) async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let response = try httpRequest(port: port, "GET", path)
            #expect(response.status != 200, "\(path) was served as /hello")
        }
    }

    @Test("headers reach the handler")
    func requestHeaders() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let response = try httpRequest(port: port, "GET", "/echo", headers: [("User-Agent", "gatehouse-tests/1")])
            #expect(try response.json().objectValue?["userAgent"] == "gatehouse-tests/1")
        }
    }

    @Test("the remote address is the client's", arguments: ["127.0.0.1", "127.0.0.2"])
    func remoteAddress(_ clientAddress: String) async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let client = try HTTPTestClient(port: port, bindAddress: clientAddress)
            defer { client.close() }
            let response = try client.send("GET", "/echo")
            #expect(try response.json().objectValue?["remote"] == .string(clientAddress))
        }
    }

    @Test("a request body reaches the handler intact")
    func postBody() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let client = try HTTPTestClient(port: port)
            defer { client.close() }
            let response = try client.send("POST", "/echo", json: ["name": "Zoë", "n": 1])
            let sent = #"{"name":"Zoë","n":1}"#
            #expect(try response.json() == ["length": .int(sent.utf8.count), "body": .string(sent)])
        }
    }

    @Test("the bound port is reported; a second server cannot take it; a bad host is refused")
    func startFailures() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { server, port in
            #expect(port != 0)
            #expect(server.port == port)
            let second = HTTPServer(
                configuration: .ephemeral { $0.port = port }, router: LiveRoutes.router, logger: .silent)
            #expect(throws: HTTPServerError.self) { try second.start() }
        }
        let badHost = HTTPServer(configuration: .ephemeral { $0.host = "example.com" }, router: Router())
        #expect(throws: HTTPServerError.self) { try badHost.start() }
    }
}
