public import MicroHTTP

/// Security events, one structured log line each: what happened, when (the
/// logger's timestamp), from which client address, to which account. Never a
/// password, a token or a secret: the fields are chosen here, not passed through.
///
/// Text format: `2026-11-25T10:00:00Z warning security event=login_failed
/// client_ip=192.0.2.7 username=alice reason=wrong_password
/// request_id=Yp3kT0qZ_v8wLmA`; with
/// `GATEHOUSE_LOG_FORMAT=json`, the same fields as one JSON object.
public struct AuditLog: Sendable {
    /// Everything a security event can be.
    public enum Event: String, Sendable, CaseIterable {
        case registered = "register"
        case loginSucceeded = "login"
        case loginFailed = "login_failed"
        case rateLimited = "rate_limited"
        case refreshReuseDetected = "refresh_reuse_detected"
        case logout
        case passwordChanged = "password_changed"
        case accountDeleted = "account_deleted"
        /// Admin API and `gatehouse users`: fields `actor` (`actor_id`, or
        /// `via=cli`), `action`, `target` (`target_id`), and what changed;
        /// never a password, a token or the app claims' contents.
        case adminAction = "admin_action"
        /// A caller without the `admin` role asked the admin API.
        case adminForbidden = "admin_forbidden"

        var level: Logger.Level {
            switch self {
            case .loginFailed, .rateLimited, .refreshReuseDetected, .adminForbidden: .warning
            default: .info
            }
        }
    }

    /// The logger every line goes to; controllers log their other lines here too.
    public let logger: Logger
    let proxies: TrustedProxies

    public init(logger: Logger, proxies: TrustedProxies) {
        self.logger = logger
        self.proxies = proxies
    }

    /// Writes one event line: `event`, `client_ip`, then `fields` in order,
    /// then `request_id` (the request's `X-Request-Id`, which the server
    /// settles before any handler runs, so the event and the request's own
    /// log line carry the same one).
    public func record(_ event: Event, _ request: Request, _ fields: KeyValuePairs<String, String> = [:]) {
        record(event, request, fields.map { ($0.key, $0.value) })
    }

    /// Writes one event line, as `record(_:_:_:)` does, with fields built at run time.
    public func record(_ event: Event, _ request: Request, _ fields: [(String, String)]) {
        guard event.level >= logger.level else { return }
        var line = [("event", event.rawValue), ("client_ip", clientAddress(of: request))]
        line.append(contentsOf: fields)
        if let requestID = request.headers[RequestID.headerName], RequestID.isAcceptable(requestID) {
            line.append(("request_id", requestID))
        }
        logger.log(event.level, "security", fields: line)
    }

    /// Writes one event line for something done from the command line
    /// (`gatehouse users ...`): `event`, `via=cli`, then `fields` in order.
    public func recordCommand(_ event: Event, _ fields: KeyValuePairs<String, String> = [:]) {
        guard event.level >= logger.level else { return }
        var line = [("event", event.rawValue), ("via", "cli")]
        line.append(contentsOf: fields.map { ($0.key, $0.value) })
        logger.log(event.level, "security", fields: line)
    }

    /// A username as a log line may show it: as given when it is a valid
    /// username, else `(invalid)`. People type passwords into the username
    /// field; most passwords are not valid usernames, and those never reach a log.
    public static func loggable(username: String) -> String {
        (try? CredentialRules.validateUsername(username)) != nil ? username : "(invalid)"
    }

    /// The client's address as logged: through trusted proxies, `-` if unknown.
    func clientAddress(of request: Request) -> String {
        proxies.clientAddress(of: request)?.description ?? "-"
    }
}
