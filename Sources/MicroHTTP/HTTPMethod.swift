/// An HTTP request method (RFC 9110 section 9). Methods are case-sensitive.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    public static let get = HTTPMethod(rawValue: "GET")
    public static let head = HTTPMethod(rawValue: "HEAD")
    public static let post = HTTPMethod(rawValue: "POST")
    public static let put = HTTPMethod(rawValue: "PUT")
    public static let patch = HTTPMethod(rawValue: "PATCH")
    public static let delete = HTTPMethod(rawValue: "DELETE")
    public static let options = HTTPMethod(rawValue: "OPTIONS")

    /// The methods of RFC 9110 section 9 and PATCH (RFC 5789). Any other is
    /// answered 501 before routing.
    public static let known: Set<HTTPMethod> = [
        .get, .head, .post, .put, .patch, .delete, .options,
        HTTPMethod(rawValue: "CONNECT"), HTTPMethod(rawValue: "TRACE"),
    ]

    public var description: String { rawValue }
}
