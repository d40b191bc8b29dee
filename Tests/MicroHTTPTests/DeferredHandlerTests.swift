import Foundation
import JSON
import MicroHTTP
import TestSupport
import Testing

/// Deferred handlers run in tasks with their connection suspended. Requests
/// to them go through `blockingIO` so the test never holds a thread of the
/// cooperative pool the handler needs.
@Suite("Live server: deferred handlers", .serialized)
struct DeferredHandlerTests {
    @Test("a deferred handler's answer arrives after its work")
    func answered() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { _, port in
            let started = ContinuousClock.now
            let response = try await blockingIO { try httpRequest(port: port, "POST", "/slow", body: [1, 2, 3]) }
            #expect(ContinuousClock.now - started >= .milliseconds(300))
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "application/json")
            #expect(try response.json() == ["slept": 300, "length": 3])
        }
    }

    @Test("deferred answers keep the connection alive")
    func keepAlive() async throws {
        var router = LiveRoutes.router
        router.add(.post, "/quick", on: LiveRoutes.pool, LiveRoutes.slow(milliseconds: 10))
        try await withHTTPServer(router: router) { _, port in
            let client = try HTTPTestClient(port: port)
            defer { client.close() }
            let localPort = client.localPort
            for _ in 0..<3 {
                let response = try await blockingIO { try client.send("POST", "/quick", body: []) }
                #expect(response.status == 200)
                #expect(!response.closesConnection)
                #expect(try client.send("GET", "/hello").status == 200)
            }
            #expect(client.localPort == localPort)
        }
    }

    @Test("with one server thread, an immediate route answers in < 100 ms while 4 deferred requests wait")
    func suspendedConnectionsDoNotBlock() async throws {
        var router = LiveRoutes.router
        router.add(.post, "/slower", on: LiveRoutes.pool, LiveRoutes.slow(milliseconds: 1000))
        let configuration = HTTPServerConfiguration.ephemeral { $0.threads = 1 }
        try await withHTTPServer(router: router, configuration: configuration) { server, port in
            try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<4 {
                    group.addTask { try await blockingIO { try httpRequest(port: port, "POST", "/slower", body: []) } }
                }
                #expect(await waitUntil(timeout: 3) { server.requestsInFlight == 4 })
                let started = ContinuousClock.now
                let fast = try httpRequest(port: port, "GET", "/hello")
                let elapsed = ContinuousClock.now - started
                #expect(fast.status == 200)
                #expect(elapsed < .milliseconds(100), "took \(elapsed)")
                // The slow ones were still waiting when the fast one was answered
                // (the fast one leaves the count once its completion callback ran).
                #expect(await waitUntil(timeout: 0.2) { server.requestsInFlight == 4 })
                var count = 0
                for try await response in group {
                    #expect(response.status == 200)
                    #expect(try response.json() == ["slept": 1000, "length": 0])
                    count += 1
                }
                #expect(count == 4)
            }
            #expect(await waitUntil(timeout: 2) { server.requestsInFlight == 0 })
        }
    }

    @Test("a full worker queue answers 503 overloaded with Retry-After at once, and frees up again")
    func fullQueue() async throws {
        let pool = try WorkerPool(name: "tiny", workers: 1, queueLimit: 0)
        defer { pool.shutdown() }
        var router = Router()
        router.add(.post, "/busy", on: pool, LiveRoutes.slow(milliseconds: 500))
        try await withHTTPServer(router: router) { _, port in
            let first = Task { try await blockingIO { try httpRequest(port: port, "POST", "/busy", body: []) } }
            // Let the first request reach the only worker.
            try await Task.sleep(for: .milliseconds(150))
            let started = ContinuousClock.now
            let refused = try await blockingIO { try httpRequest(port: port, "POST", "/busy", body: []) }
            #expect(refused.status == 503)
            #expect(refused.header("Retry-After") == "1")
            #expect(try refused.json().objectValue?["error"] == "overloaded")
            #expect(ContinuousClock.now - started < .milliseconds(300))
            #expect(try await first.value.status == 200)
            // The worker counts itself free just after its answer is on the way.
            var later = 0
            for _ in 0..<50 where later != 200 {
                later = try await blockingIO { try httpRequest(port: port, "POST", "/busy", body: []) }.status
                if later != 200 { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(later == 200)
        }
    }

    @Test("many deferred requests at once all get their own answer")
    func manyAtOnce() async throws {
        var router = Router()
        router.add(.post, "/echo-later", on: LiveRoutes.pool) { request in
            usleep(20_000)
            return Response(status: 200, body: request.body)
        }
        try await withHTTPServer(router: router) { _, port in
            try await withThrowingTaskGroup(of: (Int, TestResponse).self) { group in
                for index in 0..<24 {
                    group.addTask {
                        let body = Array("request \(index)".utf8)
                        return (
                            index,
                            try await blockingIO { try httpRequest(port: port, "POST", "/echo-later", body: body) }
                        )
                    }
                }
                for try await (index, response) in group {
                    #expect(response.status == 200)
                    #expect(response.text == "request \(index)")
                }
            }
        }
    }

    @Test("a client that leaves while its request is suspended does not disturb the server")
    func clientLeaves() async throws {
        try await withHTTPServer(router: LiveRoutes.router) { server, port in
            let client = try HTTPTestClient(port: port)
            try client.sendRaw(Array("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".utf8))
            #expect(await waitUntil(timeout: 2) { server.requestsInFlight == 1 })
            client.close()
            // The handler finishes, the resumed connection finds its peer gone.
            #expect(await waitUntil(timeout: 3) { server.requestsInFlight == 0 })
            #expect(try httpRequest(port: port, "GET", "/hello").status == 200)
        }
    }
}
