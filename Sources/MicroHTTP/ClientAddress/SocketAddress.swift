#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address.
struct SocketAddress: @unchecked Sendable {
    // @unchecked: sockaddr_storage is plain bytes with no pointers.
    private var storage = sockaddr_storage()
    let isIPv6: Bool

    /// A copy of the address a connection reported, or nil for another family.
    init?(copying address: UnsafePointer<sockaddr>) {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            withUnsafeMutableBytes(of: &storage) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: MemoryLayout<sockaddr_in>.size))
            }
            isIPv6 = false
        case AF_INET6:
            withUnsafeMutableBytes(of: &storage) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: MemoryLayout<sockaddr_in6>.size))
            }
            isIPv6 = true
        default:
            return nil
        }
    }

    /// The address part as text (`127.0.0.1`, `::1`).
    var text: String? { ipAddress?.description }

    /// The address part as an `IPAddress`.
    var ipAddress: IPAddress? {
        var copy = storage
        return withUnsafePointer(to: &copy) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { IPAddress($0) }
        }
    }

    /// nil unless `host` is an IPv4 or IPv6 literal (`localhost` is taken as 127.0.0.1).
    init?(host: String, port: UInt16) {
        let literal = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, literal, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v4, as: sockaddr_in.self) }
            isIPv6 = false
            return
        }
        var v6 = sockaddr_in6()
        let bare = literal.hasPrefix("[") && literal.hasSuffix("]") ? String(literal.dropFirst().dropLast()) : literal
        if inet_pton(AF_INET6, bare, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v6, as: sockaddr_in6.self) }
            isIPv6 = true
            return
        }
        return nil
    }

    /// Calls `body` with a pointer to the address, valid only during the call.
    mutating func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>) -> Result) -> Result {
        withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1, body)
        }
    }
}
