public import MicroHTTP

/// `/auth/verify`: forward authentication for reverse proxies (nginx
/// `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`).
///
/// The proxy asks before every request it guards, with that request's
/// method and headers, and lets it through on any 2xx; it denies on 401 and
/// 403 (passing `WWW-Authenticate` on); any other status becomes a 500 for
/// the user. So this route answers every method, never reads a body (no
/// 413), and for a bad token only ever says 401.
///
/// Roles: the answer carries the token's roles in `X-Auth-Roles`
/// (comma-separated; absent when it has none). When the proxy sends
/// `X-Auth-Require-Role: a,b`, a valid token that holds none of those roles
/// gets 403 `forbidden` (nginx passes a 403 on as it is).
public struct ForwardAuthController: Sendable {
    let tokens: TokenService

    public init(tokens: TokenService) { self.tokens = tokens }

    public func addRoutes(to router: inout Router) {
        router.anyMethod("/auth/verify", verify)
    }

    /// 200 with an empty body and `X-Auth-User`, `X-Auth-Subject`,
    /// `X-Auth-Session` for a valid access token whose session is live;
    /// 401 with `WWW-Authenticate: Bearer ...` otherwise; 403 when the proxy
    /// requires roles (`X-Auth-Require-Role`) the token holds none of.
    @Sendable public func verify(_ request: Request) throws -> Response {
        let caller = try tokens.authenticate(request, readingRoles: true)
        let roles = caller.roles ?? []
        if let required = request.headers["X-Auth-Require-Role"] {
            let accepted = Roles.parseList(required)
            // A header that names no role requires nothing.
            guard accepted.isEmpty || accepted.contains(where: roles.contains) else {
                throw AuthError.forbidden("This requires one of the roles \(accepted.joined(separator: ", ")).")
            }
        }
        var response = Response(
            status: 200,
            headers: [
                "X-Auth-User": caller.username,
                "X-Auth-Subject": caller.userID,
                "X-Auth-Session": caller.sessionID,
                "Cache-Control": "no-store",
            ])
        // Left out when there are none: libmicrohttpd sends no header with an empty value.
        if !roles.isEmpty { response.headers.set("X-Auth-Roles", roles.joined(separator: ",")) }
        return response
    }
}
