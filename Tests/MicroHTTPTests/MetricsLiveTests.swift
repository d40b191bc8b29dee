import Foundation
import JSON
import Testing
import TestSupport

@testable import MicroHTTP

/// Like `withHTTPServer`, with the request metrics in `registry` (prefix
/// `test_http`) and, when `requestLog` is on, the request log in `logger`.
func withObservedServer<T>(
    router: Router = LiveRoutes.router,
    configuration: HTTPServerConfiguration = .ephemeral,
    cors: CORSPolicy = CORSPolicy(),
    logger: Logger = .silent,
    registry: MetricsRegistry = MetricsRegistry(),
    requestLog: Bool = true,
    _ body: (UInt16) async throws -> T
) async throws -> T {
    let server = HTTPServer(
        configuration: configuration, router: router, cors: cors, logger: logger, metrics: registry,
        metricPrefix: "test_http", requestLog: requestLog)
    let port = try server.start()
    do {
        let result = try await body(port)
        await blockingIO { server.shutdown() }
        return result
    } catch {
        await blockingIO { server.shutdown() }
        throw error
    }
}

@Suite("Metrics: per-route request metrics over a real socket")
struct MetricsLiveTests {
    /// The sample lines of an exposition, keyed by everything before the value.
    static func samples(_ registry: MetricsRegistry) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in registry.exposition().split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            samples[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return samples
    }

    @Test func everyRequestIsCountedUnderItsRouteMethodAndStatus() async throws {
        let registry = MetricsRegistry()
        try await withObservedServer(registry: registry) { port in
            let client = try HTTPTestClient(port: port)
            #expect(try client.send("GET", "/hello").status == 200)
            #expect(try client.send("GET", "/hello").status == 200)
            #expect(try client.send("HEAD", "/hello").status == 200)
            #expect(try client.send("GET", "/no/such/path").status == 404)
            #expect(try client.send("BREW", "/hello").status == 501)
            #expect(try client.send("DELETE", "/hello").status == 405)
            #expect(try client.send("OPTIONS", "/hello").status == 204)
            #expect(try await blockingIO { try client.send("POST", "/slow", body: Array("x".utf8)) }.status == 200)
            #expect(try await blockingIO { try client.send("GET", "/deferred-rate-limited") }.status == 429)
            let tooLarge = try HTTPTestClient(port: port)
            #expect(try tooLarge.send("POST", "/echo", headers: [("Content-Length", "100000000")]).status == 413)
            // Counted when each response has gone out, after the client may
            // have read it: hence the wait.
            let expected: [String: Double] = [
                #"test_http_requests_total{route="/hello",method="GET",status="200"}"#: 2,
                #"test_http_requests_total{route="/hello",method="HEAD",status="200"}"#: 1,
                #"test_http_requests_total{route="unmatched",method="GET",status="404"}"#: 1,
                #"test_http_requests_total{route="/hello",method="other",status="501"}"#: 1,
                #"test_http_requests_total{route="/hello",method="DELETE",status="405"}"#: 1,
                #"test_http_requests_total{route="/hello",method="OPTIONS",status="204"}"#: 1,
                #"test_http_requests_total{route="/slow",method="POST",status="200"}"#: 1,
                #"test_http_requests_total{route="/deferred-rate-limited",method="GET",status="429"}"#: 1,
                #"test_http_requests_total{route="/echo",method="POST",status="413"}"#: 1,
                #"test_http_request_duration_seconds_count{route="/slow"}"#: 1,
            ]
            #expect(
                await waitUntil(timeout: 5) {
                    let samples = Self.samples(registry)
                    return expected.allSatisfy { samples[$0.key] == $0.value }
                }, "\(registry.exposition())")
            let samples = Self.samples(registry)
            // The slow route slept 300 ms: its one observation is over 0.25 s.
            #expect(samples[#"test_http_request_duration_seconds_bucket{route="/slow",le="0.25"}"#] == 0)
            #expect(samples[#"test_http_request_duration_seconds_bucket{route="/slow",le="0.5"}"#] == 1)
            #expect((samples[#"test_http_request_duration_seconds_sum{route="/slow"}"#] ?? 0) >= 0.3)
            #expect(samples["test_http_requests_in_flight"] != nil)
        }
    }

    @Test func aRequestAbandonedBeforeItsAnswerIsCountedWithStatusZero() async throws {
        let registry = MetricsRegistry()
        try await withObservedServer(registry: registry) { port in
            let client = try HTTPTestClient(port: port)
            // Headers and half a body, then the client goes away.
            try client.sendRaw(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc".utf8))
            usleep(100_000)
            client.close()
            #expect(
                await waitUntil(timeout: 5) {
                    Self.samples(registry)[#"test_http_requests_total{route="/echo",method="POST",status="0"}"#] == 1
                }, "\(registry.exposition())")
        }
    }
}
