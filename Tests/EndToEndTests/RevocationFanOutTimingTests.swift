import Foundation
import Testing
import TestSupport

/// Revocation fan-out over LISTEN/NOTIFY: two real instances on one PostgreSQL database, with the
/// revocation feed's timer slowed to once a minute (`GATEHOUSE_REVOCATION_POLL_MS=60000`), so only
/// the notification can explain a fast refusal. A logout on B is refused on A within 100 ms,
/// measured from B's answer to the logout to A's first 401 (A asked over and over on one
/// keep-alive connection). In TIMING_TESTS: it measures milliseconds.
@Suite(.serialized) struct RevocationFanOutTimingTests {
    static let trials = 5

    @Test func aLogoutOnOneInstanceIsRefusedOnTheOtherWithin100Milliseconds() async throws {
        try await withPostgres { postgres in
            try await withTemporaryDirectory { directory in
                let pair = try await InstancePair.start(
                    on: postgres, in: directory,
                    [
                        "GATEHOUSE_JWT_SECRET": "a shared secret of more than thirty-two bytes",
                        "GATEHOUSE_REVOCATION_POLL_MS": "60000",
                        "GATEHOUSE_RATE_LOGIN_PER_IP": "0", "GATEHOUSE_RATE_LOGIN_PER_USERNAME": "0",
                    ])
                let (a, b, onA, onB) = (pair.a, pair.b, pair.onA, pair.onB)
                #expect(
                    try onA.send("POST", "/register", json: ["username": "dave", "password": "secret-password"])
                        .status == 201)

                let elapsed = try await blockingIO { () throws -> [Double] in
                    var elapsed: [Double] = []
                    for _ in 0..<Self.trials {
                        let session = try onB.login("dave", "secret-password")
                        #expect(try onA.get("/protected", bearer: session.access).status == 200)
                        #expect(try onB.post("/logout", bearer: session.access).status == 204)
                        let loggedOut = ContinuousClock.now
                        var refused: Double?
                        while refused == nil, ContinuousClock.now - loggedOut < .seconds(3) {
                            if try onA.get("/protected", bearer: session.access).status == 401 {
                                let duration = ContinuousClock.now - loggedOut
                                refused = Double(duration.components.seconds)
                                    + Double(duration.components.attoseconds) / 1e18
                            }
                        }
                        elapsed.append(refused ?? .infinity)
                    }
                    return elapsed
                }
                let shown = elapsed.map { $0.isFinite ? "\(Int(($0 * 1000).rounded())) ms" : "not refused" }
                // Every one refused, and long before the minute-long poll: the notification did it.
                #expect(elapsed.allSatisfy { $0 < 3 }, "\(shown)")
                #expect(elapsed.count { $0 < 0.1 } >= Self.trials - 1, "\(shown)")
                onA.close()
                onB.close()
                #expect(a.stop() == 0, "\(a.output)")
                #expect(b.stop() == 0, "\(b.output)")
            }
        }
    }
}
