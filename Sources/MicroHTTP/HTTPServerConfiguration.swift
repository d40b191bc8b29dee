import Foundation

/// How the HTTP server listens and what it allows one client to use.
public struct HTTPServerConfiguration: Sendable, Equatable {
    /// An IPv4 or IPv6 address literal to listen on (`localhost` means 127.0.0.1).
    public var host: String = "127.0.0.1"
    /// The TCP port; 0 picks a free one (read it back from `HTTPServer.port`).
    public var port: UInt16 = 8080
    /// libmicrohttpd's thread-pool size: each thread runs its own epoll loop.
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// The largest request body accepted; larger ones get 413.
    public var maxBodyBytes: Int = 64 * 1024
    /// Seconds a connection may sit idle, and seconds it has, from opening or
    /// from the end of its previous response, to deliver a complete request
    /// (headers and body). Trickling bytes does not extend it.
    public var connectionTimeout: Int = 30
    /// Most connections open at once, from everyone.
    public var connectionLimit: Int = 4096
    /// Most connections open at once from one IP address (IPv6: one /64);
    /// 0 means no limit. Trusted proxies are exempt.
    public var perIPConnectionLimit: Int = 0
    /// Reverse proxies whose `X-Forwarded-For` names the client; exempt from
    /// the per-address connection limit.
    public var trustedProxies = TrustedProxies()
    /// Memory libmicrohttpd may use per connection for headers and buffers, in bytes.
    public var connectionMemoryLimit: Int = 32 * 1024
    /// The listen(2) backlog.
    public var listenBacklog: Int = 511
    /// Seconds a graceful shutdown waits for requests in flight.
    public var shutdownGracePeriod: Double = 10

    public init() {}
}
