import AuthService
import Foundation
import Glibc
import MicroHTTP
import Testing
import TestSupport

/// A raw client socket for abuse tests: connects from a chosen loopback
/// address, writes without SIGPIPE, and tells whether the server closed it.
private struct RawSocket {
    let fd: Int32

    init?(from local: String, to port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, local, &address.sin_addr)
        var server = sockaddr_in()
        server.sin_family = sa_family_t(AF_INET)
        server.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &server.sin_addr)
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
        let connected = withUnsafePointer(to: &server) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) }
        }
        guard bound == 0, connected == 0 else {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    /// Writes what it can; false once the server has closed the connection.
    @discardableResult
    func write(_ text: String) -> Bool {
        Array(text.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) } > 0
    }

    /// True once the server has closed (end of stream or reset).
    var isClosedByServer: Bool {
        var byte: UInt8 = 0
        let received = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        if received == 0 { return true }
        if received < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        return false  // the server sent something; still open
    }
}

/// Connection limits against a real daemon: slow-loris connections from one
/// address are bounded and cut at the request deadline, while a client from
/// another address is served as usual.
@Suite(.serialized) struct ConnectionLimitTests {
    @Test func slowLorisFromOneAddressNeitherStarvesOthersNorOutlivesTheTimeout() async throws {
        // Long enough that opening 500 connections fits well inside it on a loaded 2-core machine
        // (it took up to 4.8 s there while the rest of the suite ran).
        let timeout = 7
        let perAddress = 64
        try await withGatehouse({
            $0.connectionTimeout = timeout
            $0.maxConnectionsPerIP = perAddress
        }) { gatehouse in
            let port = gatehouse.port
            let started = Date()
            // 500 connections from 127.0.0.2, each starting a request it never finishes.
            var slow: [RawSocket] = []
            defer { for socket in slow { close(socket.fd) } }
            for _ in 0..<500 {
                guard let socket = RawSocket(from: "127.0.0.2", to: port) else { continue }
                socket.write("POST /login HTTP/1.1\r\nHost: gatehouse\r\n")
                slow.append(socket)
            }
            #expect(slow.count == 500)
            // Let the server accept (or refuse) them all, then count.
            try await Task.sleep(for: .milliseconds(300))
            let openEarly = slow.count { !$0.isClosedByServer }
            let earlyAt = Date().timeIntervalSince(started)
            // The per-address limit held (server threads may each admit one over it).
            #expect(earlyAt < Double(timeout) - 0.5, "the machine took \(earlyAt) s to open 500 connections")
            #expect((perAddress - 4...perAddress + 2).contains(openEarly), "open after \(earlyAt) s: \(openEarly)")

            // Trickle a header line on every one, faster than any idle timeout,
            // while a normal client from 127.0.0.3 asks every 200 ms.
            var latencies: [Double] = []
            var openBeforeTimeout = -1
            var line = 0
            while Date().timeIntervalSince(started) < Double(timeout) + 1.5 {
                line += 1
                for socket in slow { socket.write("X-Trickle-\(line): x\r\n") }
                let asked = Date()
                let normal = try HTTPTestClient(port: port, bindAddress: "127.0.0.3", timeout: 5)
                let response = try normal.send("GET", "/healthz")
                latencies.append(Date().timeIntervalSince(asked))
                #expect(response.status == 200)
                normal.close()
                let elapsed = Date().timeIntervalSince(started)
                // Sampled shortly before the deadline, if the loop gets there in time.
                if openBeforeTimeout < 0, elapsed >= Double(timeout) - 0.8, elapsed < Double(timeout) - 0.15 {
                    openBeforeTimeout = slow.count { !$0.isClosedByServer }
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            // The admitted ones were not cut before the deadline...
            if openBeforeTimeout >= 0 {
                #expect(openBeforeTimeout == openEarly, "open just before the timeout: \(openBeforeTimeout)")
            }
            // ...and every one is gone after it, though each kept sending.
            // (Still trickling, so libmicrohttpd's idle timeout is no help.)
            let allCut = await waitUntil(timeout: 3, interval: .milliseconds(200)) {
                line += 1
                for socket in slow { socket.write("X-Trickle-\(line): x\r\n") }
                return slow.allSatisfy { $0.isClosedByServer }
            }
            #expect(allCut, "still open: \(slow.count { !$0.isClosedByServer })")
            #expect(latencies.count >= 5)
            #expect(latencies.allSatisfy { $0 < 1 }, "slowest normal request: \(latencies.max() ?? 0) s")
            #expect(
                gatehouse.logs.lines.contains {
                    $0.contains("closed connections that sent no complete request in time")
                        && $0.contains("addresses=127.0.0.2")
                })
            #expect(gatehouse.logs.lines.contains { $0.contains("refused connections over the per-address limit") })
        }
    }

    @Test func aBodyTrickledPastTheDeadlineIsCut() async throws {
        try await withGatehouse({ $0.connectionTimeout = 1 }) { gatehouse in
            let socket = try #require(RawSocket(from: "127.0.0.4", to: gatehouse.port))
            defer { close(socket.fd) }
            let started = Date()
            socket.write("POST /login HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            while !socket.isClosedByServer, Date().timeIntervalSince(started) < 5 {
                socket.write("{")
                try await Task.sleep(for: .milliseconds(100))
            }
            let elapsed = Date().timeIntervalSince(started)
            #expect(socket.isClosedByServer)
            #expect(elapsed >= 0.9 && elapsed < 2.5, "cut after \(elapsed) s")
        }
    }

    @Test func aKeepAliveConnectionGetsAFreshDeadlineAfterEachResponse() async throws {
        try await withGatehouse({ $0.connectionTimeout = 1 }) { gatehouse in
            let client = try HTTPTestClient(port: gatehouse.port, bindAddress: "127.0.0.5")
            // Six requests 0.4 s apart on one connection: 2.4 s in all, more
            // than the timeout, but each request arrives well within it.
            for _ in 0..<6 {
                #expect(try client.send("GET", "/healthz").status == 200)
                try await Task.sleep(for: .milliseconds(400))
            }
            #expect(client.isClosedByPeer(within: 2.5))
        }
    }

    @Test func trustedProxiesAreExemptFromThePerAddressLimit() async throws {
        try await withGatehouse({
            $0.maxConnectionsPerIP = 4
            $0.trustedProxies = TrustedProxies(parsing: "127.0.0.8")!
        }) { gatehouse in
            var proxied: [HTTPTestClient] = []
            for _ in 0..<12 { proxied.append(try HTTPTestClient(port: gatehouse.port, bindAddress: "127.0.0.8")) }
            for client in proxied { #expect(try client.send("GET", "/healthz").status == 200) }
            var direct: [HTTPTestClient] = []
            var refused = 0
            for _ in 0..<12 {
                let client = try HTTPTestClient(port: gatehouse.port, bindAddress: "127.0.0.6", timeout: 2)
                if (try? client.send("GET", "/healthz"))?.status == 200 { direct.append(client) } else { refused += 1 }
            }
            #expect(direct.count <= 6)
            #expect(refused >= 6)
        }
    }
}
