/// Adjusts every response the server sends, including errors and preflights.
public protocol ResponseFilter: Sendable {
    func apply(to response: inout Response, for request: Request)
}

/// Headers every API response should carry.
public struct SecurityHeadersFilter: ResponseFilter {
    public init() {}

    public func apply(to response: inout Response, for request: Request) {
        response.headers.add("X-Content-Type-Options", "nosniff")
        response.headers.add("X-Frame-Options", "DENY")
        response.headers.add("Referrer-Policy", "no-referrer")
    }
}
