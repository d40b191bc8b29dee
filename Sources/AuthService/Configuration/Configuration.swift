import Foundation
public import JOSE
public import MicroHTTP

/// Everything Gatehouse can be told, with the defaults that make it start
/// with no configuration at all. Built once (from `GATEHOUSE_*` variables and
/// `--flags`, see `Configuration.parse`), validated there, passed down.
public struct Configuration: Sendable, Equatable {
    /// Address to listen on (`0.0.0.0` in the container).
    public var host = "127.0.0.1"
    /// Port; 0 picks a free one and logs it.
    public var port: UInt16 = 8080
    /// Where the SQLite file and the generated secret live.
    public var dataDirectory = "./data"
    /// `sqlite://<path>`, or a PostgreSQL URL (`postgres://...`, `postgresql://...`); nil means
    /// `sqlite://<dataDirectory>/gatehouse.db`.
    public var databaseURL: String?
    /// The most connections to PostgreSQL an instance opens at once (unused with SQLite).
    public var databasePoolSize = 8
    /// Milliseconds between the revocation feed's reads of the store's revocation sequence (its
    /// safety net on PostgreSQL, where LISTEN/NOTIFY brings revocations at once).
    public var revocationPollMilliseconds = 250
    /// The algorithm access tokens are signed with: HS256, RS256, ES256 or EdDSA.
    public var signingAlgorithm: JWSAlgorithm = .hs256
    /// HS256 secret (at least 32 bytes); nil means generated on first start
    /// and kept in `<dataDirectory>/jwt-secret` (mode 0600), then managed
    /// with the other keys (`gatehouse keys`).
    public var jwtSecret: String?
    /// A PEM private key for an asymmetric `signingAlgorithm`; nil means
    /// generated on first start and kept in `<dataDirectory>/keys/` (0600).
    public var signingKeyFile: String?
    /// Seconds a rotated-in key is published before it signs.
    public var keyPublishDelay = 600
    /// Seconds between the service's own re-reads of the managed keys.
    public var keyReloadInterval = 30
    /// Verified asymmetric signatures remembered (0: none).
    public var signatureCacheSize = 10_000
    /// Access-token lifetime, seconds.
    public var accessTTL = 3600
    /// Refresh-token lifetime, seconds.
    public var refreshTTL = 2_592_000
    /// The `iss` claim, checked on verify.
    public var issuer = "gatehouse"
    /// The `aud` claim, set and checked when configured.
    public var audience: String?
    /// Clock skew allowed for `exp`, `nbf`, `iat`, seconds.
    public var leeway = 30
    /// Origins allowed to call from a browser.
    public var corsOrigins: CORSPolicy.AllowedOrigins = .any
    /// libmicrohttpd thread-pool size.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Largest request body accepted, bytes.
    public var maxBodyBytes = 64 * 1024
    /// Seconds a connection may idle, and seconds it has to deliver a whole
    /// request (from opening, or from the end of its previous response).
    public var connectionTimeout = 30
    /// Most connections open at once.
    public var maxConnections = 4096
    /// Most connections open at once from one address (IPv6: one /64); 0: no limit.
    public var maxConnectionsPerIP = 128
    /// Memory libmicrohttpd may use per connection (headers and buffers), bytes.
    public var connectionMemory = 32 * 1024
    /// The listen(2) backlog.
    public var listenBacklog = 511
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    public var trustedProxies = TrustedProxies()
    /// Attempts per minute on login, registration and refresh.
    public var rateLimits = RateLimits.Settings()
    /// Argon2id cost: memory (KiB), passes, lanes. Defaults: OWASP's minimum.
    public var argon2 = Argon2Parameters()
    /// Threads that run password hashing; default: the number of cores.
    public var hashWorkers = ProcessInfo.processInfo.activeProcessorCount
    /// Hashing jobs that may wait for a worker before logins get 503.
    public var hashQueueLimit = 256
    /// Roles every new account gets at registration (names as ``Roles`` accepts them).
    public var defaultRoles: [String] = []
    /// `debug`, `info`, `warning` or `error`.
    public var logLevel: Logger.Level = .info
    /// `text` or `json`.
    public var logFormat: Logger.Format = .text
    /// One `info` line per request (method, path, status, duration, client
    /// address, request id); off: only the service's own lines and security events.
    public var accessLog = true
    /// `GET /metrics`, with every request counted and timed by route; off:
    /// no such route and no per-request metrics (the service's own counters
    /// still count, for nobody).
    public var metrics = true

    public init() {}

    /// The SQLite file the store opens.
    public var databasePath: String {
        if let databaseURL, databaseURL.hasPrefix(Self.sqliteScheme) {
            return String(databaseURL.dropFirst(Self.sqliteScheme.count))
        }
        return (dataDirectory as NSString).appendingPathComponent("gatehouse.db")
    }

    static let sqliteScheme = "sqlite://"

    /// The PostgreSQL connection URL when `databaseURL` names PostgreSQL; nil means SQLite
    /// (`databasePath`). It may hold a password: never log it.
    public var postgresURL: String? {
        guard let databaseURL, Self.postgresSchemes.contains(where: { databaseURL.hasPrefix($0) }) else { return nil }
        return databaseURL
    }

    static let postgresSchemes = ["postgres://", "postgresql://"]

    /// The store, for messages: the SQLite file, or "PostgreSQL" and the host (never the password).
    public var storeDescription: String {
        guard let postgresURL else { return databasePath }
        // postgres://user:password@host:port/db?params: keep what follows the last '@' before the path.
        let rest = postgresURL.range(of: "://").map { String(postgresURL[$0.upperBound...]) } ?? ""
        let authority = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let host = authority.split(separator: "@").last.map(String.init) ?? ""
        return "PostgreSQL at \(host.isEmpty ? "the default host" : host)"
    }

    /// Whether the signing key comes from the configuration (and so is
    /// neither generated nor rotated by Gatehouse).
    public var hasConfiguredKey: Bool { jwtSecret != nil || signingKeyFile != nil }

    /// `max-age` of the JWK Set: half the publish delay, at most five
    /// minutes, so a verifier that caches it has learnt a rotated-in key
    /// before that key signs.
    public var jwksMaxAge: Int { min(300, keyPublishDelay / 2) }

    /// The HTTP server's part of the configuration.
    public var httpServer: HTTPServerConfiguration {
        var server = HTTPServerConfiguration()
        server.host = host
        server.port = port
        server.threads = threads
        server.maxBodyBytes = maxBodyBytes
        server.connectionTimeout = connectionTimeout
        server.connectionLimit = maxConnections
        server.perIPConnectionLimit = maxConnectionsPerIP
        server.connectionMemoryLimit = connectionMemory
        server.listenBacklog = listenBacklog
        server.trustedProxies = trustedProxies
        return server
    }
}

/// A configuration value that cannot be used, with a message that says which
/// and why.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
