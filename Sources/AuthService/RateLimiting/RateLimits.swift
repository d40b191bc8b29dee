public import MicroHTTP

/// Which limiter guards which route, and by what key. Every check runs on the
/// server's thread before the request is queued for work (see
/// `Router.add(_:_:on:admission:_:)`), so a refused attempt costs no hash and
/// no queue slot.
///
/// - `POST /login`: per client address (every attempt), then per username
///   (failed attempts: a login that succeeds gives its token back, and does
///   nothing to the budget other attempts used up).
/// - `POST /register`, `POST /refresh`: per client address.
///
/// Over a limit: 429 `rate_limited` with `Retry-After`, and a security event.
public struct RateLimits: Sendable {
    /// Attempts per minute; 0 turns a limit off.
    public struct Settings: Sendable, Equatable {
        public var loginPerIP = 30
        public var loginPerUsername = 10
        public var registerPerIP = 10
        public var refreshPerIP = 60

        public init() {}

        /// Every limit off (tests that are not about limits).
        public static var disabled: Settings {
            var settings = Settings()
            settings.loginPerIP = 0
            settings.loginPerUsername = 0
            settings.registerPerIP = 0
            settings.refreshPerIP = 0
            return settings
        }
    }

    let loginByAddress: RateLimiter<IPAddress>?
    let loginByUsername: RateLimiter<String>?
    let registerByAddress: RateLimiter<IPAddress>?
    let refreshByAddress: RateLimiter<IPAddress>?
    let audit: AuditLog
    let metrics: GatehouseMetrics

    /// - Parameter metrics: where refusals are counted, by limit and as the
    ///   outcome of the login, registration or refresh they refused.
    public init(
        _ settings: Settings, audit: AuditLog, clock: WallClock, metrics: GatehouseMetrics = GatehouseMetrics()
    ) {
        func limiter<Key>(_ perMinute: Int) -> RateLimiter<Key>? {
            perMinute > 0 ? RateLimiter(perMinute: perMinute, clock: clock) : nil
        }
        loginByAddress = limiter(settings.loginPerIP)
        loginByUsername = limiter(settings.loginPerUsername)
        registerByAddress = limiter(settings.registerPerIP)
        refreshByAddress = limiter(settings.refreshPerIP)
        self.audit = audit
        self.metrics = metrics
    }

    /// Admission for `POST /login`.
    @Sendable public func admitLogin(_ request: Request) throws(AuthError) {
        try take(loginByAddress, address(of: request), .loginIP, request)
        guard let limiter = loginByUsername, let key = Self.usernameKey(in: request) else { return }
        try take(limiter, key, .loginUsername, request, username: key)
    }

    /// A login succeeded: the token its attempt took from the username's
    /// failure budget goes back.
    func loginSucceeded(username: String) {
        guard let key = Self.usernameKey(username) else { return }
        loginByUsername?.refund(key)
    }

    /// Admission for `POST /register`.
    @Sendable public func admitRegistration(_ request: Request) throws(AuthError) {
        try take(registerByAddress, address(of: request), .registerIP, request)
    }

    /// Admission for `POST /refresh`.
    @Sendable public func admitRefresh(_ request: Request) throws(AuthError) {
        try take(refreshByAddress, address(of: request), .refreshIP, request)
    }

    private func address(of request: Request) -> IPAddress? {
        audit.proxies.clientAddress(of: request)?.clientKey
    }

    private func take<Key>(
        _ limiter: RateLimiter<Key>?, _ key: Key?, _ limit: RateLimitName, _ request: Request, username: String? = nil
    ) throws(AuthError) {
        guard let limiter, let key, case .limited(let retryAfter) = limiter.take(key) else { return }
        metrics.rateLimited.increment(limit)
        switch limit {
        case .loginIP, .loginUsername: metrics.logins.increment(.rateLimited)
        case .registerIP: metrics.registrations.increment(.rateLimited)
        case .refreshIP: metrics.refreshes.increment(.rateLimited)
        }
        if let username {
            audit.record(
                .rateLimited, request, ["limit": limit.labelValue, "username": AuditLog.loggable(username: username)])
        } else {
            audit.record(.rateLimited, request, ["limit": limit.labelValue])
        }
        throw AuthError.rateLimited(retryAfter: retryAfter)
    }

    /// The username a login body names, as the limit counts it (lowercased:
    /// names are unique without regard to case). nil when the body is not
    /// JSON with a string `username`, or the name could never be valid: the
    /// handler answers those, and an unbounded key must never be stored.
    static func usernameKey(in request: Request) -> String? {
        guard let username = try? JSONBody(request).string("username") else { return nil }
        return usernameKey(username)
    }

    static func usernameKey(_ username: String) -> String? {
        guard CredentialRules.usernameLength.contains(username.utf8.count) else { return nil }
        return username.lowercased()
    }
}
