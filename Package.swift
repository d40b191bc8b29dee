// swift-tools-version:6.1
import PackageDescription

// MARK: - Shared settings

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Gatehouse",
    products: [
        .executable(name: "gatehouse", targets: ["Server"]),
        .library(name: "AuthService", targets: ["AuthService"]),
    ],
    targets: [
        // MARK: - C libraries (Debian packages)

        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CArgon2",
            pkgConfig: "libargon2",
            providers: [.apt(["libargon2-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // PostgreSQL, the shared store for several instances (GATEHOUSE_DATABASE_URL=postgres://...).
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        // MARK: - Compiled-in files

        // docs/openapi.yaml, with C23 #embed (served as GET /openapi.json).
        .target(name: "COpenAPI"),

        // MARK: - Libraries

        .target(name: "JSON", swiftSettings: swiftSettings),
        .target(
            name: "MicroHTTP",
            dependencies: ["CMicroHTTPD", "JSON"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "JOSE",
            dependencies: ["CCrypto", "JSON"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AuthService",
            dependencies: ["MicroHTTP", "JOSE", "JSON", "CArgon2", "CSQLite", "CLibPQ", "COpenAPI"],
            swiftSettings: swiftSettings
        ),

        // MARK: - Executable

        .executableTarget(
            name: "Server",
            dependencies: ["AuthService", "MicroHTTP"],
            swiftSettings: swiftSettings
        ),

        // MARK: - Benchmarks (make bench; not part of the service)

        .executableTarget(
            name: "BareHandler",
            dependencies: ["CMicroHTTPD"],
            path: "Benchmarks/BareHandler",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "JOSEBenchmark",
            dependencies: ["JOSE", "JSON", "CCrypto"],
            path: "Benchmarks/JOSEBenchmark",
            swiftSettings: swiftSettings
        ),

        // MARK: - Fuzzing (make fuzz; libFuzzer targets, built only with --sanitize=fuzzer to fuzz)

        .executableTarget(
            name: "FuzzJOSE",
            dependencies: ["JOSE", "JSON"],
            path: "Fuzz/FuzzJOSE",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzJSON",
            dependencies: ["AuthService", "JSON", "MicroHTTP"],
            path: "Fuzz/FuzzJSON",
            swiftSettings: swiftSettings
        ),

        // MARK: - Tests

        .target(
            name: "TestSupport",
            dependencies: ["AuthService", "MicroHTTP"],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "JSONTests", dependencies: ["JSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "JOSETests",
            dependencies: ["JOSE", "JSON"],
            resources: [.copy("Vectors")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MicroHTTPTests",
            dependencies: ["MicroHTTP", "JSON", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AuthServiceTests",
            dependencies: ["AuthService", "MicroHTTP", "JOSE", "JSON", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["AuthService", "MicroHTTP", "JOSE", "JSON", "TestSupport"],
            swiftSettings: swiftSettings
        ),
    ],
    // C23, for #embed in COpenAPI (the only C target with sources).
    cLanguageStandard: .c2x
)
