import AuthService
import JSON
import MicroHTTP
import Testing

/// Token buckets and the login/registration/refresh policy, with a clock the
/// test moves: no sleeping, no socket.
@Suite struct RateLimiterTests {
    @Test func aBucketAllowsItsBurstThenRefusesWithTheWaitForOneToken() {
        let time = ManualClock()
        let limiter = RateLimiter<String>(perMinute: 6, clock: time.clock)
        for _ in 0..<6 { #expect(limiter.take("k") == .allowed) }
        // 6 per minute: one token every 10 s.
        #expect(limiter.take("k") == .limited(retryAfter: 10))
        time.advance(by: 4)
        #expect(limiter.take("k") == .limited(retryAfter: 6))
        time.advance(by: 6)
        #expect(limiter.take("k") == .allowed)
        #expect(limiter.take("k") == .limited(retryAfter: 10))
        // Other keys have their own bucket.
        #expect(limiter.take("other") == .allowed)
    }

    @Test func aBucketRefillsToItsBurstAndNoFurther() {
        let time = ManualClock()
        let limiter = RateLimiter<String>(perMinute: 3, clock: time.clock)
        for _ in 0..<3 { #expect(limiter.take("k") == .allowed) }
        time.advance(by: 3600)
        for _ in 0..<3 { #expect(limiter.take("k") == .allowed) }
        #expect(limiter.take("k") != .allowed)
    }

    @Test func aRefundGivesBackOneTokenAndNoMoreThanTheBurst() {
        let time = ManualClock()
        let limiter = RateLimiter<String>(perMinute: 2, clock: time.clock)
        #expect(limiter.take("k") == .allowed)
        #expect(limiter.take("k") == .allowed)
        limiter.refund("k")
        #expect(limiter.take("k") == .allowed)
        #expect(limiter.take("k") != .allowed)
        limiter.refund("k")
        limiter.refund("k")
        limiter.refund("k")
        #expect(limiter.take("k") == .allowed)
        #expect(limiter.take("k") == .allowed)
        #expect(limiter.take("k") != .allowed)
        // A refund for a key never seen stores nothing.
        limiter.refund("never")
        #expect(limiter.count == 1)
    }

    @Test func aFloodOfDistinctKeysStaysWithinTheCapacity() {
        let time = ManualClock()
        let limiter = RateLimiter<Int>(perMinute: 10, capacity: 1024, clock: time.clock)
        for key in 0..<200_000 {
            _ = limiter.take(key)
            if key % 1000 == 0 { time.advance(by: 0.01) }
        }
        #expect(limiter.count <= 1024)
        #expect(limiter.count >= 256)
    }
}

/// The policy over `Request` values, as the server's admission step runs it.
@Suite struct RateLimitsTests {
    static func login(_ username: String, from address: String, headers: HTTPHeaders = [:]) -> Request {
        var headers = headers
        headers.add("Content-Type", "application/json")
        return Request(
            method: .post, path: "/login", headers: headers,
            body: JSONValue.object(["username": .string(username), "password": "whatever1"]).serialized(),
            remoteAddress: address)
    }

    static func limits(
        _ change: (inout RateLimits.Settings) -> Void, proxies: TrustedProxies = TrustedProxies(),
        clock: ManualClock = ManualClock(), logs: MemoryLogSink = MemoryLogSink()
    ) -> RateLimits {
        var settings = RateLimits.Settings.disabled
        change(&settings)
        return RateLimits(
            settings, audit: AuditLog(logger: Logger(level: .debug, sink: logs), proxies: proxies), clock: clock.clock)
    }

    static func status(_ body: () throws -> Void) -> Int {
        do {
            try body()
            return 200
        } catch let error as AuthError {
            return error.status
        } catch {
            return 0
        }
    }

    @Test func loginsArePerClientAddress() {
        let limits = Self.limits { $0.loginPerIP = 3 }
        for number in 0..<3 {
            #expect(Self.status { try limits.admitLogin(Self.login("user\(number)", from: "192.0.2.1")) } == 200)
        }
        #expect(Self.status { try limits.admitLogin(Self.login("user9", from: "192.0.2.1")) } == 429)
        #expect(Self.status { try limits.admitLogin(Self.login("user9", from: "192.0.2.2")) } == 200)
    }

    @Test func theUsernameBudgetIsSharedByEveryAddressAndAnyCase() {
        let logs = MemoryLogSink()
        let limits = Self.limits({ $0.loginPerUsername = 2 }, logs: logs)
        #expect(Self.status { try limits.admitLogin(Self.login("alice", from: "192.0.2.1")) } == 200)
        #expect(Self.status { try limits.admitLogin(Self.login("ALICE", from: "192.0.2.2")) } == 200)
        #expect(Self.status { try limits.admitLogin(Self.login("Alice", from: "192.0.2.3")) } == 429)
        #expect(Self.status { try limits.admitLogin(Self.login("bob", from: "192.0.2.3")) } == 200)
        let line = logs.lines.last ?? ""
        #expect(line.contains("event=rate_limited"))
        #expect(line.contains("limit=login_username"))
        #expect(line.contains("client_ip=192.0.2.3"))
        #expect(line.contains("username=alice"))
    }

    @Test func aRefusalCarriesRetryAfter() throws {
        let limits = Self.limits { $0.loginPerIP = 1 }
        try limits.admitLogin(Self.login("alice", from: "192.0.2.1"))
        do {
            try limits.admitLogin(Self.login("alice", from: "192.0.2.1"))
            Issue.record("expected a 429")
        } catch {
            #expect(error.status == 429)
            #expect(error.errorCode == "rate_limited")
            #expect(error.responseHeaders["Retry-After"] == "60")
        }
    }

    @Test func aBodyThatNamesNoValidUsernameIsLeftToTheHandler() {
        let limits = Self.limits { $0.loginPerUsername = 1 }
        let huge = String(repeating: "x", count: 10_000)
        for _ in 0..<5 {
            #expect(Self.status { try limits.admitLogin(Self.login(huge, from: "192.0.2.1")) } == 200)
            let notJSON = Request(method: .post, path: "/login", body: Array("nope".utf8), remoteAddress: "192.0.2.1")
            #expect(Self.status { try limits.admitLogin(notJSON) } == 200)
        }
    }

    @Test func forwardedForCountsOnlyThroughTrustedProxies() throws {
        let proxies = try #require(TrustedProxies(parsing: "10.0.0.0/8"))
        let limits = Self.limits({ $0.loginPerIP = 1 }, proxies: proxies)
        // Through the proxy, two clients are two budgets.
        let viaProxy1 = Self.login("a1234", from: "10.0.0.2", headers: ["X-Forwarded-For": "198.51.100.1"])
        let viaProxy2 = Self.login("a1234", from: "10.0.0.2", headers: ["X-Forwarded-For": "198.51.100.2"])
        #expect(Self.status { try limits.admitLogin(viaProxy1) } == 200)
        #expect(Self.status { try limits.admitLogin(viaProxy2) } == 200)
        #expect(Self.status { try limits.admitLogin(viaProxy1) } == 429)
        // A direct client cannot buy a fresh budget with a forged header.
        let forged1 = Self.login("a1234", from: "203.0.113.7", headers: ["X-Forwarded-For": "198.51.100.3"])
        let forged2 = Self.login("a1234", from: "203.0.113.7", headers: ["X-Forwarded-For": "198.51.100.4"])
        #expect(Self.status { try limits.admitLogin(forged1) } == 200)
        #expect(Self.status { try limits.admitLogin(forged2) } == 429)
    }

    @Test func registrationAndRefreshHaveTheirOwnBudgets() {
        let limits = Self.limits {
            $0.registerPerIP = 1
            $0.refreshPerIP = 2
        }
        let request = Request(method: .post, path: "/x", remoteAddress: "192.0.2.1")
        #expect(Self.status { try limits.admitRegistration(request) } == 200)
        #expect(Self.status { try limits.admitRegistration(request) } == 429)
        #expect(Self.status { try limits.admitRefresh(request) } == 200)
        #expect(Self.status { try limits.admitRefresh(request) } == 200)
        #expect(Self.status { try limits.admitRefresh(request) } == 429)
    }

    @Test func zeroTurnsALimitOff() {
        let limits = Self.limits { _ in }
        for _ in 0..<1000 {
            #expect(Self.status { try limits.admitLogin(Self.login("alice", from: "192.0.2.1")) } == 200)
        }
    }
}
