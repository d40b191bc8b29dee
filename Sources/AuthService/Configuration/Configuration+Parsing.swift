import Foundation
import JOSE
import MicroHTTP

extension Configuration {
    /// One setting: its environment variable, its flag, and how to apply a value.
    struct Option: Sendable {
        /// The part after `GATEHOUSE_` (`ACCESS_TTL`); the flag is derived (`--access-ttl`).
        let name: String
        let help: String
        let defaultDescription: String
        /// Applies a value; throws `ConfigurationError` only.
        let apply: @Sendable (inout Configuration, String) throws -> Void

        var environmentVariable: String { "GATEHOUSE_" + name }
        var flag: String { "--" + name.lowercased().replacingOccurrences(of: "_", with: "-") }
    }

    /// Every setting, in the order `--help` lists them.
    static let options: [Option] = [
        Option(name: "HOST", help: "address to listen on", defaultDescription: "127.0.0.1") { config, value in
            guard !value.isEmpty else { throw ConfigurationError("GATEHOUSE_HOST must not be empty") }
            config.host = value
        },
        Option(name: "PORT", help: "TCP port; 0 picks a free one and logs it", defaultDescription: "8080") {
            config, value in
            config.port = UInt16(try integer(value, "PORT", in: 0...65535))
        },
        Option(
            name: "DATA_DIR", help: "where the SQLite file and generated keys live (PostgreSQL: keys in the database)",
            defaultDescription: "./data")
        { config, value in
            guard !value.isEmpty else { throw ConfigurationError("GATEHOUSE_DATA_DIR must not be empty") }
            config.dataDirectory = value
        },
        Option(
            name: "DATABASE_URL",
            help: "sqlite://<path>, or postgres://user:password@host:port/database (also postgresql://, with "
                + "libpq's parameters) to share users, sessions and revocations between instances",
            defaultDescription: "sqlite://<data dir>/gatehouse.db"
        ) { config, value in
            if value.hasPrefix(sqliteScheme), value.count > sqliteScheme.count {
                config.databaseURL = value
                return
            }
            if postgresSchemes.contains(where: { value.hasPrefix($0) }) {
                // libpq's own parser, so a URL it would refuse stops start-up here, with its reason.
                if let problem = PostgresConnection.problem(withURL: value) {
                    throw ConfigurationError("GATEHOUSE_DATABASE_URL is not a PostgreSQL URL libpq accepts: \(problem)")
                }
                config.databaseURL = value
                return
            }
            // Only the scheme is repeated: the rest of a URL may hold a password.
            let shown = value.contains("://") ? "a URL with scheme '\(value.prefix { $0 != ":" })'" : "'\(value)'"
            throw ConfigurationError(
                "GATEHOUSE_DATABASE_URL must be sqlite://<path>, postgres://... or postgresql://... (got \(shown))")
        },
        Option(
            name: "DB_POOL_SIZE", help: "connections to PostgreSQL each instance opens at most (unused with SQLite)",
            defaultDescription: "8"
        ) { config, value in
            config.databasePoolSize = try integer(value, "DB_POOL_SIZE", in: 1...1000)
        },
        Option(
            name: "REVOCATION_POLL_MS",
            help: "milliseconds between reads of sessions ended elsewhere (PostgreSQL also notifies at once)",
            defaultDescription: "250"
        ) { config, value in
            config.revocationPollMilliseconds = try integer(value, "REVOCATION_POLL_MS", in: 10...60_000)
        },
        Option(
            name: "SIGNING_ALG", help: "access-token signature: HS256, RS256, ES256 or EdDSA", defaultDescription: "HS256"
        ) { config, value in
            let accepted: [JWSAlgorithm] = [.hs256, .rs256, .es256, .edDSA]
            guard let algorithm = accepted.first(where: { $0.rawValue.lowercased() == value.lowercased() }) else {
                throw ConfigurationError("GATEHOUSE_SIGNING_ALG must be HS256, RS256, ES256 or EdDSA (got '\(value)')")
            }
            config.signingAlgorithm = algorithm
        },
        Option(
            name: "SIGNING_KEY_FILE", help: "PEM private key for RS256, ES256 or EdDSA (then never rotated by gatehouse)",
            defaultDescription: "generated, kept in <data dir>/keys"
        ) { config, value in
            config.signingKeyFile = value.isEmpty ? nil : value
        },
        Option(
            name: "KEY_PUBLISH_DELAY", help: "seconds a key made by 'gatehouse keys rotate' is published before it signs",
            defaultDescription: "600"
        ) { config, value in
            config.keyPublishDelay = try integer(value, "KEY_PUBLISH_DELAY", in: 0...86_400 * 7)
        },
        Option(
            name: "KEY_RELOAD_INTERVAL", help: "seconds between the service's re-reads of its keys (SIGHUP: at once)",
            defaultDescription: "30"
        ) { config, value in
            config.keyReloadInterval = try integer(value, "KEY_RELOAD_INTERVAL", in: 1...60)
        },
        Option(
            name: "SIGNATURE_CACHE_SIZE",
            help: "verified RS256/ES256/EdDSA token signatures remembered, so a proxy asking again is fast; 0: off",
            defaultDescription: "10000"
        ) { config, value in
            config.signatureCacheSize = try integer(value, "SIGNATURE_CACHE_SIZE", in: 0...1_000_000)
        },
        Option(
            name: "JWT_SECRET", help: "HS256 secret, at least 32 bytes",
            defaultDescription: "generated, kept in <data dir>/jwt-secret"
        ) { config, value in
            guard value.utf8.count >= 32 else {
                throw ConfigurationError(
                    "GATEHOUSE_JWT_SECRET is \(value.utf8.count) bytes; it must be at least 32 bytes (256 bits). "
                        + "Unset it to have one generated.")
            }
            config.jwtSecret = value
        },
        Option(name: "ACCESS_TTL", help: "access-token lifetime, seconds", defaultDescription: "3600") {
            config, value in
            config.accessTTL = try integer(value, "ACCESS_TTL", in: 1...86_400 * 7)
        },
        Option(name: "REFRESH_TTL", help: "refresh-token lifetime, seconds", defaultDescription: "2592000") {
            config, value in
            config.refreshTTL = try integer(value, "REFRESH_TTL", in: 60...86_400 * 365)
        },
        Option(name: "ISSUER", help: "the iss claim, checked on verify", defaultDescription: "gatehouse") {
            config, value in
            guard !value.isEmpty else { throw ConfigurationError("GATEHOUSE_ISSUER must not be empty") }
            config.issuer = value
        },
        Option(name: "AUDIENCE", help: "the aud claim, set and checked when given", defaultDescription: "(none)") {
            config, value in
            config.audience = value.isEmpty ? nil : value
        },
        Option(name: "LEEWAY", help: "clock skew allowed on exp/nbf/iat, seconds", defaultDescription: "30") {
            config, value in
            config.leeway = try integer(value, "LEEWAY", in: 0...300)
        },
        Option(
            name: "CORS_ORIGINS", help: "comma-separated allowed origins, or *", defaultDescription: "*"
        ) { config, value in
            guard let origins = CORSPolicy.parseOrigins(value) else {
                throw ConfigurationError(
                    "GATEHOUSE_CORS_ORIGINS must be * or a comma-separated list of http(s)://host[:port] origins "
                        + "(got '\(value)')")
            }
            config.corsOrigins = origins
        },
        Option(name: "THREADS", help: "HTTP thread-pool size", defaultDescription: "number of cores") {
            config, value in
            config.threads = try integer(value, "THREADS", in: 1...256)
        },
        Option(name: "MAX_BODY_BYTES", help: "largest request body accepted", defaultDescription: "65536") {
            config, value in
            config.maxBodyBytes = try integer(value, "MAX_BODY_BYTES", in: 1024...16 * 1024 * 1024)
        },
        Option(
            name: "CONNECTION_TIMEOUT",
            help: "seconds a connection may idle, and has to send a whole request (slow clients are cut)",
            defaultDescription: "30"
        ) { config, value in
            config.connectionTimeout = try integer(value, "CONNECTION_TIMEOUT", in: 1...3600)
        },
        Option(name: "MAX_CONNECTIONS", help: "most connections open at once", defaultDescription: "4096") {
            config, value in
            config.maxConnections = try integer(value, "MAX_CONNECTIONS", in: 1...1_000_000)
        },
        Option(
            name: "MAX_CONNECTIONS_PER_IP",
            help: "most connections from one address (IPv6: one /64); trusted proxies are exempt; 0: no limit",
            defaultDescription: "128"
        ) { config, value in
            config.maxConnectionsPerIP = try integer(value, "MAX_CONNECTIONS_PER_IP", in: 0...1_000_000)
        },
        Option(
            name: "CONNECTION_MEMORY", help: "bytes per connection for request headers and buffers",
            defaultDescription: "32768"
        ) { config, value in
            config.connectionMemory = try integer(value, "CONNECTION_MEMORY", in: 8192...16 * 1024 * 1024)
        },
        Option(name: "LISTEN_BACKLOG", help: "the listen(2) backlog", defaultDescription: "511") { config, value in
            config.listenBacklog = try integer(value, "LISTEN_BACKLOG", in: 1...65535)
        },
        Option(
            name: "TRUSTED_PROXIES",
            help: "comma-separated CIDR blocks of reverse proxies whose X-Forwarded-For names the client",
            defaultDescription: "(none)"
        ) { config, value in
            guard let proxies = TrustedProxies(parsing: value) else {
                throw ConfigurationError(
                    "GATEHOUSE_TRUSTED_PROXIES must be a comma-separated list of addresses or CIDR blocks "
                        + "such as 10.0.0.0/8,fd00::/8 (got '\(value)')")
            }
            config.trustedProxies = proxies
        },
        Option(
            name: "RATE_LOGIN_PER_IP", help: "login attempts per minute per client address; 0: off",
            defaultDescription: "30"
        ) { config, value in
            config.rateLimits.loginPerIP = try integer(value, "RATE_LOGIN_PER_IP", in: 0...1_000_000)
        },
        Option(
            name: "RATE_LOGIN_PER_USERNAME", help: "failed login attempts per minute per username; 0: off",
            defaultDescription: "10"
        ) { config, value in
            config.rateLimits.loginPerUsername = try integer(value, "RATE_LOGIN_PER_USERNAME", in: 0...1_000_000)
        },
        Option(
            name: "RATE_REGISTER_PER_IP", help: "registrations per minute per client address; 0: off",
            defaultDescription: "10"
        ) { config, value in
            config.rateLimits.registerPerIP = try integer(value, "RATE_REGISTER_PER_IP", in: 0...1_000_000)
        },
        Option(
            name: "RATE_REFRESH_PER_IP", help: "refreshes per minute per client address; 0: off",
            defaultDescription: "60"
        ) { config, value in
            config.rateLimits.refreshPerIP = try integer(value, "RATE_REFRESH_PER_IP", in: 0...1_000_000)
        },
        Option(
            name: "ARGON2_MEMORY_KIB", help: "Argon2id memory cost, KiB (OWASP minimum 19456)",
            defaultDescription: "19456"
        ) { config, value in
            config.argon2.memoryKiB = UInt32(try integer(value, "ARGON2_MEMORY_KIB", in: 64...4 * 1024 * 1024))
        },
        Option(name: "ARGON2_ITERATIONS", help: "Argon2id passes", defaultDescription: "2") { config, value in
            config.argon2.iterations = UInt32(try integer(value, "ARGON2_ITERATIONS", in: 1...64))
        },
        Option(name: "ARGON2_PARALLELISM", help: "Argon2id lanes", defaultDescription: "1") { config, value in
            config.argon2.parallelism = UInt32(try integer(value, "ARGON2_PARALLELISM", in: 1...64))
        },
        Option(name: "HASH_WORKERS", help: "password-hashing threads", defaultDescription: "number of cores") {
            config, value in
            config.hashWorkers = try integer(value, "HASH_WORKERS", in: 1...256)
        },
        Option(
            name: "HASH_QUEUE", help: "hashing jobs that may wait before logins get 503", defaultDescription: "256"
        ) { config, value in
            config.hashQueueLimit = try integer(value, "HASH_QUEUE", in: 1...100_000)
        },
        Option(
            name: "DEFAULT_ROLES", help: "comma-separated roles every new account gets at registration",
            defaultDescription: "(none)"
        ) { config, value in
            let roles = Roles.parseList(value)
            guard let invalid = roles.first(where: { !Roles.isValid($0) }) else {
                guard Set(roles).count <= Roles.maxCount else {
                    throw ConfigurationError("GATEHOUSE_DEFAULT_ROLES names more than \(Roles.maxCount) roles")
                }
                config.defaultRoles = Array(Set(roles)).sorted()
                return
            }
            throw ConfigurationError(
                "GATEHOUSE_DEFAULT_ROLES: '\(invalid)' is not a role name; use 1 to 64 of a-z, 0-9, '_', '.', ':' "
                    + "and '-', comma-separated")
        },
        Option(name: "LOG_LEVEL", help: "debug, info, warning or error", defaultDescription: "info") {
            config, value in
            guard let level = Logger.Level.allCases.first(where: { $0.name == value.lowercased() }) else {
                throw ConfigurationError("GATEHOUSE_LOG_LEVEL must be debug, info, warning or error (got '\(value)')")
            }
            config.logLevel = level
        },
        Option(name: "LOG_FORMAT", help: "text or json", defaultDescription: "text") { config, value in
            guard let format = Logger.Format(rawValue: value.lowercased()) else {
                throw ConfigurationError("GATEHOUSE_LOG_FORMAT must be text or json (got '\(value)')")
            }
            config.logFormat = format
        },
        Option(
            name: "ACCESS_LOG", help: "on: one info line per request (method, path, status, duration, client, id); off",
            defaultDescription: "on"
        ) { config, value in
            switch value.trimmingCharacters(in: .whitespaces).lowercased() {
            case "on", "true", "1", "yes": config.accessLog = true
            case "off", "false", "0", "no": config.accessLog = false
            default: throw ConfigurationError("GATEHOUSE_ACCESS_LOG must be on or off (got '\(value)')")
            }
        },
        Option(
            name: "METRICS",
            help: "on: GET /metrics, and every request counted and timed by route; off: neither",
            defaultDescription: "on"
        ) { config, value in
            switch value.trimmingCharacters(in: .whitespaces).lowercased() {
            case "on", "true", "1", "yes": config.metrics = true
            case "off", "false", "0", "no": config.metrics = false
            default: throw ConfigurationError("GATEHOUSE_METRICS must be on or off (got '\(value)')")
            }
        },
    ]

    static func integer(_ text: String, _ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw ConfigurationError(
                "GATEHOUSE_\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound) "
                    + "(got '\(text)')")
        }
        return value
    }

    /// Builds the configuration from the environment, then the flags (flags
    /// win). Both name the same settings: `GATEHOUSE_ACCESS_TTL=60` is
    /// `--access-ttl 60` or `--access-ttl=60`.
    ///
    /// - Parameters:
    ///   - environment: the process environment (only `GATEHOUSE_*` is read).
    ///   - arguments: the flags, without the program name and subcommand.
    /// - Throws: `ConfigurationError` naming the setting and what it accepts.
    public static func parse(environment: [String: String], arguments: [String]) throws(ConfigurationError)
        -> Configuration
    {
        var configuration = Configuration()
        for option in options {
            if let value = environment[option.environmentVariable] {
                try apply(option, value, to: &configuration, as: option.environmentVariable)
            }
        }
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            let name: Substring
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                name = argument[..<equals]
                value = String(argument[argument.index(after: equals)...])
            } else {
                name = Substring(argument)
            }
            guard let option = options.first(where: { $0.flag == name }) else {
                throw ConfigurationError("unknown option '\(argument)'; see gatehouse --help")
            }
            if value == nil {
                guard let next = remaining.popFirst() else {
                    throw ConfigurationError("\(option.flag) needs a value")
                }
                value = next
            }
            try apply(option, value ?? "", to: &configuration, as: option.flag)
        }
        if configuration.signingAlgorithm.isSymmetric, configuration.signingKeyFile != nil {
            throw ConfigurationError(
                "GATEHOUSE_SIGNING_KEY_FILE is for RS256, ES256 and EdDSA; an HS256 key is GATEHOUSE_JWT_SECRET")
        }
        if !configuration.signingAlgorithm.isSymmetric, configuration.jwtSecret != nil {
            throw ConfigurationError(
                "GATEHOUSE_JWT_SECRET is an HS256 secret; with \(configuration.signingAlgorithm.rawValue) use "
                    + "GATEHOUSE_SIGNING_KEY_FILE, or neither to have a key pair generated")
        }
        // A session outlives every access token it issues only if this holds.
        guard configuration.refreshTTL >= configuration.accessTTL else {
            throw ConfigurationError(
                "GATEHOUSE_REFRESH_TTL (\(configuration.refreshTTL) s) must be at least GATEHOUSE_ACCESS_TTL "
                    + "(\(configuration.accessTTL) s)")
        }
        return configuration
    }

    /// Applies one value, naming it in any error the way the user gave it.
    private static func apply(
        _ option: Option, _ value: String, to configuration: inout Configuration, as spelling: String
    ) throws(ConfigurationError) {
        do {
            try option.apply(&configuration, value)
        } catch let error as ConfigurationError {
            throw ConfigurationError(error.message.replacingOccurrences(of: option.environmentVariable, with: spelling))
        } catch {
            throw ConfigurationError("\(spelling): \(error)")
        }
    }

    /// The settings table that `gatehouse --help` prints.
    public static var helpText: String {
        var lines = ["Settings (environment variable, flag, default):", ""]
        for option in options {
            lines.append("  \(option.environmentVariable)  \(option.flag)")
            lines.append("      \(option.help) (default: \(option.defaultDescription))")
        }
        return lines.joined(separator: "\n")
    }
}
