/// An error that knows how it looks over HTTP. Handlers throw these; the
/// server renders every one the same way: the status, the headers and
/// `{"error": errorCode, "message": message}`.
public protocol HTTPResponseError: Error {
    /// The HTTP status code (4xx or 5xx).
    var status: Int { get }
    /// A stable snake_case code clients can branch on (`invalid_token`).
    var errorCode: String { get }
    /// A sentence for a person.
    var message: String { get }
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    var responseHeaders: HTTPHeaders { get }
}

extension HTTPResponseError {
    public var responseHeaders: HTTPHeaders { [:] }

    /// The response this error renders as.
    public var response: Response {
        .error(status: status, code: errorCode, message: message, headers: responseHeaders)
    }
}

/// A plain HTTP error for the cases MicroHTTP itself produces and for
/// handlers that need nothing more specific.
public struct HTTPError: HTTPResponseError, Equatable {
    public let status: Int
    public let errorCode: String
    public let message: String
    public let responseHeaders: HTTPHeaders

    public init(status: Int, code: String, message: String, headers: HTTPHeaders = [:]) {
        self.status = status
        self.errorCode = code
        self.message = message
        self.responseHeaders = headers
    }

    /// A request that breaks HTTP's own rules (framing, Host, target).
    public static func badRequest(_ message: String) -> HTTPError {
        HTTPError(status: 400, code: "invalid_request", message: message, headers: ["Connection": "close"])
    }

    /// A method this server does not know at all (RFC 9110 section 9.1).
    public static func notImplemented(_ method: HTTPMethod) -> HTTPError {
        HTTPError(status: 501, code: "not_implemented", message: "The method \(method.rawValue) is not supported.")
    }

    public static func notFound(_ path: String) -> HTTPError {
        HTTPError(status: 404, code: "not_found", message: "No resource at \(path).")
    }

    public static func methodNotAllowed(_ method: HTTPMethod, allowed: [HTTPMethod]) -> HTTPError {
        HTTPError(
            status: 405, code: "method_not_allowed",
            message: "\(method.rawValue) is not allowed here; use \(allowed.map(\.rawValue).joined(separator: ", ")).",
            headers: ["Allow": allowed.map(\.rawValue).joined(separator: ", ")])
    }

    public static func payloadTooLarge(limit: Int) -> HTTPError {
        HTTPError(
            status: 413, code: "payload_too_large",
            message: "The request body is larger than the limit of \(limit) bytes.")
    }

    public static let internalError = HTTPError(
        status: 500, code: "internal_error", message: "The server failed to handle the request.")

    /// The worker pool's queue is full: the client should retry shortly.
    public static let overloaded = HTTPError(
        status: 503, code: "overloaded", message: "The server is busy; retry shortly.", headers: ["Retry-After": "1"])

    public static func unavailable(_ message: String, retryAfter: Int) -> HTTPError {
        HTTPError(status: 503, code: "unavailable", message: message, headers: ["Retry-After": String(retryAfter)])
    }
}
