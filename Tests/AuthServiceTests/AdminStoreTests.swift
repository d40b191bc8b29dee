import Foundation
import JSON
import MicroHTTP
import Testing
import TestSupport

@testable import AuthService

private let now: Int64 = 1_800_000_000

@discardableResult
private func user(_ store: any UserStore, _ name: String, roles: [String] = []) throws -> User {
    try store.createUser(
        id: "id-" + name, username: name, passwordHash: "$argon2id$x", createdAt: now, roles: roles)
}

@discardableResult
private func session(_ store: any UserStore, _ id: String, of userID: String, expires: Int64 = now + 3600) throws
    -> Session
{
    let session = Session(id: id, userID: userID, createdAt: now, expiresAt: expires)
    try store.createSession(session, refreshTokenHash: Array(id.utf8), refreshExpiresAt: expires)
    return session
}

@Suite("Stores: roles, app claims, locking, the revocation sequence", .postgres)
struct AdminStoreTests {
    @Test(arguments: StoreBackend.allCases)
    func aNewUserHasItsRolesSortedAndNoAppClaims(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let created = try user(store, "alice", roles: ["b", "a", "b"])
            #expect(created.roles == ["a", "b"])
            let read = try #require(try store.user(named: "ALICE"))
            #expect(read == created)
            #expect(read.appMetadata == nil)
            #expect(!read.locked)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func changingRolesOrClaimsOrLockingEndsEveryLiveSessionInTheSameStep(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let alice = try user(store, "alice")
            try session(store, "s1", of: alice.id)
            try session(store, "s2", of: alice.id)
            try session(store, "old", of: alice.id, expires: now - 1)

            let granted = try store.updateUser(id: alice.id, UserChanges(grant: ["admin"]), at: now)
            #expect(granted.user.roles == ["admin"])
            #expect(Set(granted.endedSessions) == ["s1", "s2"])
            #expect(try store.session(id: "s1")?.revokedAt == now)
            // Refresh tokens of the ended sessions are gone.
            let rotation = try store.rotateRefreshToken(
                hash: Array("s1".utf8), newHash: [1], newExpiresAt: now + 10, now: now)
            #expect(rotation == .invalid)

            try session(store, "s3", of: alice.id)
            let same = try store.updateUser(id: alice.id, UserChanges(roles: ["admin"]), at: now)
            #expect(same.endedSessions.isEmpty)
            #expect(try store.session(id: "s3")?.revokedAt == nil)

            let metadata: JSONObject = ["plan": "pro"]
            let claims = try store.updateUser(id: alice.id, UserChanges(appMetadata: .some(metadata)), at: now)
            #expect(claims.endedSessions == ["s3"])
            #expect(try store.user(id: alice.id)?.appMetadata == metadata)

            try session(store, "s4", of: alice.id)
            let locked = try store.updateUser(id: alice.id, UserChanges(locked: true), at: now)
            #expect(locked.endedSessions == ["s4"])
            #expect(try store.user(id: alice.id)?.locked == true)
            let unlocked = try store.updateUser(id: alice.id, UserChanges(locked: false), at: now)
            #expect(unlocked.endedSessions.isEmpty)
            #expect(unlocked.user.locked == false)

            let cleared = try store.updateUser(
                id: alice.id, UserChanges(revoke: ["admin"], appMetadata: .some(nil)), at: now)
            #expect(cleared.user.appMetadata == nil)
            #expect(cleared.user.roles == [])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func anUnknownUserIsNotFoundAndNothingChanges(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let error = #expect(throws: StoreError.self) {
                try store.updateUser(id: "nobody", UserChanges(roles: ["admin"]), at: now)
            }
            #expect(error?.code == .notFound)
            #expect(try store.listUsers(limit: 10, after: nil, matching: nil).users.isEmpty)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func pagesCoverEveryUserOnceInUsernameOrderAndQFiltersWithoutCase(_ backend: StoreBackend) throws {
        try withStore(backend) { store, _ throws in
            let names = ["bob", "Alice", "carol", "dave", "Eve", "alina", "mallory"]
            for name in names { try user(store, name) }
            var seen: [String] = []
            var after: String?
            repeat {
                let page = try store.listUsers(limit: 2, after: after, matching: nil)
                #expect(page.users.count <= 2)
                seen += page.users.map(\.username)
                after = page.next
            } while after != nil
            #expect(seen == names.sorted { $0.lowercased() < $1.lowercased() })
            let matching = try store.listUsers(limit: 10, after: nil, matching: "AL")
            #expect(matching.users.map(\.username) == ["Alice", "alina", "mallory"])
            #expect(matching.next == nil)
            // LIKE's wildcards mean nothing here.
            #expect(try store.listUsers(limit: 10, after: nil, matching: "%").users.isEmpty)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func theRevocationSequenceListsEverySessionEndedByAnyConnectionInOrder(_ backend: StoreBackend) throws {
        try withStore(backend) { store, location throws in
            let alice = try user(store, "alice")
            let bob = try user(store, "bob")
            for id in ["a1", "a2", "a3"] { try session(store, id, of: alice.id) }
            try session(store, "b1", of: bob.id)
            let start = try store.revocationCursor()
            #expect(try store.revocations(after: start).sessions.isEmpty)

            try store.revokeSession(id: "a1", at: now)
            // Revoking it again adds nothing.
            try store.revokeSession(id: "a1", at: now + 1)
            // Another process: the command line.
            let other = try location.open()
            _ = try other.updateUser(id: alice.id, UserChanges(grant: ["admin"]), at: now)
            try other.deleteUser(id: bob.id)
            other.close()

            let batch = try store.revocations(after: start)
            #expect(batch.sessions.map(\.id) == ["a1", "a2", "a3", "b1"])
            #expect(batch.sessions.allSatisfy { $0.expiresAt == now + 3600 })
            #expect(batch.cursor > start)
            #expect(try store.revocations(after: batch.cursor).sessions.isEmpty)
            #expect(try store.revocationCursor() == batch.cursor)

            // Pruning forgets expired entries but never reuses a position.
            try store.pruneExpired(now: now + 3600)
            #expect(try store.revocations(after: start).sessions.isEmpty)
            try session(store, "a4", of: alice.id)
            try store.revokeSession(id: "a4", at: now)
            let later = try store.revocations(after: batch.cursor)
            #expect(later.sessions.map(\.id) == ["a4"])
            #expect(later.cursor > batch.cursor)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func pruningDeletesExpiredSessionsWithTheirRefreshTokensAndKeepsEverythingThatCanStillMatter(
        _ backend: StoreBackend
    ) throws {
        try withStore(backend) { store, location throws in
            let alice = try user(store, "alice")
            let bob = try user(store, "bob")
            let retention = SQLiteStore.expiredSessionRetention
            try session(store, "old", of: alice.id, expires: now - retention)
            try session(store, "old-revoked", of: alice.id, expires: now - retention)
            try store.revokeSession(id: "old-revoked", at: now - retention - 10)
            try session(store, "just-expired", of: alice.id, expires: now - 10)
            try session(store, "live", of: alice.id, expires: now + 3600)
            try session(store, "live-revoked", of: alice.id, expires: now + 3600)
            try store.revokeSession(id: "live-revoked", at: now)
            try session(store, "bob-old", of: bob.id, expires: now - 20)
            try session(store, "bob-live", of: bob.id, expires: now + 600)
            try store.deleteUser(id: bob.id)
            let cursor = try store.revocationCursor()

            try store.pruneExpired(now: now)

            #expect(try store.session(id: "old") == nil)
            #expect(try store.session(id: "old-revoked") == nil)
            // Expired less than the retention ago, and live sessions: kept.
            #expect(try store.session(id: "just-expired") != nil)
            #expect(try store.session(id: "live") != nil)
            #expect(try store.session(id: "live-revoked")?.revokedAt == now)
            // What start-up loads as revoked is unchanged: the live revoked session and bob's live one.
            #expect(Set(try store.revokedSessions(now: now).map(\.id)) == ["live-revoked", "bob-live"])
            // The refresh tokens went with their sessions (revoking one had deleted its own);
            // the live one still rotates.
            if backend == .sqlite {
                let database = try SQLiteConnection(path: location.address, busyTimeoutMilliseconds: 1000)
                let tokens = try database.query("SELECT session_id FROM refresh_tokens ORDER BY session_id") {
                    row throws(SQLiteError) in try row.text(0)
                }
                #expect(tokens == ["just-expired", "live"])
                let deleted = try database.query("SELECT id FROM deleted_sessions ORDER BY id") {
                    row throws(SQLiteError) in try row.text(0)
                }
                #expect(deleted == ["bob-live"])
            }
            // Deleting expired sessions put no live entry in the revocation sequence.
            #expect(try store.revocations(after: cursor).sessions.isEmpty)
            _ = try store.rotateRefreshToken(
                hash: Array("live".utf8), newHash: Array("live-2".utf8), newExpiresAt: now + 3600, now: now)

            // A second pass changes nothing; an hour later the just-expired one goes too.
            try store.pruneExpired(now: now)
            #expect(try store.session(id: "just-expired") != nil)
            try store.pruneExpired(now: now + retention)
            #expect(try store.session(id: "just-expired") == nil)
            #expect(try store.session(id: "live") != nil)
        }
    }

    @Test func pruningGoesThroughBatchesAndGivesUpQuicklyWhenTheWriteLockIsHeld() throws {
        try withStore(.sqlite) { store, location throws in
            let path = location.address
            let alice = try user(store, "alice")
            let count = SQLiteStore.pruneBatch * 2 + 7
            for index in 0..<count {
                try session(store, "expired-\(index)", of: alice.id, expires: now - SQLiteStore.expiredSessionRetention)
            }
            try session(store, "live", of: alice.id)
            let other = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 1000)
            try other.run("BEGIN IMMEDIATE")
            let started = Date()
            #expect(throws: StoreError.self) { try store.pruneExpired(now: now) }
            // The ping's bound, not the 5 s busy timeout of ordinary writes.
            #expect(Date().timeIntervalSince(started) < 2)
            try other.run("ROLLBACK")
            #expect(try store.session(id: "expired-0") != nil)

            try store.pruneExpired(now: now)
            let remaining = try other.query("SELECT count(*) FROM sessions") { row throws(SQLiteError) in
                try row.int64(0)
            }
            #expect(remaining == [1])
            #expect(try store.session(id: "live") != nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func theFeedBringsSessionsAnotherConnectionEndedIntoTheRevocationList(_ backend: StoreBackend) throws {
        try withStore(backend) { store, location throws in
            let alice = try user(store, "alice")
            try session(store, "s1", of: alice.id)
            try session(store, "s2", of: alice.id)
            let revocations = RevocationList()
            let feed = RevocationFeed(
                store: store, revocations: revocations, cursor: try store.revocationCursor(),
                clock: ManualClock(start: Double(now)).clock, logger: Logger(sink: MemoryLogSink()))
            #expect(feed.poll() == 0)
            let other = try location.open()
            _ = try other.updateUser(id: alice.id, UserChanges(locked: true), at: now)
            other.close()
            #expect(!revocations.isRevoked("s1"))
            #expect(feed.poll() == 2)
            #expect(revocations.isRevoked("s1"))
            #expect(revocations.isRevoked("s2"))
            #expect(feed.poll() == 0)
        }
    }

    /// `pollSoon()` (what a notification triggers) polls on the feed's queue without waiting; a burst
    /// of calls shares polls; `catchUp()` polls and waits, and says whether the store answered.
    @Test(arguments: StoreBackend.allCases)
    func pollSoonPollsOnTheFeedsQueueAndCatchUpReportsTheStore(_ backend: StoreBackend) throws {
        try withStore(backend) { store, location throws in
            let alice = try user(store, "alice")
            try session(store, "s1", of: alice.id)
            let revocations = RevocationList()
            let feed = RevocationFeed(
                store: store, revocations: revocations, cursor: try store.revocationCursor(),
                clock: ManualClock(start: Double(now)).clock, logger: Logger(sink: MemoryLogSink()))
            let other = try location.open()
            try other.revokeSession(id: "s1", at: now)
            other.close()
            for _ in 0..<100 { feed.pollSoon() }
            let deadline = Date().addingTimeInterval(5)
            while !revocations.isRevoked("s1"), Date() < deadline { usleep(2000) }
            #expect(revocations.isRevoked("s1"))
            #expect(feed.catchUp())
            feed.stop()
            store.close()
            #expect(!feed.catchUp())
        }
    }

    @Test func aVersionOneDatabaseIsMigratedKeepingItsUsersAndRevokedSessions() throws {
        let directory = NSTemporaryDirectory() + "gatehouse-migrate-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/gatehouse.db"
        do {
            // The schema release 1 shipped, with one user and a revoked session.
            let raw = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 1000)
            try raw.execute(
                """
                CREATE TABLE users (id TEXT PRIMARY KEY NOT NULL, username TEXT NOT NULL,
                    password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
                CREATE UNIQUE INDEX users_username_nocase ON users (username COLLATE NOCASE);
                CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER);
                CREATE INDEX sessions_user_id ON sessions (user_id);
                CREATE INDEX sessions_revoked_expires_at ON sessions (expires_at) WHERE revoked_at IS NOT NULL;
                CREATE TABLE refresh_tokens (hash BLOB PRIMARY KEY NOT NULL,
                    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                    expires_at INTEGER NOT NULL, consumed_at INTEGER);
                CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
                CREATE TABLE deleted_sessions (id TEXT PRIMARY KEY NOT NULL, expires_at INTEGER NOT NULL);
                CREATE INDEX deleted_sessions_expires_at ON deleted_sessions (expires_at);
                INSERT INTO users VALUES ('u1', 'Olga', '$argon2id$old', 1700000000);
                INSERT INTO sessions VALUES ('gone', 'u1', 1700000000, \(now + 100), \(now - 5));
                INSERT INTO sessions VALUES ('live', 'u1', 1700000000, \(now + 100), NULL);
                PRAGMA user_version = 1;
                """)
        }
        let store = try SQLiteStore(path: path)
        defer { store.close() }
        let olga = try #require(try store.user(named: "olga"))
        #expect(olga.passwordHash == "$argon2id$old")
        #expect(olga.roles == [])
        #expect(olga.appMetadata == nil)
        #expect(!olga.locked)
        #expect(try store.revokedSessions(now: now).map(\.id) == ["gone"])
        let cursor = try store.revocationCursor()
        #expect(try store.updateUser(id: "u1", UserChanges(grant: ["admin"]), at: now).endedSessions == ["live"])
        #expect(try store.revocations(after: cursor).sessions.map(\.id) == ["live"])
    }
}

@Suite("Roles and admin input")
struct RolesTests {
    @Test(arguments: ["admin", "a", "billing:read", "team.ops-1_x", String(repeating: "r", count: 64)])
    func validNames(_ name: String) {
        #expect(Roles.isValid(name))
    }

    @Test(arguments: ["", "Admin", "two words", "a,b", "é", "a/b", String(repeating: "r", count: 65), "a\u{0}"])
    func invalidNames(_ name: String) {
        #expect(!Roles.isValid(name))
        #expect(throws: AuthError.self) { try Roles.validate(name) }
    }

    @Test func aSetIsSortedWithoutDuplicatesAndAtMost32() throws {
        #expect(try Roles.validate(["b", "a", "b"]) == ["a", "b"])
        #expect(try Roles.validate((0..<32).map { "r\($0)" }).count == 32)
        #expect(throws: AuthError.self) { try Roles.validate((0..<33).map { "r\($0)" }) }
    }

    @Test func appMetadataIsAtMost4KiBAsJSON() throws {
        // {"k":"..."} is 8 bytes plus the value.
        try Roles.validate(appMetadata: ["k": .string(String(repeating: "x", count: 4096 - 8))])
        #expect(throws: AuthError.self) {
            try Roles.validate(appMetadata: ["k": .string(String(repeating: "x", count: 4096 - 7))])
        }
    }

    @Test func limitCursorAndQueryAreChecked() throws {
        #expect(try AdminController.limit(nil) == 50)
        #expect(try AdminController.limit("1") == 1)
        #expect(try AdminController.limit("100") == 100)
        for bad in ["0", "101", "", "+5", " 5", "5x", "99999999999999999999"] {
            #expect(throws: AuthError.self, "\(bad)") { try AdminController.limit(bad) }
        }
        let cursor = AdminController.cursor(after: "Alice")
        #expect(try AdminController.username(fromCursor: cursor) == "Alice")
        for bad in ["", "***", "QWxpY2U", AdminController.cursor(after: "no spaces allowed")] {
            #expect(throws: AuthError.self, "\(bad)") { try AdminController.username(fromCursor: bad) }
        }
        #expect(try AdminController.query("") == nil)
        #expect(throws: AuthError.self) { try AdminController.query(String(repeating: "q", count: 65)) }
    }
}
