import Foundation
import JSON
import MicroHTTP
import TestSupport
import Testing

@Suite("Live server: request body limit")
struct BodyLimitTests {
    static let limit = 1024
    static let configuration = HTTPServerConfiguration.ephemeral { $0.maxBodyBytes = limit }

    /// A request with a chunked body (RFC 9112 section 7.1), `chunkSize` bytes a chunk.
    static func chunkedRequest(_ body: [UInt8], chunkSize: Int = 300) -> [UInt8] {
        var bytes = Array("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        var offset = 0
        while offset < body.count {
            let chunk = body[offset..<min(offset + chunkSize, body.count)]
            bytes += Array("\(String(chunk.count, radix: 16))\r\n".utf8) + chunk + Array("\r\n".utf8)
            offset += chunk.count
        }
        return bytes + Array("0\r\n\r\n".utf8)
    }

    static func expectPayloadTooLarge(_ response: TestResponse) throws {
        #expect(response.status == 413)
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.header("X-Content-Type-Options") == "nosniff")
        let body = try #require(try response.json().objectValue)
        #expect(body["error"] == "payload_too_large")
        #expect(body["message"]?.stringValue?.contains("1024") == true)
    }

    @Test("a body over the limit with Content-Length: 413, then the connection is closed cleanly")
    func contentLengthOverLimit() async throws {
        try await withHTTPServer(router: LiveRoutes.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            let response = try client.send("POST", "/echo", body: [UInt8](repeating: 0x41, count: 2000))
            try Self.expectPayloadTooLarge(response)
            // The unread body must not be taken for the next request: the
            // server says so and closes, without leaving the client hanging.
            #expect(response.closesConnection)
            #expect(client.isClosedByPeer(within: 2))
        }
    }

    @Test("an oversized Content-Length is refused before the body is sent")
    func refusedBeforeBody() async throws {
        try await withHTTPServer(router: LiveRoutes.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            try client.sendRaw(Array("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000000\r\n\r\n".utf8))
            try Self.expectPayloadTooLarge(try client.readResponse())
            #expect(client.isClosedByPeer(within: 2))
        }
    }

    @Test("a much larger body (1 MB) still gets its 413, not a reset")
    func megabyte() async throws {
        try await withHTTPServer(router: LiveRoutes.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 5)
            defer { client.close() }
            try Self.expectPayloadTooLarge(
                try client.send("POST", "/echo", body: [UInt8](repeating: 0x41, count: 1 << 20)))
        }
    }

    @Test("a chunked body over the limit: 413, and the connection stays usable")
    func chunkedOverLimit() async throws {
        try await withHTTPServer(router: LiveRoutes.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            try client.sendRaw(Self.chunkedRequest([UInt8](repeating: 0x42, count: 1800)))
            let response = try client.readResponse()
            try Self.expectPayloadTooLarge(response)
            // The whole body was read, so nothing stands between this request
            // and the next one.
            if !response.closesConnection {
                #expect(try client.send("GET", "/hello").status == 200)
            } else {
                #expect(client.isClosedByPeer(within: 2))
            }
        }
    }

    @Test(
        "a body of exactly the limit is accepted and reaches the handler whole",
        arguments: [false, true])
    func exactlyTheLimit(chunked: Bool) async throws {
        try await withHTTPServer(router: LiveRoutes.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            let body = (0..<Self.limit).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            let response: TestResponse
            if chunked {
                try client.sendRaw(Self.chunkedRequest(body))
                response = try client.readResponse()
            } else {
                response = try client.send("POST", "/echo", body: body)
            }
            #expect(response.status == 200)
            let echoed = try #require(try response.json().objectValue)
            #expect(echoed["length"] == .int(Self.limit))
            #expect(echoed["body"] == .string(String(decoding: body, as: UTF8.self)))
            // One byte over, on the same connection.
            let over = try client.send("POST", "/echo", body: body + [0x7A])
            #expect(over.status == 413)
        }
    }

    @Test("the limit does not carry over: a small request after a refused chunked one is fine")
    func limitIsPerRequest() async throws {
        try await withHTTPServer(router: LiveRoutes.router, configuration: Self.configuration) { _, port in
            let client = try HTTPTestClient(port: port, timeout: 3)
            defer { client.close() }
            try client.sendRaw(Self.chunkedRequest([UInt8](repeating: 0x42, count: 4000)))
            try Self.expectPayloadTooLarge(try client.readResponse())
            for _ in 0..<3 {
                let response = try client.send("POST", "/echo", body: [UInt8](repeating: 0x43, count: 1000))
                #expect(response.status == 200)
                #expect(try response.json().objectValue?["length"] == 1000)
            }
        }
    }
}
