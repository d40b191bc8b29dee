@testable import AuthService
import JOSE
import JSON
import Testing

/// The key life cycle as a function of time: pending, active, retiring, retired.
@Suite struct KeyScheduleTests {
    static let lifetime: Int64 = 3630

    static func key(_ kid: String, activates: Int64, created: Int64 = 0, algorithm: JWSAlgorithm = .es256) -> ManagedKey {
        ManagedKey(kid: kid, algorithm: algorithm, created: created, activates: activates, file: "keys/\(kid).pem")
    }

    func states(_ schedule: KeySchedule, at now: Int64) -> [String: KeyState] {
        var result: [String: KeyState] = [:]
        for (key, state) in schedule.states(at: now, tokenLifetime: Self.lifetime) { result[key.kid] = state }
        return result
    }

    @Test func oneKeySignsForever() {
        let schedule = KeySchedule(keys: [Self.key("a", activates: 100)])
        #expect(states(schedule, at: 100) == ["a": .active])
        #expect(states(schedule, at: 10_000_000) == ["a": .active])
        #expect(schedule.nextChange(after: 100, tokenLifetime: Self.lifetime) == nil)
    }

    @Test func aRotatedInKeyIsPendingThenSignsAndTheOldOneRetiresAfterTheTokenLifetime() {
        // Rotation at 1000 with a 600 s publish delay.
        let schedule = KeySchedule(keys: [Self.key("old", activates: 0), Self.key("new", activates: 1600, created: 1000)])
        #expect(states(schedule, at: 1000) == ["old": .active, "new": .pending])
        #expect(states(schedule, at: 1599) == ["old": .active, "new": .pending])
        #expect(schedule.nextChange(after: 1000, tokenLifetime: Self.lifetime) == 1600)
        let retires = 1600 + Self.lifetime
        #expect(states(schedule, at: 1600) == ["old": .retiring(until: retires), "new": .active])
        #expect(states(schedule, at: retires - 1) == ["old": .retiring(until: retires), "new": .active])
        #expect(schedule.nextChange(after: 1600, tokenLifetime: Self.lifetime) == retires)
        #expect(states(schedule, at: retires) == ["old": .retired(since: retires), "new": .active])
        #expect(KeyState.retired(since: 0).verifies == false)
        #expect(KeyState.retiring(until: 0).verifies && KeyState.pending.verifies && KeyState.active.verifies)
    }

    @Test func theKeyThatStartedLastSignsWhateverTheOrderOfTheList() {
        let schedule = KeySchedule(keys: [
            Self.key("c", activates: 300), Self.key("a", activates: 100), Self.key("b", activates: 200),
        ])
        #expect(schedule.activeKey(at: 250, tokenLifetime: Self.lifetime)?.kid == "b")
        #expect(states(schedule, at: 250)["a"] == .retiring(until: 200 + Self.lifetime))
        #expect(states(schedule, at: 250)["c"] == .pending)
        #expect(schedule.newest?.kid == "c")
    }

    @Test func whenNoKeyHasStartedTheFirstToStartSignsAnyway() {
        // A clock set back before every key: refusing to sign would be worse.
        let schedule = KeySchedule(keys: [Self.key("b", activates: 200), Self.key("a", activates: 100)])
        #expect(schedule.activeKey(at: 50, tokenLifetime: Self.lifetime)?.kid == "a")
        #expect(states(schedule, at: 50)["b"] == .pending)
    }

    @Test func removingRetiredKeysKeepsEveryKeyThatStillVerifies() {
        var schedule = KeySchedule(keys: [
            Self.key("a", activates: 0), Self.key("b", activates: 100), Self.key("c", activates: 100_000),
        ])
        let removed = schedule.removeRetired(at: 100 + Self.lifetime, tokenLifetime: Self.lifetime)
        #expect(removed.map(\.kid) == ["a"])
        #expect(schedule.keys.map(\.kid) == ["b", "c"])
        #expect(schedule.removeRetired(at: 100 + Self.lifetime, tokenLifetime: Self.lifetime).isEmpty)
    }

    @Test func theListRoundTripsThroughItsJSON() throws {
        let schedule = KeySchedule(keys: [
            Self.key("a", activates: 0, algorithm: .hs256), Self.key("b", activates: 1_800_000_600, created: 1_800_000_000),
        ])
        let parsed = try KeySchedule(parsing: schedule.json.serialized())
        #expect(parsed == schedule)
    }

    @Test(arguments: [
        (#"[]"#, "not a JSON object"),
        (#"{"version":2,"keys":[]}"#, "unknown version"),
        (#"{"version":1}"#, "no \"keys\" array"),
        (#"{"version":1,"keys":[{"kid":"a","alg":"HS256","created":0,"activates":0}]}"#, "not a complete key"),
        (#"{"version":1,"keys":[{"kid":"a","alg":"none","created":0,"activates":0,"file":"x"}]}"#, "not a complete key"),
        (#"{"version":1,"keys":[{"kid":"a","alg":"ES256","created":0,"activates":0,"file":"../../etc/passwd"}]}"#,
         "not a complete key"),
        (#"{"version":1,"keys":[{"kid":"a","alg":"ES256","created":0,"activates":0,"file":"/etc/passwd"}]}"#,
         "not a complete key"),
        (
            #"{"version":1,"keys":[{"kid":"a","alg":"ES256","created":0,"activates":0,"file":"keys/a.pem"},"#
                + #"{"kid":"a","alg":"ES256","created":0,"activates":5,"file":"keys/b.pem"}]}"#, "names a twice"
        ),
    ])
    func aDamagedListIsRefusedWithAReason(text: String, reason: String) {
        #expect {
            _ = try KeySchedule(parsing: Array(text.utf8))
        } throws: { error in
            (error as? KeyStoreError)?.message.contains(reason) == true
        }
    }
}
