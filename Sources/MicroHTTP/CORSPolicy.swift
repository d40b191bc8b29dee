/// Cross-origin resource sharing for browser clients (the Fetch standard's
/// CORS protocol).
///
/// - With `.any`, every origin gets `Access-Control-Allow-Origin: *`, and
///   credentials are never allowed (browsers refuse `*` with credentials, and
///   Gatehouse takes tokens in the `Authorization` header, not cookies).
/// - With an allow-list, a matching `Origin` is echoed back with
///   `Vary: Origin`; any other origin gets no CORS headers at all, so the
///   browser blocks the response.
public struct CORSPolicy: ResponseFilter {
    public enum AllowedOrigins: Sendable, Equatable {
        case any
        case list([String])
    }

    public var allowedOrigins: AllowedOrigins
    /// Request headers a browser may send cross-origin.
    public var allowedHeaders: [String]
    /// Response headers scripts may read.
    public var exposedHeaders: [String]
    /// How long a browser may cache a preflight answer, in seconds.
    public var maxAge: Int

    public init(
        allowedOrigins: AllowedOrigins = .any,
        allowedHeaders: [String] = ["Authorization", "Content-Type"],
        exposedHeaders: [String] = ["WWW-Authenticate", "Retry-After"],
        maxAge: Int = 600
    ) {
        self.allowedOrigins = allowedOrigins
        self.allowedHeaders = allowedHeaders
        self.exposedHeaders = exposedHeaders
        self.maxAge = maxAge
    }

    /// Parses `GATEHOUSE_CORS_ORIGINS`: `*`, or a comma-separated list of
    /// origins (`https://app.example.com`), compared exactly after trimming
    /// spaces and a trailing slash.
    public static func parseOrigins(_ text: String) -> AllowedOrigins? {
        let trimmed = text.trimmingSpaces()
        if trimmed == "*" { return .any }
        var origins: [String] = []
        for part in trimmed.split(separator: ",") {
            var origin = String(part.trimmingSpaces())
            if origin.hasSuffix("/") { origin.removeLast() }
            guard origin.hasPrefix("http://") || origin.hasPrefix("https://"), !origin.contains("*") else {
                return nil
            }
            origins.append(origin)
        }
        return origins.isEmpty ? nil : .list(origins)
    }

    /// The value for `Access-Control-Allow-Origin`, or nil when this origin
    /// gets no CORS headers.
    func allowOrigin(for origin: String?) -> String? {
        switch allowedOrigins {
        case .any: return "*"
        case .list(let origins):
            guard let origin, origins.contains(origin) else { return nil }
            return origin
        }
    }

    public func apply(to response: inout Response, for request: Request) {
        if case .list = allowedOrigins { response.headers.add("Vary", "Origin") }
        guard let origin = request.headers["Origin"], let allowed = allowOrigin(for: origin) else { return }
        response.headers.add("Access-Control-Allow-Origin", allowed)
        if !exposedHeaders.isEmpty {
            response.headers.add("Access-Control-Expose-Headers", exposedHeaders.joined(separator: ", "))
        }
    }

    /// The answer to `OPTIONS`: 204 with `Allow`, and for an allowed origin's
    /// preflight the methods, headers and max age it may use.
    public func preflight(_ request: Request, allowedMethods: [HTTPMethod]) -> Response {
        var response = Response.empty(status: 204)
        if !allowedMethods.isEmpty {
            response.headers.add("Allow", allowedMethods.map(\.rawValue).joined(separator: ", "))
        }
        guard request.headers["Access-Control-Request-Method"] != nil,
            let origin = request.headers["Origin"], allowOrigin(for: origin) != nil
        else { return response }
        let methods = allowedMethods.isEmpty ? [HTTPMethod.get, .post, .delete, .patch] : allowedMethods
        response.headers.add("Access-Control-Allow-Methods", methods.map(\.rawValue).joined(separator: ", "))
        response.headers.add("Access-Control-Allow-Headers", allowedHeaders.joined(separator: ", "))
        response.headers.add("Access-Control-Max-Age", String(maxAge))
        return response
    }
}
