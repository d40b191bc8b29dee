/// The reverse proxies whose `X-Forwarded-For` is believed, and the rule that
/// finds the real client behind them.
///
/// The rule is the one nginx's realip module applies with `real_ip_recursive
/// on`: start from the socket peer; while the address in hand is a trusted
/// proxy, step one entry left in `X-Forwarded-For`; the first address that is
/// not trusted is the client. Entries left of it were written by the client
/// itself and are never read. A peer that is not a trusted proxy is the client,
/// whatever its headers say.
public struct TrustedProxies: Sendable, Equatable {
    public let networks: [IPNetwork]

    public init(_ networks: [IPNetwork] = []) { self.networks = networks }

    /// Parses a comma- or space-separated list of CIDR blocks or addresses;
    /// nil if any entry is not one. An empty list trusts nobody.
    public init?(parsing text: String) {
        var networks: [IPNetwork] = []
        for entry in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let network = IPNetwork(entry) else { return nil }
            networks.append(network)
        }
        self.networks = networks
    }

    public var isEmpty: Bool { networks.isEmpty }

    public func isTrusted(_ address: IPAddress) -> Bool {
        networks.contains { $0.contains(address) }
    }

    /// The client's address: the socket peer, or, when the peer is a trusted
    /// proxy, the right-most untrusted address of `X-Forwarded-For` (every
    /// field of that name, joined in order). An entry that is not an address
    /// ends the walk at the proxy that wrote it: the client is then that proxy.
    public func clientAddress(peer: IPAddress, forwardedFor: [String]) -> IPAddress {
        guard isTrusted(peer), !forwardedFor.isEmpty else { return peer }
        var current = peer
        let entries = forwardedFor.flatMap { $0.split(separator: ",") }
        for entry in entries.reversed() {
            guard let address = Self.parseForwardedEntry(entry.trimmingSpaces()) else { return current }
            current = address
            if !isTrusted(address) { return address }
        }
        return current
    }

    /// The client address of a request as the server received it.
    public func clientAddress(of request: Request) -> IPAddress? {
        guard let peer = request.peerAddress else { return nil }
        guard isTrusted(peer) else { return peer }
        return clientAddress(peer: peer, forwardedFor: request.headers.values(for: "X-Forwarded-For"))
    }

    /// An `X-Forwarded-For` entry: an address, optionally with a port
    /// (`192.0.2.1:4711`, `[2001:db8::1]:4711`), as some proxies write it.
    static func parseForwardedEntry(_ entry: Substring) -> IPAddress? {
        if let address = IPAddress(entry) { return address }
        if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
            return IPAddress(entry[entry.index(after: entry.startIndex)..<close])
        }
        if let colon = entry.firstIndex(of: ":"), entry[entry.index(after: colon)...].allSatisfy(\.isNumber) {
            let host = entry[..<colon]
            return host.contains(":") ? nil : IPAddress(host)
        }
        return nil
    }
}
