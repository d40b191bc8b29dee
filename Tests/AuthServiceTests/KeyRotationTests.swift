@testable import AuthService
import Foundation
import JOSE
import JSON
import MicroHTTP
import Testing
import TestSupport

/// Where a test's managed keys live: the data directory, or a fresh database on the suite's
/// PostgreSQL server.
enum KeyBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case files
    case postgres

    var testDescription: String { rawValue }
}

/// The managed keys in a real data directory and in a real PostgreSQL
/// database: the first key, a change of algorithm, rotation with and without
/// a publish delay, retirement, and what a `KeyManager` puts in force along
/// the way (moved by a manual clock). The tests of the rules run against both
/// storages; the files' own details (modes, `jwt-secret`) only against files.
@Suite(.postgres) struct KeyRotationTests {
    static let lifetime: Int64 = 3630
    static let policy = TokenService.policy(issuer: "gatehouse", audience: nil, leeway: 30)

    struct Fixture {
        let storage: any KeyStorage
        /// The data directory (the storage itself for `.files`).
        let directory: KeyDirectory
        let rotation: KeyRotation
        let clock: ManualClock
        let logs: MemoryLogSink
        /// The store whose database holds the keys (`.postgres`), and its URL.
        let store: PostgresStore?
        let databaseURL: String?

        func manager() throws -> KeyManager {
            try KeyManager(
                storage: storage, policy: KeyRotationTests.policy, tokenLifetime: KeyRotationTests.lifetime,
                signatureCacheCapacity: 100, clock: clock.clock, logger: Logger(level: .debug, sink: logs))
        }

        func tokens(_ keys: KeyManager) -> TokenService {
            TokenService(keys: keys, accessTTL: 3600, issuer: "gatehouse", audience: nil, clock: clock.clock)
        }

        var now: Int64 { clock.clock.seconds }

        func mode(_ relative: String) throws -> Int? {
            let attributes = try FileManager.default.attributesOfItem(atPath: directory.path(relative))
            return attributes[.posixPermissions] as? Int
        }

        /// The kids whose key material is stored: key files (`.pem`, `.secret`) or rows.
        func storedKids() throws -> Set<String> {
            if let store {
                return Set(
                    try store.pool.withConnection { db throws(PostgresError) in
                        try db.query("SELECT kid FROM signing_keys") { row throws(PostgresError) in try row.text(0) }
                    })
            }
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path("keys"))
            return Set(
                files.filter { $0.hasSuffix(".pem") || $0.hasSuffix(".secret") }.map {
                    String($0.prefix { $0 != "." })
                })
        }

        /// Runs one SQL statement on the keys' database (`.postgres` only).
        func sql(_ statement: String, _ parameters: [PostgresValue] = []) throws {
            let store = try #require(store)
            try store.pool.withConnection { db throws(PostgresError) in _ = try db.query(statement, parameters) }
        }
    }

    func withFixture(_ backend: KeyBackend = .files, _ body: (Fixture) throws -> Void) async throws {
        try await withTemporaryDirectory { path in
            let directory = KeyDirectory(dataDirectory: path + "/data")
            func run(_ storage: any KeyStorage, _ store: PostgresStore?, _ url: String?) throws {
                try body(
                    Fixture(
                        storage: storage, directory: directory,
                        rotation: KeyRotation(storage: storage, tokenLifetime: Self.lifetime),
                        clock: ManualClock(start: 1_800_000_000), logs: MemoryLogSink(), store: store,
                        databaseURL: url))
            }
            switch backend {
            case .files:
                try run(directory, nil, nil)
            case .postgres:
                try withStoreLocation(.postgres) { location in
                    let store = try PostgresStore(url: location.address, poolSize: 4)
                    defer { store.close() }
                    try run(PostgresKeyStorage(store: store, description: "the test database"), store, location.address)
                }
            }
        }
    }

    /// The `kid` in a token's header.
    static func kid(of token: String) throws -> String {
        let part = try #require(token.split(separator: ".").first)
        let header = try #require(Base64URL.decode(part))
        return try #require(try JSONValue.parse(header).objectValue?["kid"]?.stringValue)
    }

    static func jwksKids(_ keys: KeyManager) throws -> [String] {
        let document = try #require(try JSONValue.parse(keys.keySet.jwksBody).objectValue)
        return try #require(document["keys"]?.arrayValue).compactMap { $0.objectValue?["kid"]?.stringValue }
    }

    func issue(_ tokens: TokenService) -> String {
        tokens.issueAccessToken(userID: "u1", username: "alice", sessionID: "s1")
    }

    // MARK: - The first key

    @Test func theFirstHS256KeyIsTheJWTSecretFileAsBefore() async throws {
        try await withFixture { fixture in
            guard case .created(let key) = try fixture.rotation.prepare(algorithm: .hs256, now: fixture.now) else {
                Issue.record("expected a new key")
                return
            }
            #expect(key.file == "jwt-secret")
            #expect(try fixture.mode("jwt-secret") == 0o600)
            #expect(try fixture.mode("keys") == 0o700)
            let secret = try String(contentsOfFile: fixture.directory.path("jwt-secret"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(key.kid == SigningKey.thumbprint(ofSymmetricSecret: Array(secret.utf8)))
            #expect(try fixture.rotation.prepare(algorithm: .hs256, now: fixture.now) == .unchanged)
            // HMAC secrets are never published.
            #expect(try Self.jwksKids(try fixture.manager()).isEmpty)
        }
    }

    @Test func aJWTSecretFromBeforeKeyRotationIsAdoptedWithItsKid() async throws {
        try await withFixture { fixture in
            try FileManager.default.createDirectory(atPath: fixture.directory.dataDirectory, withIntermediateDirectories: true)
            let secret = String(repeating: "s", count: 43)
            try (secret + "\n").write(toFile: fixture.directory.path("jwt-secret"), atomically: true, encoding: .utf8)
            // A token signed the way the service did before keys were managed.
            let before = TokenService(
                keyRing: KeyRing(signingKey: try .hmac(secret: Array(secret.utf8))), accessTTL: 3600,
                issuer: "gatehouse", audience: nil, leeway: 30, clock: fixture.clock.clock)
            let old = issue(before)
            _ = try fixture.rotation.prepare(algorithm: .hs256, now: fixture.now)
            let tokens = fixture.tokens(try fixture.manager())
            #expect(throws: Never.self) { try tokens.authenticate(token: old) }
        }
    }

    @Test(arguments: [JWSAlgorithm.rs256, .es256, .edDSA])
    func anAsymmetricKeyPairIsGeneratedAndKeptPrivate(algorithm: JWSAlgorithm) async throws {
        try await withFixture { fixture in
            guard case .created(let key) = try fixture.rotation.prepare(algorithm: algorithm, now: fixture.now) else {
                Issue.record("expected a new key")
                return
            }
            #expect(key.file == "keys/\(key.kid).pem")
            #expect(try fixture.mode(key.file) == 0o600)
            let pem = try String(contentsOfFile: fixture.directory.path(key.file), encoding: .utf8)
            #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            // kid is the RFC 7638 thumbprint of the public key.
            #expect(try AsymmetricKey(pem: pem, algorithm: algorithm).thumbprint == key.kid)

            let keys = try fixture.manager()
            #expect(try Self.jwksKids(keys) == [key.kid])
            let token = issue(fixture.tokens(keys))
            #expect(try Self.kid(of: token) == key.kid)
            #expect(try fixture.tokens(keys).authenticate(token: token).username == "alice")
        }
    }

    @Test(arguments: KeyBackend.allCases)
    func changingTheAlgorithmSignsWithANewKeyAtOnceAndKeepsTheOldTokensValid(backend: KeyBackend) async throws {
        try await withFixture(backend) { fixture in
            _ = try fixture.rotation.prepare(algorithm: .hs256, now: fixture.now)
            let old = issue(fixture.tokens(try fixture.manager()))
            guard case .algorithmChanged(from: .hs256, let key) = try fixture.rotation.prepare(algorithm: .es256, now: fixture.now)
            else {
                Issue.record("expected an algorithm change")
                return
            }
            let keys = try fixture.manager()
            let tokens = fixture.tokens(keys)
            #expect(try Self.kid(of: issue(tokens)) == key.kid)
            #expect(throws: Never.self) { try tokens.authenticate(token: old) }
            // Only the public key is published, not the old HMAC secret.
            #expect(try Self.jwksKids(keys) == [key.kid])
        }
    }

    // MARK: - Rotation

    @Test(arguments: KeyBackend.allCases)
    func aRotatedKeyIsPublishedFirstThenSignsAndTheOldOneRetiresWhenItsTokensHaveExpired(backend: KeyBackend)
        async throws
    {
        try await withFixture(backend) { fixture in
            _ = try fixture.rotation.prepare(algorithm: .es256, now: fixture.now)
            let keys = try fixture.manager()
            let tokens = fixture.tokens(keys)
            let first = keys.keySet.ring.signingKey.kid
            let tokenA = issue(tokens)

            let rotation = try fixture.rotation.rotate(algorithm: .es256, now: fixture.now, publishDelay: 600)
            #expect(rotation.replaced?.kid == first)
            let second = rotation.key.kid
            #expect(keys.reload())
            // Published and accepted, not signing yet.
            #expect(try Self.jwksKids(keys).sorted() == [first, second].sorted())
            #expect(try Self.kid(of: issue(tokens)) == first)
            #expect(!keys.reload())

            fixture.clock.advance(by: 600)
            #expect(keys.reload())
            let tokenB = issue(tokens)
            #expect(try Self.kid(of: tokenB) == second)
            #expect(try Self.jwksKids(keys) == [second, first])
            #expect(throws: Never.self) { try tokens.authenticate(token: tokenA) }
            #expect(throws: Never.self) { try tokens.authenticate(token: tokenB) }

            // The old key goes once every token it could have signed has expired.
            fixture.clock.advance(by: Double(Self.lifetime) - 1)
            #expect(!keys.reload())
            fixture.clock.advance(by: 1)
            #expect(keys.reload())
            #expect(try Self.jwksKids(keys) == [second])
            #expect(throws: AuthError.self) { try tokens.authenticate(token: tokenA) }
            #expect(throws: Never.self) { try tokens.authenticate(token: tokenB) }
            #expect(fixture.logs.lines.contains { $0.contains("signing keys changed") })

            // The next rotation removes the retired key and its file or row.
            #expect(try fixture.storedKids().contains(first))
            let next = try fixture.rotation.rotate(algorithm: .es256, now: fixture.now, publishDelay: 0)
            #expect(next.removedRetired.map(\.kid) == [first])
            #expect(try fixture.storedKids() == [second, next.key.kid])
            let kids = try fixture.storage.readSchedule()?.keys.map(\.kid)
            #expect(kids == [second, next.key.kid])
        }
    }

    @Test(arguments: KeyBackend.allCases)
    func rotatingAgainBeforeAPendingKeySignsReplacesIt(backend: KeyBackend) async throws {
        try await withFixture(backend) { fixture in
            _ = try fixture.rotation.prepare(algorithm: .edDSA, now: fixture.now)
            let pending = try fixture.rotation.rotate(algorithm: .edDSA, now: fixture.now, publishDelay: 600)
            let now = try fixture.rotation.rotate(algorithm: .edDSA, now: fixture.now, publishDelay: 0)
            #expect(now.droppedPending.map(\.kid) == [pending.key.kid])
            #expect(try !fixture.storedKids().contains(pending.key.kid))
            let keys = try fixture.manager()
            #expect(keys.keySet.ring.signingKey.kid == now.key.kid)
            // Later, the dropped key does not come back.
            fixture.clock.advance(by: 700)
            keys.reload()
            #expect(keys.keySet.ring.signingKey.kid == now.key.kid)
        }
    }

    @Test(arguments: KeyBackend.allCases)
    func rotationsFromSeveralWritersAtOnceLeaveAConsistentList(backend: KeyBackend) async throws {
        try await withFixture(backend) { fixture in
            _ = try fixture.rotation.prepare(algorithm: .es256, now: fixture.now)
            let now = fixture.now
            let rotation = fixture.rotation
            let failures = LockedValue(0)
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                do {
                    _ = try rotation.rotate(algorithm: .es256, now: now, publishDelay: 600)
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
            #expect(failures.withLock { $0 } == 0)
            // The active key and the last pending one; every listed key loads, no other key is left.
            let schedule = try #require(try fixture.storage.readSchedule())
            #expect(schedule.keys.count == 2)
            for key in schedule.keys { _ = try fixture.storage.loadKey(key) }
            #expect(try fixture.storedKids() == Set(schedule.keys.map(\.kid)))
        }
    }

    @Test(arguments: KeyBackend.allCases)
    func aRefusedChangeLeavesTheListAsItWas(backend: KeyBackend) async throws {
        try await withFixture(backend) { fixture in
            #expect {
                _ = try fixture.rotation.rotate(algorithm: .es256, now: fixture.now, publishDelay: 0)
            } throws: { error in
                (error as? KeyStoreError)?.message.contains("there is no key to rotate yet") == true
            }
            let schedule = try fixture.storage.readSchedule()
            #expect(schedule == nil)
        }
    }

    /// Instances starting at once on one database (each with its own connections): one makes the
    /// key ring, every other one finds it, and they all sign and verify with the same key.
    @Test func instancesStartingAtOnceOnOneDatabaseShareTheFirstKey() async throws {
        try await withFixture(.postgres) { fixture in
            let url = try #require(fixture.databaseURL)
            let stores = try (0..<4).map { _ in try PostgresStore(url: url, poolSize: 1) }
            defer { for store in stores { store.close() } }
            let storages = stores.map { PostgresKeyStorage(store: $0, description: "instance") }
            let now = fixture.now
            let results = LockedValue<[KeyRotation.Preparation]>([])
            let failures = LockedValue<[String]>([])
            DispatchQueue.concurrentPerform(iterations: storages.count) { index in
                do {
                    let result = try KeyRotation(storage: storages[index], tokenLifetime: Self.lifetime)
                        .prepare(algorithm: .es256, now: now)
                    results.withLock { $0.append(result) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            let created = results.withLock { $0 }.compactMap { result -> ManagedKey? in
                if case .created(let key) = result { return key }
                return nil
            }
            #expect(created.count == 1)
            #expect(results.withLock { $0 }.count { $0 == .unchanged } == 3)
            let kid = try #require(created.first).kid

            let managers = try storages.map { storage in
                try KeyManager(
                    storage: storage, policy: Self.policy, tokenLifetime: Self.lifetime, signatureCacheCapacity: 0,
                    clock: fixture.clock.clock, logger: Logger(level: .debug, sink: fixture.logs))
            }
            #expect(managers.allSatisfy { $0.keySet.ring.signingKey.kid == kid })
            let token = issue(fixture.tokens(managers[0]))
            #expect(try fixture.tokens(managers[3]).authenticate(token: token).username == "alice")
            #expect(try fixture.storedKids() == [kid])
        }
    }

    // MARK: - Damage

    @Test(arguments: KeyBackend.allCases)
    func aDamagedListKeepsTheKeysInForceAndSaysWhy(backend: KeyBackend) async throws {
        try await withFixture(backend) { fixture in
            _ = try fixture.rotation.prepare(algorithm: .es256, now: fixture.now)
            let keys = try fixture.manager()
            let kid = keys.keySet.ring.signingKey.kid
            switch backend {
            case .files: try "{not json".write(toFile: fixture.directory.listPath, atomically: true, encoding: .utf8)
            case .postgres: try fixture.sql("UPDATE signing_keys SET alg = 'bogus'")
            }
            #expect(!keys.reload())
            #expect(keys.keySet.ring.signingKey.kid == kid)
            #expect(fixture.logs.lines.contains { $0.contains("could not reload the signing keys") })
            #expect(throws: KeyStoreError.self) { _ = try fixture.manager() }
        }
    }

    @Test(arguments: KeyBackend.allCases)
    func aKeyFileThatDoesNotMatchItsKidIsRefused(backend: KeyBackend) async throws {
        try await withFixture(backend) { fixture in
            guard case .created(let key) = try fixture.rotation.prepare(algorithm: .es256, now: fixture.now) else {
                Issue.record("expected a new key")
                return
            }
            let other = try AsymmetricKey.generate(for: .es256).privateKeyPEM()
            switch backend {
            case .files:
                let path = fixture.directory.path(key.file)
                unlink(path)
                try other.write(toFile: path, atomically: true, encoding: .utf8)
            case .postgres:
                try fixture.sql("UPDATE signing_keys SET material = $1 WHERE kid = $2", [.text(other), .text(key.kid)])
            }
            #expect {
                _ = try fixture.storage.loadKey(key)
            } throws: { error in
                (error as? KeyStoreError)?.message.contains("does not hold key \(key.kid)") == true
            }
        }
    }

    // MARK: - The command line's text

    @Test(arguments: KeyBackend.allCases)
    func keysListShowsEveryKeyWithItsState(backend: KeyBackend) async throws {
        try await withFixture(backend) { fixture in
            var configuration = Configuration()
            configuration.dataDirectory = fixture.directory.dataDirectory
            configuration.databaseURL = fixture.databaseURL
            configuration.signingAlgorithm = .es256
            #expect(try KeyCommands.run(.list, configuration: configuration, now: fixture.now).contains("No signing keys"))
            let rotated = try KeyCommands.run(.rotate(now: false), configuration: configuration, now: fixture.now)
            #expect(rotated.contains("There was no key yet"))
            let again = try KeyCommands.run(.rotate(now: false), configuration: configuration, now: fixture.now)
            #expect(again.contains("published now, signing from"))
            let list = try KeyCommands.run(.list, configuration: configuration, now: fixture.now)
            let lines = list.split(separator: "\n")
            #expect(lines.count == 3)
            #expect(lines[0].hasPrefix("KID"))
            #expect(lines[1].contains("ES256") && lines[1].contains("active"))
            #expect(lines[2].contains("ES256") && lines[2].contains("pending"))

            configuration.jwtSecret = String(repeating: "k", count: 40)
            configuration.signingAlgorithm = .hs256
            #expect(throws: ConfigurationError.self) {
                _ = try KeyCommands.run(.rotate(now: true), configuration: configuration, now: fixture.now)
            }
        }
    }

    @Test func theKeysSubcommandSeparatesItsOwnWordsFromTheSettings() throws {
        let rotate = try KeyCommands.Invocation(arguments: ["rotate", "--data-dir", "/x", "--now"])
        #expect(rotate.action == .rotate(now: true))
        #expect(rotate.configurationArguments == ["--data-dir", "/x"])
        #expect(try KeyCommands.Invocation(arguments: ["list"]).action == .list)
        #expect(throws: ConfigurationError.self) { _ = try KeyCommands.Invocation(arguments: []) }
        #expect(throws: ConfigurationError.self) { _ = try KeyCommands.Invocation(arguments: ["delete"]) }
    }
}
