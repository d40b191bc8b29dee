/// An HTTP request as a value: what a handler sees. Built by the server from
/// libmicrohttpd's view of the connection, or directly by tests.
public struct Request: Sendable {
    public var method: HTTPMethod
    /// The path without the query string, percent-decoded once by libmicrohttpd
    /// (`%00` is left encoded, so a NUL can never cut a path short).
    public var path: String
    /// Query arguments in order (`?all=true` gives `[("all", "true")]`).
    public var query: [(name: String, value: String)]
    public var headers: HTTPHeaders
    /// The request body, at most the server's body limit.
    public var body: [UInt8]
    /// The values of a route's `{name}` segments (`/admin/users/{id}` matched
    /// by `/admin/users/42` gives `["id": "42"]`); empty for exact routes.
    public var pathParameters: [String: String] = [:]
    /// The peer's address, kept raw: most requests never ask for it as text.
    var peer: PeerAddress

    /// The socket peer's IP address, when known. Behind a reverse proxy this is
    /// the proxy: `TrustedProxies.clientAddress(of:)` finds the client.
    public var peerAddress: IPAddress? { peer.address }

    /// The peer's IP address as text (`127.0.0.1`, `::1`), when known.
    public var remoteAddress: String? {
        get { peer.text }
        set { peer = newValue.map(PeerAddress.text) ?? .unknown }
    }

    public init(
        method: HTTPMethod,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: HTTPHeaders = [:],
        body: [UInt8] = [],
        remoteAddress: String? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.peer = remoteAddress.map(PeerAddress.text) ?? .unknown
    }

    /// The first value of a header field, any case.
    public func header(_ name: String) -> String? { headers[name] }

    /// The value of a `{name}` segment of the route that matched.
    public func pathParameter(_ name: String) -> String? { pathParameters[name] }

    /// The first value of a query argument.
    public func queryValue(_ name: String) -> String? {
        for item in query where item.name == name { return item.value }
        return nil
    }

    /// The media type of the body without parameters, lowercased
    /// (`application/json` for `Application/JSON; charset=utf-8`).
    public var mediaType: String? {
        guard let value = headers["Content-Type"] else { return nil }
        let type = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return type.trimmingSpaces().lowercased()
    }
}

/// Where a request came from: as the socket gave it, or as text.
enum PeerAddress: Sendable {
    case unknown
    case socket(SocketAddress)
    case text(String)

    var text: String? {
        switch self {
        case .unknown: nil
        case .socket(let address): address.text
        case .text(let text): text
        }
    }

    var address: IPAddress? {
        switch self {
        case .unknown: nil
        case .socket(let address): address.ipAddress
        case .text(let text): IPAddress(text)
        }
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs (HTTP's OWS).
    func trimmingSpaces() -> Substring {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}
