import Foundation
import JSON
import MicroHTTP
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `shutdown()` blocks while requests drain: it always runs on its own thread
/// here, so the test's own tasks keep running.
@Suite("Live server: graceful shutdown", .serialized)
struct ShutdownTests {
    private func expectRefused(_ port: UInt16, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: HTTPTestClientError.connectFailed(errno: ECONNREFUSED), sourceLocation: sourceLocation) {
            let client = try HTTPTestClient(port: port, timeout: 1)
            client.close()
        }
    }

    @Test("a request in flight finishes during shutdown; new connections are refused after")
    func drains() async throws {
        var router = Router()
        // Long enough to be surely in flight when checked on a loaded machine,
        // short enough to finish inside the 2 s grace period.
        router.add(.post, "/slow", on: LiveRoutes.pool, LiveRoutes.slow(milliseconds: 1500))
        try await withHTTPServer(router: router) { server, port in
            let slow = Task { try await blockingIO { try httpRequest(port: port, "POST", "/slow", body: []) } }
            #expect(await waitUntil(timeout: 5) { server.requestsInFlight == 1 })
            try await Task.sleep(for: .milliseconds(100))

            let stopping = Task {
                let started = ContinuousClock.now
                await blockingIO { server.shutdown() }
                return ContinuousClock.now - started
            }
            try await Task.sleep(for: .milliseconds(50))
            #expect(server.requestsInFlight == 1)

            let response = try await slow.value
            #expect(response.status == 200)
            #expect(try response.json() == ["slept": 1500, "length": 0])
            let took = await stopping.value
            #expect(took < .seconds(2), "shutdown took \(took)")
            #expect(server.requestsInFlight == 0)
            expectRefused(port)
        }
    }

    @Test("a deferred handler slower than the grace period: shutdown returns in time and the client gets 503")
    func gracePeriodExceeded() async throws {
        var router = Router()
        router.add(.post, "/slow", on: LiveRoutes.pool, LiveRoutes.slow(milliseconds: 3000))
        let configuration = HTTPServerConfiguration.ephemeral { $0.shutdownGracePeriod = 0.3 }
        try await withHTTPServer(router: router, configuration: configuration) { server, port in
            let slow = Task { try await blockingIO { try httpRequest(port: port, "POST", "/slow", body: []) } }
            #expect(await waitUntil(timeout: 2) { server.requestsInFlight == 1 })

            let started = ContinuousClock.now
            await blockingIO { server.shutdown() }
            let took = ContinuousClock.now - started
            #expect(took >= .milliseconds(300))
            #expect(took < .milliseconds(1500), "shutdown took \(took)")

            let response = try await slow.value
            #expect(response.status == 503)
            #expect(response.header("Retry-After") == "1")
            #expect(response.header("X-Content-Type-Options") == "nosniff")
            #expect(try response.json().objectValue?["error"] == "unavailable")
            expectRefused(port)
        }
    }

    @Test("idle keep-alive connections do not hold shutdown up, and are closed by it")
    func idleConnections() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { server, port in
            let clients = try (0..<3).map { _ in try HTTPTestClient(port: port) }
            defer { clients.forEach { $0.close() } }
            for client in clients { #expect(try client.send("GET", "/hello").status == 200) }

            let started = ContinuousClock.now
            await blockingIO { server.shutdown() }
            #expect(ContinuousClock.now - started < .milliseconds(500))
            for client in clients { #expect(client.isClosedByPeer(within: 1)) }
        }
    }

    @Test("a stalled upload holds shutdown no longer than the grace period")
    func stalledUpload() async throws {
        let configuration = HTTPServerConfiguration.ephemeral { $0.shutdownGracePeriod = 0.3 }
        try await withHTTPServer(router: LiveRoutes.router, configuration: configuration) { server, port in
            let client = try HTTPTestClient(port: port)
            defer { client.close() }
            try client.sendRaw(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part".utf8))
            #expect(await waitUntil(timeout: 2) { server.requestsInFlight == 1 })

            let started = ContinuousClock.now
            await blockingIO { server.shutdown() }
            #expect(ContinuousClock.now - started < .milliseconds(1500))
            #expect(client.isClosedByPeer(within: 1))
        }
    }

    /// `start()` documents "a server is started at most once" but a second
    /// call started a second daemon and replaced the first in `daemon`: the
    /// first kept serving its port, and no `shutdown()` could stop it.
    @Test("a second start() is refused instead of leaking a daemon nobody can stop")
    func startTwice() async throws {
        let server = HTTPServer(configuration: .ephemeral, router: LiveRoutes.router, logger: .silent)
        let first = try server.start()
        #expect(throws: HTTPServerError.self) { try server.start() }
        await blockingIO { server.shutdown() }
        expectRefused(first)
    }

    @Test("shutdown is safe to call twice, and before start")
    func idempotent() async throws {
        HTTPServer(configuration: .ephemeral, router: Router()).shutdown()
        try await withHTTPServer(router: LiveRoutes.router) { server, port in
            await blockingIO { server.shutdown() }
            await blockingIO { server.shutdown() }
            expectRefused(port)
        }
    }
}
