import MicroHTTP
import Testing

/// Addresses, CIDR blocks and the X-Forwarded-For walk, without a socket.
@Suite struct ClientAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1", true),
        ("0.0.0.0", "0.0.0.0", true),
        ("2001:db8::1", "2001:db8::1", false),
        ("[2001:db8::1]", "2001:db8::1", false),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", false),
        ("::1", "::1", false),
    ])
    func addressesParseAndPrint(_ row: (String, String, Bool)) throws {
        let address = try #require(IPAddress(row.0))
        #expect(address.description == row.1)
        #expect(address.isIPv4 == row.2)
    }

    @Test(arguments: ["", "localhost", "192.0.2", "192.0.2.256", " 192.0.2.1", "192.0.2.1:80", "fe80::1%eth0", "1::2::3"])
    func notAddresses(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func ipv4AndItsMappedIPv6FormAreOneAddress() throws {
        #expect(IPAddress("192.0.2.1") == IPAddress("::ffff:192.0.2.1"))
    }

    @Test func ipv6ClientsAreCountedByTheirSlash64() throws {
        let a = try #require(IPAddress("2001:db8:1:2:aaaa::1"))
        let b = try #require(IPAddress("2001:db8:1:2:bbbb::2"))
        let c = try #require(IPAddress("2001:db8:1:3::1"))
        #expect(a.clientKey == b.clientKey)
        #expect(a.clientKey != c.clientKey)
        let v4 = try #require(IPAddress("192.0.2.1"))
        #expect(v4.clientKey == v4)
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("192.0.2.7", "192.0.2.7", true),
        ("192.0.2.7", "192.0.2.8", false),
        ("192.0.2.0/24", "::ffff:192.0.2.9", true),
        ("0.0.0.0/0", "203.0.113.5", true),
        ("0.0.0.0/0", "2001:db8::1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("::/0", "2001:db8::1", true),
        ("10.1.2.3/8", "10.9.9.9", true),
    ])
    func networksContain(_ row: (String, String, Bool)) throws {
        let network = try #require(IPNetwork(row.0))
        #expect(network.contains(try #require(IPAddress(row.1))) == row.2)
    }

    @Test(arguments: ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "2001:db8::/129", "10.0.0.0/8/8", "proxy", "10.0.0.0/ 8"])
    func notNetworks(_ text: String) {
        #expect(IPNetwork(text) == nil)
    }

    @Test func proxyListsParse() throws {
        let proxies = try #require(TrustedProxies(parsing: "10.0.0.0/8, 192.0.2.1 fd00::/8"))
        #expect(proxies.networks.map(\.description) == ["10.0.0.0/8", "192.0.2.1/32", "fd00::/8"])
        #expect(TrustedProxies(parsing: "")?.isEmpty == true)
        #expect(TrustedProxies(parsing: "10.0.0.0/8,nonsense") == nil)
    }

    /// (trusted, peer, X-Forwarded-For fields, expected client)
    @Test(arguments: [
        // Nobody trusted: the header is ignored, whatever it says.
        ("", "203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        // An untrusted peer cannot name another client.
        ("10.0.0.0/8", "203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        // A trusted proxy: the entry it appended is the client.
        ("10.0.0.0/8", "10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        // The client prepended a fake entry: the right-most untrusted one wins.
        ("10.0.0.0/8", "10.0.0.2", ["1.1.1.1, 198.51.100.1"], "198.51.100.1"),
        // Two trusted hops.
        ("10.0.0.0/8", "10.0.0.2", ["1.1.1.1, 198.51.100.1, 10.0.0.7"], "198.51.100.1"),
        // Several header fields are one list, in order.
        ("10.0.0.0/8", "10.0.0.2", ["1.1.1.1", "198.51.100.1, 10.0.0.7"], "198.51.100.1"),
        // Ports, as some proxies write them.
        ("10.0.0.0/8", "10.0.0.2", ["198.51.100.1:4711"], "198.51.100.1"),
        ("10.0.0.0/8", "10.0.0.2", ["[2001:db8::5]:4711"], "2001:db8::5"),
        // Every entry trusted: the left-most.
        ("10.0.0.0/8", "10.0.0.2", ["10.0.0.9, 10.0.0.8"], "10.0.0.9"),
        // Garbage where the proxy's entry should be: the proxy is the client.
        ("10.0.0.0/8", "10.0.0.2", ["198.51.100.1, unknown"], "10.0.0.2"),
        ("10.0.0.0/8", "10.0.0.2", ["198.51.100.1, 10.0.0.7, <script>"], "10.0.0.2"),
        // Garbage left of the client's entry is never read.
        ("10.0.0.0/8", "10.0.0.2", ["nonsense, 198.51.100.1"], "198.51.100.1"),
        // No header from a trusted proxy: the proxy.
        ("10.0.0.0/8", "10.0.0.2", [], "10.0.0.2"),
    ])
    func forwardedForIsBelievedOnlyFromTrustedProxies(_ row: (String, String, [String], String)) throws {
        let proxies = try #require(TrustedProxies(parsing: row.0))
        let peer = try #require(IPAddress(row.1))
        #expect(proxies.clientAddress(peer: peer, forwardedFor: row.2).description == row.3)
    }

    @Test func requestsAskTheirPeerAndHeaders() throws {
        let proxies = try #require(TrustedProxies(parsing: "127.0.0.1"))
        var request = Request(
            method: .get, path: "/", headers: ["X-Forwarded-For": "198.51.100.1"], remoteAddress: "127.0.0.1")
        #expect(proxies.clientAddress(of: request)?.description == "198.51.100.1")
        request.remoteAddress = "127.0.0.2"
        #expect(proxies.clientAddress(of: request)?.description == "127.0.0.2")
        request.remoteAddress = nil
        #expect(proxies.clientAddress(of: request) == nil)
    }
}
