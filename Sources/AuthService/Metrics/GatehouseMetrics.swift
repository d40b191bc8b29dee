public import MicroHTTP

/// What Gatehouse counts about its own work, for `GET /metrics`: logins,
/// registrations, refreshes, token checks and rate-limit refusals by
/// outcome. The controllers, `TokenService` and `RateLimits` count into one
/// shared instance (each takes it in its initialiser; the default is a
/// fresh one nobody exports); `register(in:...)` exports it with the
/// service's gauges.
///
/// Every counter is made up front, one per outcome, and counting is one
/// relaxed atomic add on the thread's own cache line (`LabelledCounters`).
public final class GatehouseMetrics: Sendable {
    /// `gatehouse_logins_total{outcome}`.
    public let logins = LabelledCounters<LoginOutcome>()
    /// `gatehouse_registrations_total{outcome}`.
    public let registrations = LabelledCounters<RegistrationOutcome>()
    /// `gatehouse_refreshes_total{outcome}`.
    public let refreshes = LabelledCounters<RefreshOutcome>()
    /// `gatehouse_token_verifications_total{result}`: every access token
    /// checked (`/protected`, `/auth/verify`, `/logout`, `/me`, ...).
    public let tokenVerifications = LabelledCounters<TokenVerificationResult>()
    /// `gatehouse_rate_limited_total{limit}`.
    public let rateLimited = LabelledCounters<RateLimitName>()

    /// Every counter at 0, exported nowhere yet.
    public init() {}

    /// Exports the counters, and gauges read when scraped: the hashing and
    /// store queues, the revoked sessions held in memory, the signing keys
    /// by state, the signature cache, and the version.
    /// - Parameters:
    ///   - registry: what `GET /metrics` renders.
    ///   - hashingPool: its queue is `gatehouse_hash_queue_depth`.
    ///   - storePool: its queue is `gatehouse_store_queue_depth`.
    ///   - tokens: its revocation list and keys are read when scraped.
    public func register(
        in registry: MetricsRegistry, hashingPool: WorkerPool, storePool: WorkerPool, tokens: TokenService
    ) {
        registry.gauge(
            "gatehouse_build_info", help: "Always 1; the version label names the running release.",
            label: "version"
        ) { [(Version.current, 1)] }
        registry.register(
            logins, name: "gatehouse_logins_total",
            help: "POST /login attempts by outcome (requests refused with 503 overloaded before the check are "
                + "only in gatehouse_http_requests_total).",
            label: "outcome")
        registry.register(
            registrations, name: "gatehouse_registrations_total", help: "POST /register attempts by outcome.",
            label: "outcome")
        registry.register(
            refreshes, name: "gatehouse_refreshes_total",
            help: "POST /refresh attempts by outcome; reuse_detected revoked a whole session.", label: "outcome")
        registry.register(
            tokenVerifications, name: "gatehouse_token_verifications_total",
            help: "Access tokens checked, by result.", label: "result")
        registry.register(
            rateLimited, name: "gatehouse_rate_limited_total", help: "Requests refused with 429, by limit.",
            label: "limit")
        registry.gauge(
            "gatehouse_hash_queue_depth", help: "Password-hashing jobs waiting for a worker."
        ) { Double(hashingPool.queueDepth) }
        registry.gauge(
            "gatehouse_store_queue_depth",
            help: "Store jobs (refresh, logout, /me, the admin API) waiting for a worker."
        ) { Double(storePool.queueDepth) }
        registry.gauge(
            "gatehouse_revoked_sessions", help: "Ended sessions held in memory, whose access tokens are refused."
        ) { Double(tokens.revocations.count) }
        let keys = tokens.keys
        registry.gauge(
            "gatehouse_signing_keys", help: "Signing keys by state (a configured key counts as active).",
            label: "state"
        ) {
            let states = keys.keySet.states
            guard !states.isEmpty else { return [("pending", 0), ("active", 1), ("retiring", 0), ("retired", 0)] }
            return ["pending", "active", "retiring", "retired"].map { name in
                (name, Double(states.count(where: { $0.state.name == name })))
            }
        }
        registry.gauge(
            "gatehouse_signature_cache_entries",
            help: "Verified asymmetric signatures remembered (0 without a cache: HS256, or the cache off)."
        ) { Double(keys.keySet.verifier.signatureCacheStatistics?.entries ?? 0) }
        registry.counter(
            "gatehouse_signature_cache_hits_total",
            help: "Token checks that found their signature already verified (restarts when the keys change)."
        ) { Double(keys.keySet.verifier.signatureCacheStatistics?.hits ?? 0) }
        registry.counter(
            "gatehouse_signature_cache_misses_total",
            help: "Token checks that verified their signature (restarts when the keys change)."
        ) { Double(keys.keySet.verifier.signatureCacheStatistics?.misses ?? 0) }
    }
}

// MARK: - Outcomes

/// An outcome label that can be read off the error a handler threw.
public protocol ErrorOutcome: MetricLabelValue {
    /// The outcome a request that threw `error` had.
    init(error: any Error)
}

extension LabelledCounters where Label: ErrorOutcome {
    /// Runs `body` and counts its outcome: `success` when it returns, else
    /// what its error says. The error is thrown on.
    func counting<T>(success: Label, _ body: () throws -> T) rethrows -> T {
        do {
            let result = try body()
            increment(success)
            return result
        } catch {
            increment(Label(error: error))
            throw error
        }
    }
}

/// The stable code of an error a client was answered with, if it has one.
private func errorCode(_ error: any Error) -> String? {
    (error as? any HTTPResponseError)?.errorCode
}

/// How a `POST /login` ended.
public enum LoginOutcome: Int, ErrorOutcome {
    case success, invalidCredentials, rateLimited, invalidRequest, unavailable, error

    public var labelValue: String {
        switch self {
        case .success: "success"
        case .invalidCredentials: "invalid_credentials"
        case .rateLimited: "rate_limited"
        case .invalidRequest: "invalid_request"
        case .unavailable: "unavailable"
        case .error: "error"
        }
    }

    public init(error: any Error) {
        switch errorCode(error) {
        case "invalid_credentials": self = .invalidCredentials
        case "rate_limited": self = .rateLimited
        case "invalid_request", "unsupported_media_type": self = .invalidRequest
        case "unavailable", "overloaded": self = .unavailable
        default: self = .error
        }
    }
}

/// How a `POST /register` ended.
public enum RegistrationOutcome: Int, ErrorOutcome {
    case success, usernameTaken, weakPassword, invalidRequest, rateLimited, unavailable, error

    public var labelValue: String {
        switch self {
        case .success: "success"
        case .usernameTaken: "username_taken"
        case .weakPassword: "weak_password"
        case .invalidRequest: "invalid_request"
        case .rateLimited: "rate_limited"
        case .unavailable: "unavailable"
        case .error: "error"
        }
    }

    public init(error: any Error) {
        switch errorCode(error) {
        case "username_taken": self = .usernameTaken
        case "weak_password": self = .weakPassword
        case "invalid_request", "unsupported_media_type": self = .invalidRequest
        case "rate_limited": self = .rateLimited
        case "unavailable", "overloaded": self = .unavailable
        default: self = .error
        }
    }
}

/// How a `POST /refresh` ended.
public enum RefreshOutcome: Int, ErrorOutcome {
    case success, invalidToken, reuseDetected, invalidRequest, rateLimited, unavailable, error

    public var labelValue: String {
        switch self {
        case .success: "success"
        case .invalidToken: "invalid_token"
        case .reuseDetected: "reuse_detected"
        case .invalidRequest: "invalid_request"
        case .rateLimited: "rate_limited"
        case .unavailable: "unavailable"
        case .error: "error"
        }
    }

    public init(error: any Error) {
        if error is RefreshTokenReused {
            self = .reuseDetected
            return
        }
        switch errorCode(error) {
        case "invalid_token": self = .invalidToken
        case "invalid_request", "unsupported_media_type": self = .invalidRequest
        case "rate_limited": self = .rateLimited
        case "unavailable", "overloaded": self = .unavailable
        default: self = .error
        }
    }
}

/// A consumed refresh token was presented again and its session revoked:
/// answered as `AuthError.invalidRefreshToken`, counted as `reuse_detected`.
struct RefreshTokenReused: HTTPResponseError {
    var status: Int { AuthError.invalidRefreshToken.status }
    var errorCode: String { AuthError.invalidRefreshToken.errorCode }
    var message: String { AuthError.invalidRefreshToken.message }
    var responseHeaders: HTTPHeaders { AuthError.invalidRefreshToken.responseHeaders }
}

/// What checking an access token found.
public enum TokenVerificationResult: Int, MetricLabelValue {
    /// Accepted.
    case valid
    /// No token: no `Authorization` header, or an empty one.
    case missing
    /// Refused: malformed, a bad signature, an unknown key, wrong claims, ...
    case invalid
    /// Refused: past its `exp` (beyond the leeway).
    case expired
    /// Refused: its session has ended (logout, password change, refresh-token reuse).
    case revoked

    public var labelValue: String {
        switch self {
        case .valid: "valid"
        case .missing: "missing"
        case .invalid: "invalid"
        case .expired: "expired"
        case .revoked: "revoked"
        }
    }
}

/// Which rate limit refused a request (`RateLimits`).
public enum RateLimitName: Int, MetricLabelValue {
    case loginIP, loginUsername, registerIP, refreshIP

    /// Also the `limit` field of the `rate_limited` security event.
    public var labelValue: String {
        switch self {
        case .loginIP: "login_ip"
        case .loginUsername: "login_username"
        case .registerIP: "register_ip"
        case .refreshIP: "refresh_ip"
        }
    }
}
