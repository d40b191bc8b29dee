import Foundation
import JSON
import MicroHTTP
import TestSupport
import Testing

/// `Router.anyMethod`: a route for forward-auth, answered for every method
/// (no 405, no 501, no preflight) without reading the body (no 413), on a
/// connection that stays usable afterwards.
@Suite("Live server: any-method routes")
struct AnyMethodRouteTests {
    static let configuration = HTTPServerConfiguration.ephemeral { $0.maxBodyBytes = 1024 }

    static var router: Router {
        var router = Router()
        router.anyMethod("/check") { request in
            Response(
                status: 200,
                headers: ["X-Method": request.method.rawValue, "X-Body-Bytes": String(request.body.count)])
        }
        router.get("/other") { _ in .jsonBytes(Array(#"{"ok":true}"#.utf8)) }
        return router
    }

    @Test func routerListsAndFindsTheRoute() {
        let router = Self.router
        #expect(router.anyMethodHandler(for: "/check") != nil)
        #expect(router.anyMethodHandler(for: "/other") == nil)
        #expect(router.paths == ["/check", "/other"])
    }

    @Test(arguments: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "TRACE"])
    func everyMethodReachesTheHandler(method: String) async throws {
        try await withHTTPServer(router: Self.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            // A browser-style preflight too: the route answers, not the CORS policy.
            let headers: [(String, String)] =
                method == "OPTIONS" ? [("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET")] : []
            let response = try client.send(method, "/check", headers: headers)
            #expect(response.status == 200)
            #expect(response.header("X-Method") == method)
            // The connection is still good for the next request.
            #expect(try client.send("GET", "/other").status == 200)
        }
    }

    @Test func aBodyOverTheLimitIsDiscardedNotRefused() async throws {
        try await withHTTPServer(router: Self.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            let response = try client.send("POST", "/check", body: [UInt8](repeating: 0x41, count: 100_000))
            #expect(response.status == 200)
            #expect(response.header("X-Body-Bytes") == "0")
            #expect(!response.closesConnection)
            // The discarded body was consumed, not taken for the next request.
            #expect(try client.send("GET", "/other").status == 200)
        }
    }

    @Test func aChunkedBodyIsDiscardedToo() async throws {
        try await withHTTPServer(router: Self.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            var raw = Array("POST /check HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            for _ in 0..<10 { raw += Array("400\r\n".utf8) + [UInt8](repeating: 0x42, count: 1024) + Array("\r\n".utf8) }
            raw += Array("0\r\n\r\n".utf8)
            try client.sendRaw(raw)
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("X-Body-Bytes") == "0")
            #expect(try client.send("GET", "/other").status == 200)
        }
    }

    @Test func ambiguousFramingIsStillRefused() async throws {
        // Discarding a body must not make request smuggling possible.
        try await withHTTPServer(router: Self.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            try client.sendRaw(
                Array(
                    "POST /check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                        .utf8))
            let response = try client.readResponse()
            #expect(response.status == 400)
            #expect(client.isClosedByPeer(within: 2))
        }
    }
}
