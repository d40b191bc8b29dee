import JSON
public import MicroHTTP

/// `GET /protected`: the tutorial's `token_required` route.
public struct ProtectedController: Sendable {
    let tokens: TokenService

    public init(tokens: TokenService) { self.tokens = tokens }

    public func addRoutes(to router: inout Router) {
        router.get("/protected", protected)
    }

    /// 200 `{"message": "This is a protected route!", "user": <username>}` for
    /// a valid token; 401 with `WWW-Authenticate: Bearer` otherwise.
    @Sendable public func protected(_ request: Request) throws -> Response {
        let caller = try tokens.authenticate(request)
        var body: [UInt8] = Self.prefix
        body.reserveCapacity(Self.prefix.count + caller.username.utf8.count + 3)
        JSONValue.writeString(caller.username, to: &body)
        body.append(UInt8(ascii: "}"))
        return .jsonBytes(body)
    }

    /// The constant part of the body, encoded once.
    private static let prefix: [UInt8] = Array(#"{"message":"This is a protected route!","user":"#.utf8)
}
