import Foundation
public import JSON
import MicroHTTP
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why the test client could not complete an exchange.
public enum HTTPTestClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The host is not an IPv4 or IPv6 address literal.
    case invalidAddress(String)
    /// `connect(2)` failed with this errno (`ECONNREFUSED` once a server stopped listening).
    case connectFailed(errno: Int32)
    /// A socket call other than connect failed with this errno.
    case socketFailed(operation: String, errno: Int32)
    /// Nothing arrived within the client's timeout.
    case timedOut
    /// The peer closed the connection before a complete response arrived.
    case connectionClosed
    /// The bytes that arrived are not an HTTP/1.1 response.
    case malformedResponse(String)

    /// Whether this is a connection refused by the peer (nothing listening).
    public var isConnectionRefused: Bool { self == .connectFailed(errno: ECONNREFUSED) }

    public var description: String {
        switch self {
        case .invalidAddress(let host): "'\(host)' is not an IP address literal"
        case .connectFailed(let code): "connect failed: \(String(cString: strerror(code)))"
        case .socketFailed(let operation, let code): "\(operation) failed: \(String(cString: strerror(code)))"
        case .timedOut: "timed out waiting for the server"
        case .connectionClosed: "the server closed the connection before a complete response"
        case .malformedResponse(let reason): "malformed response: \(reason)"
        }
    }
}

/// An HTTP response as the test client read it off the wire.
public struct TestResponse: Sendable {
    /// The status code from the status line.
    public let status: Int
    /// Header fields in the order they arrived, names as the server spelled them.
    public let headers: [(String, String)]
    /// The body, de-chunked if it came chunked; empty for HEAD, 1xx, 204 and 304.
    public let body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of the header field `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// Every value of the header field `name`, in order.
    public func headerValues(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    /// The body decoded as UTF-8 (invalid bytes replaced).
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as JSON.
    public func json() throws -> JSONValue { try JSONValue.parse(body) }

    /// Whether the server announced it closes the connection after this response
    /// (`Connection: close`).
    public var closesConnection: Bool {
        headerValues("Connection").contains { value in
            value.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "close" }
        }
    }
}

/// A deliberately small HTTP/1.1 client over one blocking TCP socket, for live
/// tests: it sends exactly the bytes a test asks for, keeps the connection
/// alive across requests, and bounds every read and write by `timeout`
/// (`SO_RCVTIMEO`, `SO_SNDTIMEO`).
///
/// Calls block their thread. From async tests, wrap calls that wait on a
/// deferred handler in `blockingIO { }` so they do not hold a thread of the
/// cooperative pool the handler needs.
public final class HTTPTestClient: Sendable {
    private let connection: LockedValue<SocketConnection>
    private let endpoints: Endpoints
    private let hostHeader: String

    /// Connects to `host:port`.
    /// - Parameters:
    ///   - host: an IPv4 or IPv6 address literal.
    ///   - port: the server's port.
    ///   - bindAddress: a local address to connect from (`127.0.0.2`, say), to
    ///     look like another client to per-IP limits.
    ///   - timeout: seconds any one connect, read or write may wait.
    public init(host: String = "127.0.0.1", port: UInt16, bindAddress: String? = nil, timeout: Double = 10) throws {
        guard let peer = IPAddress(host, port: port) else { throw HTTPTestClientError.invalidAddress(host) }
        var local: IPAddress?
        if let bindAddress {
            guard let address = IPAddress(bindAddress, port: 0) else {
                throw HTTPTestClientError.invalidAddress(bindAddress)
            }
            local = address
        }
        endpoints = Endpoints(peer: peer, local: local, timeout: timeout)
        connection = LockedValue(SocketConnection(fd: try endpoints.connect()))
        hostHeader = peer.family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// A keep-alive connection idle at least this long that the server has
    /// closed is opened again before the next request, as browsers and HTTP
    /// libraries do: the service closes connections idle for its connection
    /// timeout (30 s by default), and a test starved of CPU on a loaded
    /// machine can sit that long between two requests. A connection closed
    /// sooner is not reopened: the request fails, as it should.
    public static let reopenAfterIdleSeconds: Double = 25

    deinit { close() }

    /// Sends one request and reads its response.
    ///
    /// Adds `Host`, and `Content-Length` when there is a body, unless `headers`
    /// already has them (or `Transfer-Encoding`). A HEAD response is read
    /// without a body. If the server closes while the request is still being
    /// written, the response it sent before closing is returned.
    public func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) throws -> TestResponse {
        func has(_ name: String) -> Bool { headers.contains { $0.0.lowercased() == name.lowercased() } }
        var head = "\(method) \(path) HTTP/1.1\r\n"
        if !has("Host") { head += "Host: \(hostHeader)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body, !has("Content-Length"), !has("Transfer-Encoding") { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        do {
            try sendRaw(Array(head.utf8) + (body ?? []))
        } catch let error as HTTPTestClientError {
            // A server may answer early (413 before the body is read) and close
            // while the body is still going out: read the answer it sent, as
            // browsers do, and report the write failure only if there is none.
            guard case .socketFailed(_, let code) = error, code == EPIPE || code == ECONNRESET,
                let response = try? readResponse(forHead: method == "HEAD")
            else { throw error }
            return response
        }
        return try readResponse(forHead: method == "HEAD")
    }

    /// Sends `json` serialized, with `Content-Type: application/json`.
    public func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], json: JSONValue
    ) throws -> TestResponse {
        var headers = headers
        if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            headers.append(("Content-Type", "application/json"))
        }
        return try send(method, path, headers: headers, body: json.serialized())
    }

    /// Writes `bytes` as they are: a malformed request, a chunked body, half a request.
    public func sendRaw(_ bytes: [UInt8]) throws {
        try connection.withLock { connection in
            guard connection.fd >= 0 else { throw HTTPTestClientError.connectionClosed }
            if connection.buffer.isEmpty, connection.idleSeconds >= Self.reopenAfterIdleSeconds,
                connection.isClosedByPeer()
            {
                Glibc.close(connection.fd)
                connection = SocketConnection(fd: try endpoints.connect())
            }
            var written = 0
            while written < bytes.count {
                let count = bytes.withUnsafeBytes { raw in
                    Glibc.send(connection.fd, raw.baseAddress! + written, raw.count - written, Int32(MSG_NOSIGNAL))
                }
                if count < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    if code == EAGAIN || code == EWOULDBLOCK { throw HTTPTestClientError.timedOut }
                    throw HTTPTestClientError.socketFailed(operation: "send", errno: code)
                }
                written += count
            }
            connection.lastActive = .now
        }
    }

    /// Reads the next response: status line, header fields, then a body
    /// delimited by `Content-Length`, by chunked coding, or by the connection
    /// closing. Interim 1xx responses (`100 Continue`) are skipped.
    /// - Parameter forHead: the response answers a HEAD request, so has no body.
    public func readResponse(forHead: Bool = false) throws -> TestResponse {
        try connection.withLock { connection in
            guard connection.fd >= 0 else { throw HTTPTestClientError.connectionClosed }
            while true {
                let response = try connection.readResponse(forHead: forHead)
                if (100..<200).contains(response.status), response.status != 101 { continue }
                return response
            }
        }
    }

    /// The client socket's own port: equal for two requests exactly when they
    /// went over one connection.
    public var localPort: UInt16 {
        connection.withLock { connection in
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let rc = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(connection.fd, $0, &length) }
            }
            guard rc == 0 else { return 0 }
            return IPAddress.port(of: storage)
        }
    }

    /// Whether the server closes (or resets) the connection within `seconds`,
    /// without the client sending anything. Returns false at once if the
    /// server sends bytes instead.
    public func isClosedByPeer(within seconds: Double) -> Bool {
        connection.withLock { connection in
            guard connection.fd >= 0 else { return true }
            let deadline = Date(timeIntervalSinceNow: seconds)
            while true {
                let milliseconds = max(0, Int((deadline.timeIntervalSinceNow * 1000).rounded(.up)))
                var descriptor = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, Int32(milliseconds))
                if ready < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                if ready == 0 { return false }
                var byte: UInt8 = 0
                let count = recv(connection.fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
                if count == 0 { return true }
                if count > 0 { return false }
                let code = errno
                if code == EINTR || code == EAGAIN || code == EWOULDBLOCK {
                    if deadline.timeIntervalSinceNow <= 0 { return false }
                    continue
                }
                return true  // ECONNRESET and friends: the peer is gone.
            }
        }
    }

    /// Closes the socket. Safe to call more than once.
    public func close() {
        connection.withLock { connection in
            if connection.fd >= 0 { Glibc.close(connection.fd) }
            connection.fd = -1
        }
    }
}

/// Sends one request on a new connection and closes it.
public func httpRequest(
    port: UInt16, _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil
) throws -> TestResponse {
    let client = try HTTPTestClient(port: port)
    defer { client.close() }
    return try client.send(method, path, headers: headers, body: body)
}

// MARK: - Reading responses

/// The socket and the bytes read from it that no response has consumed yet.
private struct SocketConnection {
    var fd: Int32
    var buffer: [UInt8] = []
    /// When bytes last went out or came in.
    var lastActive = ContinuousClock.now

    init(fd: Int32) { self.fd = fd }

    /// Seconds since bytes last went out or came in.
    var idleSeconds: Double {
        let idle = (ContinuousClock.now - lastActive).components
        return Double(idle.seconds) + Double(idle.attoseconds) / 1e18
    }

    /// Whether the peer has closed or reset the connection (checked without waiting).
    func isClosedByPeer() -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) == 1 else { return false }
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    /// Reads whatever arrives next into the buffer; false at end of stream.
    mutating func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
                lastActive = .now
                return true
            }
            if count == 0 { return false }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { throw HTTPTestClientError.timedOut }
            if code == ECONNRESET { throw HTTPTestClientError.connectionClosed }
            throw HTTPTestClientError.socketFailed(operation: "recv", errno: code)
        }
    }

    /// Consumes bytes up to and including the next CRLF, which is not returned.
    mutating func readLine() throws -> [UInt8] {
        var searchFrom = 0
        while true {
            if let end = Self.find([13, 10], in: buffer, from: searchFrom) {
                let line = Array(buffer[..<end])
                buffer.removeFirst(end + 2)
                return line
            }
            searchFrom = max(0, buffer.count - 1)
            guard try fill() else { throw HTTPTestClientError.connectionClosed }
        }
    }

    /// Consumes exactly `count` bytes.
    mutating func read(exactly count: Int) throws -> [UInt8] {
        while buffer.count < count {
            guard try fill() else { throw HTTPTestClientError.connectionClosed }
        }
        let bytes = Array(buffer[..<count])
        buffer.removeFirst(count)
        return bytes
    }

    /// Consumes everything up to the end of the stream.
    mutating func readToEnd() throws -> [UInt8] {
        while try fill() {}
        defer { buffer = [] }
        return buffer
    }

    mutating func readResponse(forHead: Bool) throws -> TestResponse {
        let statusLine = String(decoding: try readLine(), as: UTF8.self)
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HTTPTestClientError.malformedResponse("status line '\(statusLine)'")
        }
        var headers: [(String, String)] = []
        while true {
            let line = String(decoding: try readLine(), as: UTF8.self)
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else {
                throw HTTPTestClientError.malformedResponse("header line '\(line)'")
            }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            headers.append((name, value))
        }
        let response = { (body: [UInt8]) in TestResponse(status: status, headers: headers, body: body) }
        func value(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }

        if forHead || (100..<200).contains(status) || status == 204 || status == 304 { return response([]) }
        if let coding = value("transfer-encoding"), coding.lowercased().contains("chunked") {
            return response(try readChunkedBody())
        }
        if let length = value("content-length") {
            guard let count = Int(length), count >= 0 else {
                throw HTTPTestClientError.malformedResponse("Content-Length '\(length)'")
            }
            return response(try read(exactly: count))
        }
        return response(try readToEnd())
    }

    /// RFC 9112 section 7.1: hex size lines, data, CRLF; a zero size ends it,
    /// followed by optional trailer fields and an empty line.
    mutating func readChunkedBody() throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let line = String(decoding: try readLine(), as: UTF8.self)
            let sizeText = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw HTTPTestClientError.malformedResponse("chunk size line '\(line)'")
            }
            if size == 0 {
                while try !readLine().isEmpty {}
                return body
            }
            body += try read(exactly: size)
            guard try readLine().isEmpty else { throw HTTPTestClientError.malformedResponse("chunk not ended by CRLF") }
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        for index in start...(haystack.count - needle.count)
        where haystack[index] == needle[0] && Array(haystack[index..<(index + needle.count)]) == needle {
            return index
        }
        return nil
    }
}

// MARK: - Addresses

/// Where a client connects to and from, and its socket timeouts.
private struct Endpoints: Sendable {
    let peer: IPAddress
    let local: IPAddress?
    let timeout: Double

    /// Opens a TCP connection: the socket, with read and write timeouts and
    /// `TCP_NODELAY`, bound to `local` when given.
    func connect() throws -> Int32 {
        var peer = peer
        let fd = socket(peer.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPTestClientError.socketFailed(operation: "socket", errno: errno) }
        do {
            var interval = timeval(
                tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
            for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
                guard setsockopt(fd, SOL_SOCKET, option, &interval, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                    throw HTTPTestClientError.socketFailed(operation: "setsockopt", errno: errno)
                }
            }
            var noDelay: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
            if var local {
                guard local.withSockaddr({ bind(fd, $0, $1) }) == 0 else {
                    throw HTTPTestClientError.socketFailed(operation: "bind", errno: errno)
                }
            }
            while peer.withSockaddr({ Glibc.connect(fd, $0, $1) }) != 0 {
                let code = errno
                if code == EINTR { continue }
                throw code == EINPROGRESS || code == EAGAIN
                    ? HTTPTestClientError.timedOut : HTTPTestClientError.connectFailed(errno: code)
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }
}

/// An IPv4 or IPv6 socket address from a literal.
private struct IPAddress: Sendable {
    var storage = sockaddr_storage()
    let family: Int32

    init?(_ host: String, port: UInt16) {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, bare, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v4, as: sockaddr_in.self) }
            family = AF_INET
            return
        }
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET6, bare, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v6, as: sockaddr_in6.self) }
            family = AF_INET6
            return
        }
        return nil
    }

    var length: socklen_t {
        socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    mutating func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        let length = length
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// The port of an IPv4 or IPv6 address, in host byte order.
    static func port(of storage: sockaddr_storage) -> UInt16 {
        let family = Int32(storage.ss_family)
        return withUnsafeBytes(of: storage) { raw in
            switch family {
            case AF_INET: UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
            case AF_INET6: UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
            default: 0
            }
        }
    }
}
