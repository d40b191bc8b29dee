#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address as one 128-bit value: IPv4 is held as the
/// IPv4-mapped IPv6 address `::ffff:a.b.c.d`, so one type, one comparison and
/// one network mask serve both families.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The first and last 64 bits, in network order read as big-endian numbers.
    public let high: UInt64
    public let low: UInt64

    private static let mappedPrefix: UInt64 = 0x0000_FFFF_0000_0000

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses `192.0.2.1`, `2001:db8::1` or `[2001:db8::1]`; nil for anything else
    /// (host names, ports, zone indexes, surrounding spaces).
    public init?(_ text: some StringProtocol) {
        var v4 = in_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            self.init(ipv4NetworkOrder: v4.s_addr)
            return
        }
        var bare = Substring(text)
        if bare.hasPrefix("["), bare.hasSuffix("]") { bare = bare.dropFirst().dropLast() }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, String(bare), &v6) == 1 else { return nil }
        self.init(ipv6: v6)
    }

    /// The address of an `AF_INET` or `AF_INET6` socket address; nil for other families.
    init?(_ address: UnsafePointer<sockaddr>) {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            let raw = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            self.init(ipv4NetworkOrder: raw)
        case AF_INET6:
            let raw = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            self.init(ipv6: raw)
        default:
            return nil
        }
    }

    private init(ipv4NetworkOrder raw: in_addr_t) {
        self.init(high: 0, low: Self.mappedPrefix | UInt64(UInt32(bigEndian: raw)))
    }

    private init(ipv6 raw: in6_addr) {
        var bytes = raw
        let (high, low) = withUnsafeBytes(of: &bytes) { buffer in
            (
                buffer.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                buffer.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            )
        }
        self.init(high: UInt64(bigEndian: high), low: UInt64(bigEndian: low))
    }

    /// True for an IPv4 address (held IPv4-mapped).
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// The address with every bit after the first `prefixLength` (of 128) cleared.
    public func masked(toPrefixLength prefixLength: Int) -> IPAddress {
        let length = max(0, min(128, prefixLength))
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? ~0 : ~(~UInt64(0) >> UInt64(bits)) }
        return IPAddress(high: high & mask(length), low: low & mask(length - 64))
    }

    /// What per-client limits count by: an IPv4 address as it is, an IPv6
    /// address by its /64, since one subscriber is routinely given a whole /64
    /// and could otherwise take a fresh address for every request.
    public var clientKey: IPAddress { isIPv4 ? self : masked(toPrefixLength: 64) }

    /// `192.0.2.1` for IPv4, the RFC 5952 form (`2001:db8::1`) for IPv6.
    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let written: Bool
        if isIPv4 {
            var v4 = in_addr(s_addr: UInt32(truncatingIfNeeded: low).bigEndian)
            written = inet_ntop(AF_INET, &v4, &buffer, socklen_t(buffer.count)) != nil
        } else {
            var v6 = in6_addr()
            withUnsafeMutableBytes(of: &v6) { bytes in
                bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            written = inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil
        }
        guard written else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A block of addresses in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`);
/// a bare address is a block of one.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    /// Prefix length in the 128-bit space (an IPv4 /8 is 104 here).
    let prefixLength: Int

    /// Parses `addr/len` or a bare `addr`. The address is masked to its prefix.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let familyBits = address.isIPv4 ? 32 : 128
        var length = familyBits
        if parts.count == 2 {
            guard let given = Int(parts[1]), (0...familyBits).contains(given), parts[1].allSatisfy(\.isASCII) else {
                return nil
            }
            length = given
        }
        prefixLength = address.isIPv4 ? 96 + length : length
        self.address = address.masked(toPrefixLength: prefixLength)
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        candidate.masked(toPrefixLength: prefixLength) == address
    }

    public var description: String {
        "\(address)/\(address.isIPv4 ? prefixLength - 96 : prefixLength)"
    }
}
