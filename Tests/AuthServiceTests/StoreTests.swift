import Dispatch
import Foundation
import MicroHTTP
import Synchronization
import Testing
import TestSupport

@testable import AuthService

// MARK: - Helpers

/// A fresh directory for one test, removed afterwards.
private func withScratchDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = NSTemporaryDirectory() + "gatehouse-store-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Runs `body(i)` for each `i` in `0..<count` on its own thread, all released at once; returns when
/// every one has finished.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let start = DispatchSemaphore(value: 0)
    let finished = DispatchGroup()
    for index in 0..<count {
        finished.enter()
        let thread = Thread {
            start.wait()
            body(index)
            finished.leave()
        }
        thread.start()
    }
    for _ in 0..<count {
        start.signal()
    }
    finished.wait()
}

private func randomHash() -> [UInt8] {
    (0..<32).map { _ in UInt8.random(in: .min ... .max) }
}

private let hour: Int64 = 3600
private let day: Int64 = 86400

/// A user with one session and its first refresh token.
@discardableResult
private func openSession(
    _ store: any UserStore,
    userID: String = "u1",
    sessionID: String = "s1",
    refreshHash: [UInt8],
    now: Int64 = 1_000_000,
    refreshTTL: Int64 = 30 * day
) throws -> Session {
    if try store.user(id: userID) == nil {
        _ = try store.createUser(id: userID, username: "user-\(userID)", passwordHash: "h", createdAt: now)
    }
    let session = Session(id: sessionID, userID: userID, createdAt: now, expiresAt: now + refreshTTL)
    try store.createSession(session, refreshTokenHash: refreshHash, refreshExpiresAt: now + refreshTTL)
    return session
}

// MARK: - Users

@Suite("Stores: users", .postgres)
struct StoreUserTests {
    @Test("a created user is found by id and by name in any case", arguments: StoreBackend.allCases)
    func createAndFind(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let created = try store.createUser(id: "u1", username: "Alice", passwordHash: "$argon2id$x", createdAt: 42)
            #expect(created == User(id: "u1", username: "Alice", passwordHash: "$argon2id$x", createdAt: 42))
            #expect(try store.user(id: "u1") == created)
            #expect(try store.user(named: "alice") == created)
            #expect(try store.user(named: "ALICE") == created)
            #expect(try store.user(named: "Alice") == created)
            #expect(try store.user(named: "bob") == nil)
            #expect(try store.user(id: "u2") == nil)
        }
    }

    @Test("registering an existing name in another case is usernameTaken and leaves the original unchanged", arguments: StoreBackend.allCases)
    func duplicateUsername(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let original = try store.createUser(id: "u1", username: "alice", passwordHash: "original", createdAt: 1)
            let error = #expect(throws: StoreError.self) {
                try store.createUser(id: "u2", username: "ALICE", passwordHash: "attacker", createdAt: 2)
            }
            #expect(error?.code == .usernameTaken)
            #expect(try store.user(named: "alice") == original)
            #expect(try store.user(id: "u2") == nil)
        }
    }

    @Test("24 concurrent registrations of one name on one store: exactly one succeeds", arguments: StoreBackend.allCases)
    func concurrentRegistrations(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let outcomes = LockedValue<[Result<User, StoreError>]>([])
            onThreads(24) { index in
                let name = index % 2 == 0 ? "racer" : "RACER"
                let outcome = Result { () throws(StoreError) -> User in
                    try store.createUser(id: "u\(index)", username: name, passwordHash: "h\(index)", createdAt: 1)
                }
                outcomes.withLock { $0.append(outcome) }
            }
            let all = outcomes.withLock { $0 }
            let winners = all.compactMap { try? $0.get() }
            let taken = all.filter { if case .failure(let error) = $0 { error.code == .usernameTaken } else { false } }
            #expect(winners.count == 1)
            #expect(taken.count == 23)
            #expect(try store.user(named: "Racer") == winners.first)
        }
    }

    @Test(
        "24 concurrent registrations of one name over four stores on one database: exactly one succeeds",
        arguments: StoreBackend.allCases)
    func concurrentRegistrationsAcrossConnections(_ backend: StoreBackend) throws {
        try withStoreLocation(backend) { location throws in
            let stores = try (0..<4).map { _ in try location.open() }
            defer {
                for store in stores {
                    store.close()
                }
            }
            let outcomes = LockedValue<[Result<User, StoreError>]>([])
            onThreads(24) { index in
                let outcome = Result { () throws(StoreError) -> User in
                    try stores[index % 4].createUser(
                        id: "u\(index)", username: "racer", passwordHash: "h", createdAt: 1)
                }
                outcomes.withLock { $0.append(outcome) }
            }
            let all = outcomes.withLock { $0 }
            #expect(all.count { (try? $0.get()) != nil } == 1)
            #expect(
                all.count { if case .failure(let error) = $0 { error.code == .usernameTaken } else { false } } == 23)
        }
    }

    @Test("updatePasswordHash replaces the hash; an unknown user is notFound", arguments: StoreBackend.allCases)
    func updatePasswordHash(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            _ = try store.createUser(id: "u1", username: "alice", passwordHash: "old", createdAt: 1)
            try store.updatePasswordHash(userID: "u1", passwordHash: "new")
            #expect(try store.user(id: "u1")?.passwordHash == "new")
            let error = #expect(throws: StoreError.self) {
                try store.updatePasswordHash(userID: "nobody", passwordHash: "x")
            }
            #expect(error?.code == .notFound)
        }
    }

    @Test("text is stored exactly: empty strings, non-ASCII, quotes", arguments: StoreBackend.allCases)
    func textRoundTrip(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let user = try store.createUser(id: "ü'1\"", username: "Zoë.o'b_@-", passwordHash: "", createdAt: -5)
            #expect(try store.user(id: "ü'1\"") == user)
            #expect(try store.user(named: "zoë.O'B_@-") == user)
        }
    }

    @Test("deleteUser removes the user with its sessions and refresh tokens", arguments: StoreBackend.allCases)
    func deleteUserCascades(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            let hash = randomHash()
            try openSession(store, refreshHash: hash, now: now)
            _ = try store.createUser(id: "u2", username: "other", passwordHash: "h", createdAt: now)
            try store.createSession(
                Session(id: "s2", userID: "u2", createdAt: now, expiresAt: now + day),
                refreshTokenHash: randomHash(),
                refreshExpiresAt: now + day
            )

            try store.deleteUser(id: "u1")

            #expect(try store.user(id: "u1") == nil)
            #expect(try store.user(named: "user-u1") == nil)
            #expect(try store.session(id: "s1") == nil)
            #expect(
                try store.rotateRefreshToken(hash: hash, newHash: randomHash(), newExpiresAt: now + day, now: now + 1)
                    == .invalid)
            // The other user is untouched.
            #expect(try store.session(id: "s2") != nil)
            // The name is free again.
            _ = try store.createUser(id: "u3", username: "USER-U1", passwordHash: "h", createdAt: now)

            let error = #expect(throws: StoreError.self) { try store.deleteUser(id: "u1") }
            #expect(error?.code == .notFound)
        }
    }

    @Test("a deleted user's sessions stay listed as revoked until they expire", arguments: StoreBackend.allCases)
    func deletedSessionsStayRevoked(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            try openSession(store, refreshHash: randomHash(), now: now, refreshTTL: day)
            try store.deleteUser(id: "u1")
            #expect(try store.revokedSessions(now: now + 1).map(\.id) == ["s1"])
            #expect(try store.revokedSessions(now: now + day).isEmpty)
        }
    }
}

// MARK: - Sessions and refresh tokens

@Suite("Stores: sessions and refresh tokens", .postgres)
struct StoreSessionTests {
    @Test("createSession stores the session; for an unknown user it is notFound", arguments: StoreBackend.allCases)
    func createSession(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let session = try openSession(store, refreshHash: randomHash())
            #expect(try store.session(id: "s1") == session)
            #expect(try store.session(id: "nope") == nil)
            let error = #expect(throws: StoreError.self) {
                try store.createSession(
                    Session(id: "s9", userID: "ghost", createdAt: 1, expiresAt: 2),
                    refreshTokenHash: randomHash(),
                    refreshExpiresAt: 2
                )
            }
            #expect(error?.code == .notFound)
        }
    }

    @Test("rotation consumes the token; presenting it again is reuse; the successor rotates", arguments: StoreBackend.allCases)
    func rotateThenReuse(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            let first = randomHash()
            let second = randomHash()
            let third = randomHash()
            let session = try openSession(store, refreshHash: first, now: now)

            let rotated = try store.rotateRefreshToken(
                hash: first, newHash: second, newExpiresAt: now + 30 * day, now: now + 10)
            #expect(rotated.rotatedSession == session)

            let replay = try store.rotateRefreshToken(
                hash: first, newHash: randomHash(), newExpiresAt: now + 30 * day, now: now + 20)
            #expect(replay == .reused(sessionID: "s1"))

            let next = try store.rotateRefreshToken(
                hash: second, newHash: third, newExpiresAt: now + 30 * day, now: now + 30)
            #expect(next.rotatedSession == session)

            // The caller answers reuse by revoking the session: then nothing of it rotates.
            try store.revokeSession(id: "s1", at: now + 40)
            #expect(
                try store.rotateRefreshToken(hash: third, newHash: randomHash(), newExpiresAt: now + day, now: now + 50)
                    == .invalid)
            #expect(
                try store.rotateRefreshToken(hash: first, newHash: randomHash(), newExpiresAt: now + day, now: now + 50)
                    == .invalid)
        }
    }

    @Test("rotation moves the session's expiry to the successor's when that is later, never earlier", arguments: StoreBackend.allCases)
    func rotationExtendsSession(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            let first = randomHash()
            let second = randomHash()
            try openSession(store, refreshHash: first, now: now, refreshTTL: day)

            let later = try store.rotateRefreshToken(
                hash: first, newHash: second, newExpiresAt: now + 2 * day, now: now + hour)
            guard case .rotated(let extended, let user) = later else {
                Issue.record("expected rotated, got \(later)")
                return
            }
            #expect(extended.expiresAt == now + 2 * day)
            #expect(user.id == extended.userID)
            #expect(try store.session(id: "s1")?.expiresAt == now + 2 * day)

            let earlier = try store.rotateRefreshToken(
                hash: second, newHash: randomHash(), newExpiresAt: now + day / 2, now: now + 2 * hour)
            #expect(earlier.rotatedSession == extended)
            #expect(try store.session(id: "s1")?.expiresAt == now + 2 * day)
        }
    }

    @Test("unknown, expired and expired-session tokens are invalid", arguments: StoreBackend.allCases)
    func invalidTokens(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            let hash = randomHash()
            try openSession(store, refreshHash: hash, now: now, refreshTTL: day)

            #expect(
                try store.rotateRefreshToken(
                    hash: randomHash(), newHash: randomHash(), newExpiresAt: now + day, now: now) == .invalid)
            #expect(
                try store.rotateRefreshToken(hash: [], newHash: randomHash(), newExpiresAt: now + day, now: now)
                    == .invalid)
            // Expired exactly at expiresAt.
            #expect(
                try store.rotateRefreshToken(
                    hash: hash, newHash: randomHash(), newExpiresAt: now + 2 * day, now: now + day) == .invalid)
            #expect(
                try store.rotateRefreshToken(
                    hash: hash, newHash: randomHash(), newExpiresAt: now + 2 * day, now: now + 5 * day) == .invalid)
            // An invalid attempt consumed nothing: one second before expiry it still rotates.
            let rotated = try store.rotateRefreshToken(
                hash: hash, newHash: randomHash(), newExpiresAt: now + 2 * day, now: now + day - 1)
            #expect(rotated != .invalid)
        }
    }

    @Test("a refresh token that outlives its session is invalid once the session has expired", arguments: StoreBackend.allCases)
    func expiredSession(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            let hash = randomHash()
            _ = try store.createUser(id: "u1", username: "alice", passwordHash: "h", createdAt: now)
            try store.createSession(
                Session(id: "s1", userID: "u1", createdAt: now, expiresAt: now + hour),
                refreshTokenHash: hash,
                refreshExpiresAt: now + day
            )
            #expect(
                try store.rotateRefreshToken(
                    hash: hash, newHash: randomHash(), newExpiresAt: now + day, now: now + hour) == .invalid)
        }
    }

    @Test(
        "two concurrent rotations of one token on one store (PostgreSQL: two pool connections): one rotated, one reused",
        arguments: StoreBackend.allCases, 0..<10)
    func concurrentRotation(_ backend: StoreBackend, round: Int) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            let hash = randomHash()
            try openSession(store, sessionID: "s\(round)", refreshHash: hash, now: now)
            let outcomes = LockedValue<[RefreshRotation]>([])
            onThreads(2) { _ in
                let outcome = try? store.rotateRefreshToken(
                    hash: hash, newHash: randomHash(), newExpiresAt: now + day, now: now + 1)
                outcomes.withLock { $0.append(outcome ?? .invalid) }
            }
            let all = outcomes.withLock { $0 }
            #expect(all.count { if case .rotated = $0 { true } else { false } } == 1)
            #expect(all.count { $0 == .reused(sessionID: "s\(round)") } == 1)
        }
    }

    @Test(
        "two concurrent rotations of one token over two stores (two instances): one rotated, one reused",
        arguments: StoreBackend.allCases, 0..<5)
    func concurrentRotationAcrossConnections(_ backend: StoreBackend, round: Int) throws {
        try withStoreLocation(backend) { location throws in
            let stores = [try location.open(), try location.open()]
            defer {
                for store in stores {
                    store.close()
                }
            }
            let now: Int64 = 1_000_000
            let hash = randomHash()
            let successors = [randomHash(), randomHash()]
            try openSession(stores[0], refreshHash: hash, now: now)
            let outcomes = LockedValue<[Int: Result<RefreshRotation, StoreError>]>([:])
            onThreads(2) { index in
                let outcome = Result { () throws(StoreError) -> RefreshRotation in
                    try stores[index].rotateRefreshToken(
                        hash: hash, newHash: successors[index], newExpiresAt: now + day, now: now + 1)
                }
                outcomes.withLock { $0[index] = outcome }
            }
            let all = try outcomes.withLock { $0 }.mapValues { try $0.get() }
            #expect(all.values.count { if case .rotated = $0 { true } else { false } } == 1)
            #expect(all.values.count { $0 == .reused(sessionID: "s1") } == 1)

            // The reuse rule, as SessionController applies it: the instance that saw the replay ends
            // the session, and the winner's new refresh token dies with it.
            let winner = try #require(all.first { if case .rotated = $0.value { true } else { false } }?.key)
            try stores[1 - winner].revokeSession(id: "s1", at: now + 2)
            #expect(try stores[winner].session(id: "s1")?.revokedAt == now + 2)
            #expect(
                try stores[winner].rotateRefreshToken(
                    hash: successors[winner], newHash: randomHash(), newExpiresAt: now + day, now: now + 3) == .invalid)
            #expect(try stores[winner].revokedSessions(now: now + 3).map(\.id) == ["s1"])
        }
    }

    @Test("revokeSession marks the session and kills its refresh tokens; repeat keeps the first time", arguments: StoreBackend.allCases)
    func revokeSession(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            let hash = randomHash()
            try openSession(store, refreshHash: hash, now: now)

            try store.revokeSession(id: "s1", at: now + 5)
            #expect(try store.session(id: "s1")?.revokedAt == now + 5)
            #expect(try store.session(id: "s1")?.isActive(at: now + 6) == false)
            #expect(
                try store.rotateRefreshToken(hash: hash, newHash: randomHash(), newExpiresAt: now + day, now: now + 6)
                    == .invalid)

            try store.revokeSession(id: "s1", at: now + 100)
            #expect(try store.session(id: "s1")?.revokedAt == now + 5)

            let error = #expect(throws: StoreError.self) { try store.revokeSession(id: "nope", at: now) }
            #expect(error?.code == .notFound)
        }
    }

    @Test("revokeSessions(except:) ends every other live session of the user and returns their ids", arguments: StoreBackend.allCases)
    func revokeOtherSessions(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            var hashes: [String: [UInt8]] = [:]
            for id in ["a", "b", "c", "d"] {
                hashes[id] = randomHash()
                try openSession(store, sessionID: id, refreshHash: hashes[id]!, now: now)
            }
            // Already revoked, expired, and another user's sessions are not reported.
            try store.revokeSession(id: "d", at: now + 1)
            _ = try store.createUser(id: "u2", username: "other", passwordHash: "h", createdAt: now)
            try store.createSession(
                Session(id: "x", userID: "u2", createdAt: now, expiresAt: now + day),
                refreshTokenHash: randomHash(),
                refreshExpiresAt: now + day
            )
            try store.createSession(
                Session(id: "old", userID: "u1", createdAt: now - 2 * day, expiresAt: now - day),
                refreshTokenHash: randomHash(),
                refreshExpiresAt: now - day
            )

            let revoked = try store.revokeSessions(userID: "u1", except: "a", at: now + 10)
            #expect(Set(revoked) == ["b", "c"])
            #expect(try store.session(id: "a")?.revokedAt == nil)
            #expect(try store.session(id: "b")?.revokedAt == now + 10)
            #expect(try store.session(id: "d")?.revokedAt == now + 1)
            #expect(try store.session(id: "x")?.revokedAt == nil)
            #expect(
                try store.rotateRefreshToken(
                    hash: hashes["b"]!, newHash: randomHash(), newExpiresAt: now + day, now: now + 11) == .invalid)
            #expect(
                try store.rotateRefreshToken(
                    hash: hashes["a"]!, newHash: randomHash(), newExpiresAt: now + day, now: now + 11) != .invalid)

            #expect(try store.revokeSessions(userID: "u1", except: nil, at: now + 20) == ["a"])
            #expect(try store.revokeSessions(userID: "u1", except: nil, at: now + 30).isEmpty)
            #expect(try store.revokeSessions(userID: "nobody", except: nil, at: now + 30).isEmpty)
        }
    }

    @Test("revokedSessions lists revoked sessions that have not expired, with their expiry", arguments: StoreBackend.allCases)
    func revokedSessionsList(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let now: Int64 = 1_000_000
            _ = try store.createUser(id: "u1", username: "alice", passwordHash: "h", createdAt: now)
            for (id, expiresAt) in [("live", now + day), ("soon", now + hour), ("gone", now - 1), ("kept", now + day)] {
                try store.createSession(
                    Session(id: id, userID: "u1", createdAt: now - day, expiresAt: expiresAt),
                    refreshTokenHash: randomHash(),
                    refreshExpiresAt: expiresAt
                )
            }
            for id in ["live", "soon", "gone"] {
                try store.revokeSession(id: id, at: now - 10)
            }
            let listed = try store.revokedSessions(now: now)
            #expect(
                Dictionary(uniqueKeysWithValues: listed.map { ($0.id, $0.expiresAt) }) == [
                    "live": now + day, "soon": now + hour,
                ])
            #expect(try store.revokedSessions(now: now + hour).map(\.id) == ["live"])
        }
    }
}

// MARK: - Lifecycle

@Suite("Stores: persistence and lifecycle", .postgres)
struct StoreLifecycleTests {
    /// Instances starting together on a new database: each store brings the schema up to date
    /// (SQLite in a `BEGIN IMMEDIATE` transaction, PostgreSQL under an advisory lock), and none
    /// fails or applies a migration twice.
    @Test("stores opening one new database at once all work on one schema", arguments: StoreBackend.allCases)
    func concurrentFirstOpen(_ backend: StoreBackend) throws {
        try withStoreLocation(backend) { location throws in
            let failures = LockedValue<[String]>([])
            onThreads(6) { index in
                do {
                    let store = try location.open(poolSize: 1)
                    defer { store.close() }
                    _ = try store.createUser(id: "u\(index)", username: "user\(index)", passwordHash: "h", createdAt: 1)
                } catch {
                    failures.withLock { $0.append("\(index): \(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            let store = try location.open()
            defer { store.close() }
            for index in 0..<6 {
                #expect(try store.user(named: "USER\(index)")?.id == "u\(index)")
            }
        }
    }

    @Test("users, sessions and revocations persist after closing and reopening the store", arguments: StoreBackend.allCases)
    func persistence(_ backend: StoreBackend) throws {
        try withStoreLocation(backend) { location throws in
            let now: Int64 = 1_000_000
            let consumed = randomHash()
            let live = randomHash()
            do {
                let store = try location.open()
                try openSession(store, refreshHash: consumed, now: now)
                _ = try store.rotateRefreshToken(
                    hash: consumed, newHash: live, newExpiresAt: now + 30 * day, now: now + 1)
                try openSession(store, sessionID: "s2", refreshHash: randomHash(), now: now)
                try store.revokeSession(id: "s2", at: now + 2)
                store.close()
            }
            let reopened = try location.open()
            defer { reopened.close() }
            #expect(try reopened.user(named: "USER-U1")?.id == "u1")
            #expect(try reopened.session(id: "s1")?.revokedAt == nil)
            #expect(try reopened.revokedSessions(now: now + 3).map(\.id) == ["s2"])
            #expect(
                try reopened.rotateRefreshToken(
                    hash: consumed, newHash: randomHash(), newExpiresAt: now + day, now: now + 4)
                    == .reused(sessionID: "s1"))
            #expect(
                try reopened.rotateRefreshToken(
                    hash: live, newHash: randomHash(), newExpiresAt: now + day, now: now + 4) != .invalid)
        }
    }

    @Test("a closed store is unavailable; ping answers while open", arguments: StoreBackend.allCases)
    func closed(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            try store.ping()
            store.close()
            store.close()
            let pingError = #expect(throws: StoreError.self) { try store.ping() }
            #expect(pingError?.code == .unavailable)
            let lookupError = #expect(throws: StoreError.self) { try store.user(named: "alice") }
            #expect(lookupError?.code == .unavailable)
        }
    }

    @Test("opening in a missing directory is unavailable, naming the path and SQLite's reason")
    func missingDirectory() throws {
        try withScratchDirectory { directory throws in
            let path = directory + "/missing/gatehouse.db"
            let error = #expect(throws: StoreError.self) { try SQLiteStore(path: path) }
            #expect(error?.code == .unavailable)
            #expect(error?.message.contains(path) == true)
            #expect(error?.message.contains("SQLite 14") == true)
        }
    }

    @Test("a file that is not a database is corrupt")
    func notADatabase() throws {
        try withScratchDirectory { directory throws in
            let path = directory + "/gatehouse.db"
            try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: StoreError.self) { try SQLiteStore(path: path) }
            #expect(error?.code == .corrupt)
        }
    }

    @Test("a schema newer than this build is refused")
    func newerSchema() throws {
        try withScratchDirectory { directory throws in
            let path = directory + "/gatehouse.db"
            try SQLiteStore(path: path).close()
            do {
                let raw = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 1000)
                try raw.execute("PRAGMA user_version = 99")
            }
            let error = #expect(throws: StoreError.self) { try SQLiteStore(path: path) }
            #expect(error?.code == .incompatibleSchema)
        }
    }

    @Test("the SQLite file is in WAL mode with foreign keys enforced, at schema version 3")
    func configuration() throws {
        try withStore(.sqlite) { _, location throws in
            let raw = try SQLiteConnection(path: location.address, busyTimeoutMilliseconds: 1000)
            let mode = try raw.query("PRAGMA journal_mode") { row throws(SQLiteError) in try row.text(0) }
            #expect(mode == ["wal"])
            let version = try raw.query("PRAGMA user_version") { row throws(SQLiteError) in try row.int64(0) }
            #expect(version == [3])
        }
    }
}
