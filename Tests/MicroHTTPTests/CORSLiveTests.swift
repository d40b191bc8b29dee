import Foundation
import JSON
import MicroHTTP
import TestSupport
import Testing

@Suite("Live server: CORS and security headers")
struct CORSLiveTests {
    static let app = "https://app.example.com"
    static let listed = CORSPolicy(allowedOrigins: .list([app]))

    @Test("a preflight: 204 with the allowed methods, headers and max age")
    func preflight() async throws {
        try await withHTTPServer(router: LiveRoutes.router, cors: Self.listed) { _, port in
            let response = try httpRequest(
                port: port, "OPTIONS", "/echo",
                headers: [
                    ("Origin", Self.app), ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "authorization, content-type"),
                ])
            #expect(response.status == 204)
            #expect(response.body.isEmpty)
            #expect(response.header("Access-Control-Allow-Origin") == Self.app)
            #expect(response.header("Access-Control-Allow-Methods") == "GET, HEAD, OPTIONS, POST")
            #expect(response.header("Access-Control-Allow-Headers") == "Authorization, Content-Type")
            #expect(response.header("Access-Control-Max-Age") == "600")
            #expect(response.header("Vary") == "Origin")
            #expect(response.header("Allow") == "GET, HEAD, OPTIONS, POST")
            #expect(response.header("X-Content-Type-Options") == "nosniff")
        }
    }

    @Test("a preflight from an origin not on the list gets no permission")
    func preflightRefused() async throws {
        try await withHTTPServer(router: LiveRoutes.router, cors: Self.listed) { _, port in
            let response = try httpRequest(
                port: port, "OPTIONS", "/echo",
                headers: [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")])
            #expect(response.status == 204)
            #expect(response.header("Access-Control-Allow-Origin") == nil)
            #expect(response.header("Access-Control-Allow-Methods") == nil)
        }
    }

    @Test("an allowed origin is echoed with Vary: Origin")
    func allowedOrigin() async throws {
        try await withHTTPServer(router: LiveRoutes.router, cors: Self.listed) { _, port in
            let response = try httpRequest(port: port, "GET", "/hello", headers: [("Origin", Self.app)])
            #expect(response.status == 200)
            #expect(response.header("Access-Control-Allow-Origin") == Self.app)
            #expect(response.header("Vary") == "Origin")
            #expect(response.header("Access-Control-Expose-Headers") == "WWW-Authenticate, Retry-After")
        }
    }

    @Test("a disallowed origin gets no Access-Control-Allow-Origin, on success and on error")
    func disallowedOrigin() async throws {
        try await withHTTPServer(router: LiveRoutes.router, cors: Self.listed) { _, port in
            for path in ["/hello", "/nope"] {
                let response = try httpRequest(port: port, "GET", path, headers: [("Origin", "https://evil.example")])
                #expect(response.header("Access-Control-Allow-Origin") == nil)
                #expect(response.header("Vary") == "Origin")
            }
        }
    }

    @Test("with any origin allowed, errors carry '*' too, so a browser can read them")
    func anyOrigin() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            for path in ["/hello", "/nope", "/rate-limited"] {
                let response = try httpRequest(port: port, "GET", path, headers: [("Origin", "https://x.example")])
                #expect(response.header("Access-Control-Allow-Origin") == "*", "\(path)")
            }
        }
    }

    /// One request of every kind the server answers: success, each error it
    /// makes itself, handler errors, a deferred answer, a preflight, HEAD.
    struct Exchange: Sendable, CustomTestStringConvertible {
        var method: String
        var path: String
        var headers: [(String, String)] = []
        var body: [UInt8]? = nil
        var status: Int

        var testDescription: String { "\(method) \(path) -> \(status)" }
    }

    static let everyKind: [Exchange] = [
        Exchange(method: "GET", path: "/hello", status: 200),
        Exchange(method: "HEAD", path: "/hello", status: 200),
        Exchange(method: "GET", path: "/nope", status: 404),
        Exchange(method: "DELETE", path: "/hello", status: 405),
        Exchange(method: "POST", path: "/echo", body: [UInt8](repeating: 0x41, count: 2000), status: 413),
        Exchange(method: "GET", path: "/rate-limited", status: 429),
        Exchange(method: "GET", path: "/broken", status: 500),
        Exchange(method: "GET", path: "/deferred-broken", status: 500),
        Exchange(method: "POST", path: "/slow", body: [], status: 200),
        Exchange(
            method: "OPTIONS", path: "/hello",
            headers: [("Origin", "https://x.example"), ("Access-Control-Request-Method", "GET")], status: 204),
    ]

    @Test("every response carries X-Content-Type-Options: nosniff", arguments: everyKind)
    func nosniffEverywhere(_ exchange: Exchange) async throws {
        try await withHTTPServer(
            router: LiveRoutes.router, configuration: .ephemeral { $0.maxBodyBytes = 1024 }
        ) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            let response = try await blockingIO {
                try client.send(exchange.method, exchange.path, headers: exchange.headers, body: exchange.body)
            }
            #expect(response.status == exchange.status)
            #expect(response.header("X-Content-Type-Options") == "nosniff")
        }
    }
}
