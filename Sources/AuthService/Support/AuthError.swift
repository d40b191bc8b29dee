public import MicroHTTP

/// Every failure a client can cause, with its HTTP status and stable code.
/// Controllers throw these; MicroHTTP renders `{"error","message"}`.
public struct AuthError: HTTPResponseError, Equatable {
    public let status: Int
    public let errorCode: String
    public let message: String
    public let responseHeaders: HTTPHeaders

    init(_ status: Int, _ code: String, _ message: String, headers: HTTPHeaders = [:]) {
        self.status = status
        self.errorCode = code
        self.message = message
        self.responseHeaders = headers
    }

    public static func invalidRequest(_ message: String) -> AuthError { AuthError(400, "invalid_request", message) }

    public static func weakPassword(_ message: String) -> AuthError { AuthError(400, "weak_password", message) }

    public static let unsupportedMediaType = AuthError(
        415, "unsupported_media_type", "Send the request body as JSON with Content-Type: application/json.")

    public static let usernameTaken = AuthError(409, "username_taken", "That username is already registered.")

    /// The one answer to a failed login, whatever failed: unknown user and
    /// wrong password must be indistinguishable.
    public static let invalidCredentials = AuthError(401, "invalid_credentials", "Invalid username or password.")

    /// No credentials at all (RFC 6750 section 3: the challenge carries no error code).
    public static let tokenMissing = AuthError(
        401, "token_missing", "An access token is required: send it as Authorization: Bearer followed by the token.",
        headers: ["WWW-Authenticate": #"Bearer realm="gatehouse""#])

    /// Credentials that were refused (RFC 6750 section 3.1).
    public static func invalidToken(_ reason: String) -> AuthError {
        let description = reason.replacingOccurrences(of: "\"", with: "'")
        return AuthError(
            401, "invalid_token", "The access token is invalid: \(reason).",
            headers: [
                "WWW-Authenticate": #"Bearer realm="gatehouse", error="invalid_token", error_description=""#
                    + description + "\""
            ])
    }

    /// A refresh token that is unknown, expired, consumed or of an ended session.
    public static let invalidRefreshToken = AuthError(
        401, "invalid_token", "The refresh token is invalid, expired or already used; log in again.")

    /// Too many attempts from this client (or at this username): wait.
    public static func rateLimited(retryAfter: Int) -> AuthError {
        AuthError(
            429, "rate_limited", "Too many attempts; retry in \(retryAfter) second\(retryAfter == 1 ? "" : "s").",
            headers: ["Retry-After": String(retryAfter)])
    }

    /// A valid token without the role the request needs.
    public static func forbidden(_ message: String) -> AuthError { AuthError(403, "forbidden", message) }

    /// A request that would leave the service in a state it refuses (an
    /// administrator locking themselves out through the API, say).
    public static func conflict(_ message: String) -> AuthError { AuthError(409, "conflict", message) }

    /// No such resource (an unknown user id on the admin API, say).
    public static func notFound(_ message: String) -> AuthError { AuthError(404, "not_found", message) }

    public static let storeUnavailable = AuthError(
        503, "unavailable", "The user store is not available right now; retry shortly.", headers: ["Retry-After": "2"])
}
