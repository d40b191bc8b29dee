import AuthService
import MicroHTTP
import Testing

@Suite struct ConfigurationTests {
    @Test func defaultsNeedNoConfiguration() throws {
        let configuration = try Configuration.parse(environment: [:], arguments: [])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8080)
        #expect(configuration.dataDirectory == "./data")
        #expect(configuration.databasePath == "data/gatehouse.db" || configuration.databasePath == "./data/gatehouse.db")
        #expect(configuration.jwtSecret == nil)
        #expect(configuration.accessTTL == 3600)
        #expect(configuration.refreshTTL == 2_592_000)
        #expect(configuration.issuer == "gatehouse")
        #expect(configuration.corsOrigins == .any)
        #expect(configuration.argon2 == Argon2Parameters(memoryKiB: 19456, iterations: 2, parallelism: 1))
        #expect(configuration.rateLimits == RateLimits.Settings())
        #expect(configuration.rateLimits.loginPerIP == 30)
        #expect(configuration.rateLimits.loginPerUsername == 10)
        #expect(configuration.trustedProxies.isEmpty)
        #expect(configuration.maxConnectionsPerIP == 128)
    }

    @Test func hardeningSettingsReachTheServer() throws {
        let configuration = try Configuration.parse(
            environment: [
                "GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/8,fd00::/8", "GATEHOUSE_RATE_LOGIN_PER_IP": "0",
                "GATEHOUSE_RATE_LOGIN_PER_USERNAME": "5", "GATEHOUSE_RATE_REGISTER_PER_IP": "3",
                "GATEHOUSE_RATE_REFRESH_PER_IP": "100", "GATEHOUSE_MAX_CONNECTIONS": "500",
                "GATEHOUSE_MAX_CONNECTIONS_PER_IP": "20", "GATEHOUSE_CONNECTION_MEMORY": "65536",
                "GATEHOUSE_LISTEN_BACKLOG": "128", "GATEHOUSE_CONNECTION_TIMEOUT": "7",
            ], arguments: [])
        #expect(configuration.rateLimits.loginPerIP == 0)
        #expect(configuration.rateLimits.loginPerUsername == 5)
        #expect(configuration.rateLimits.registerPerIP == 3)
        #expect(configuration.rateLimits.refreshPerIP == 100)
        let server = configuration.httpServer
        #expect(server.trustedProxies.networks.map(\.description) == ["10.0.0.0/8", "fd00::/8"])
        #expect(server.connectionLimit == 500)
        #expect(server.perIPConnectionLimit == 20)
        #expect(server.connectionMemoryLimit == 65536)
        #expect(server.listenBacklog == 128)
        #expect(server.connectionTimeout == 7)
    }

    @Test func environmentThenFlagsWhichWin() throws {
        let configuration = try Configuration.parse(
            environment: [
                "GATEHOUSE_PORT": "9000", "GATEHOUSE_ACCESS_TTL": "60", "GATEHOUSE_CORS_ORIGINS": "https://a.example/, http://b.example:3000",
                "GATEHOUSE_DATABASE_URL": "sqlite:///tmp/x.db", "UNRELATED": "ignored",
            ],
            arguments: ["--port", "9100", "--issuer=me", "--argon2-memory-kib", "65536"])
        #expect(configuration.port == 9100)
        #expect(configuration.accessTTL == 60)
        #expect(configuration.issuer == "me")
        #expect(configuration.argon2.memoryKiB == 65536)
        #expect(configuration.corsOrigins == .list(["https://a.example", "http://b.example:3000"]))
        #expect(configuration.databasePath == "/tmp/x.db")
    }

    @Test(arguments: [
        (["GATEHOUSE_JWT_SECRET": "short"], [String](), "GATEHOUSE_JWT_SECRET is 5 bytes"),
        ([:], ["--jwt-secret", "short"], "--jwt-secret is 5 bytes"),
        (["GATEHOUSE_PORT": "70000"], [], "GATEHOUSE_PORT must be a whole number from 0 to 65535"),
        (["GATEHOUSE_ACCESS_TTL": "1h"], [], "GATEHOUSE_ACCESS_TTL must be a whole number"),
        ([:], ["--threads", "0"], "--threads must be a whole number from 1"),
        ([:], ["--port"], "--port needs a value"),
        ([:], ["--nope", "1"], "unknown option '--nope'"),
        (["GATEHOUSE_CORS_ORIGINS": "https://*.example"], [], "GATEHOUSE_CORS_ORIGINS must be *"),
        (["GATEHOUSE_DATABASE_URL": "mysql://x"], [], "GATEHOUSE_DATABASE_URL must be sqlite://"),
        (["GATEHOUSE_DATABASE_URL": "/var/lib/gatehouse.db"], [], "GATEHOUSE_DATABASE_URL must be sqlite://"),
        (["GATEHOUSE_DATABASE_URL": "sqlite://"], [], "GATEHOUSE_DATABASE_URL must be sqlite://<path>"),
        (["GATEHOUSE_DATABASE_URL": "postgres://db/gatehouse?no_such_parameter=1"], [],
         "GATEHOUSE_DATABASE_URL is not a PostgreSQL URL libpq accepts"),
        ([:], ["--database-url", "postgresql://db/gate%zzhouse"], "--database-url is not a PostgreSQL URL"),
        (["GATEHOUSE_DB_POOL_SIZE": "0"], [], "GATEHOUSE_DB_POOL_SIZE must be a whole number from 1 to 1000"),
        (["GATEHOUSE_REVOCATION_POLL_MS": "5"], [], "GATEHOUSE_REVOCATION_POLL_MS must be a whole number from 10 to 60000"),
        (["GATEHOUSE_LOG_LEVEL": "loud"], [], "GATEHOUSE_LOG_LEVEL must be"),
        (["GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/33"], [], "GATEHOUSE_TRUSTED_PROXIES must be a comma-separated list"),
        ([:], ["--trusted-proxies", "proxy.internal"], "--trusted-proxies must be"),
        (["GATEHOUSE_RATE_LOGIN_PER_IP": "-1"], [], "GATEHOUSE_RATE_LOGIN_PER_IP must be a whole number from 0"),
        (["GATEHOUSE_CONNECTION_MEMORY": "100"], [], "GATEHOUSE_CONNECTION_MEMORY must be a whole number from 8192"),
        (["GATEHOUSE_DEFAULT_ROLES": "reader,Admin"], [], "GATEHOUSE_DEFAULT_ROLES: 'Admin' is not a role name"),
        ([:], ["--default-roles", "two words"], "--default-roles: 'two words' is not a role name"),
    ] as [([String: String], [String], String)])
    func badValuesAreRefusedWithAMessageNamingTheSetting(_ row: ([String: String], [String], String)) {
        #expect {
            try Configuration.parse(environment: row.0, arguments: row.1)
        } throws: { error in
            (error as? ConfigurationError)?.message.contains(row.2) == true
        }
    }

    @Test func theRevocationPollIntervalIsSetInMilliseconds() throws {
        #expect(try Configuration.parse(environment: [:], arguments: []).revocationPollMilliseconds == 250)
        let parsed = try Configuration.parse(environment: ["GATEHOUSE_REVOCATION_POLL_MS": "60000"], arguments: [])
        #expect(parsed.revocationPollMilliseconds == 60_000)
        #expect(
            try Configuration.parse(environment: [:], arguments: ["--revocation-poll-ms", "100"])
                .revocationPollMilliseconds == 100)
    }

    @Test func aPostgreSQLURLChoosesThePostgreSQLStoreWithItsPoolSize() throws {
        let sqlite = try Configuration.parse(environment: [:], arguments: [])
        #expect(sqlite.postgresURL == nil)
        #expect(sqlite.databasePoolSize == 8)
        for url in [
            "postgres://gatehouse:pw@db.internal:5433/gatehouse?sslmode=require",
            "postgresql://gatehouse@127.0.0.1/gatehouse", "postgres://",
        ] {
            let parsed = try Configuration.parse(
                environment: ["GATEHOUSE_DATABASE_URL": url, "GATEHOUSE_DB_POOL_SIZE": "3"], arguments: [])
            #expect(parsed.postgresURL == url)
            #expect(parsed.databasePoolSize == 3)
        }
        let withPassword = try Configuration.parse(
            environment: ["GATEHOUSE_DATABASE_URL": "postgres://gatehouse:pw-s3cret@db.internal:5433/gatehouse"],
            arguments: [])
        #expect(withPassword.storeDescription == "PostgreSQL at db.internal:5433")
        #expect(try Configuration.parse(environment: [:], arguments: ["--db-pool-size", "20"]).databasePoolSize == 20)
    }

    @Test func aURLOfAnotherStoreIsRefusedWithoutRepeatingItsPassword() {
        #expect {
            try Configuration.parse(environment: ["GATEHOUSE_DATABASE_URL": "mysql://root:pw-s3cret@db/x"], arguments: [])
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.contains("scheme 'mysql'") && !message.contains("s3cret")
        }
    }

    @Test func defaultRolesAreACommaSeparatedListOfRoleNames() throws {
        #expect(try Configuration.parse(environment: [:], arguments: []).defaultRoles == [])
        let parsed = try Configuration.parse(
            environment: ["GATEHOUSE_DEFAULT_ROLES": " reader, billing:read ,,reader"], arguments: [])
        #expect(parsed.defaultRoles == ["billing:read", "reader"])
        #expect(try Configuration.parse(environment: [:], arguments: ["--default-roles="]).defaultRoles == [])
    }

    @Test func helpNamesEveryVariableAndFlag() {
        for name in [
            "GATEHOUSE_HOST", "GATEHOUSE_JWT_SECRET", "--jwt-secret", "GATEHOUSE_THREADS", "--cors-origins",
            "GATEHOUSE_DATABASE_URL", "postgres://", "GATEHOUSE_DB_POOL_SIZE", "--db-pool-size",
        ] {
            #expect(Configuration.helpText.contains(name))
        }
    }
}
