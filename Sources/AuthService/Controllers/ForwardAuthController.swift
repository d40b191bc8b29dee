public import MicroHTTP

/// `/auth/verify`: forward authentication for reverse proxies (nginx
/// `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`).
///
/// The proxy asks before every request it guards, with that request's
/// method and headers, and lets it through on any 2xx; it denies on 401 and
/// 403 (passing `WWW-Authenticate` on); any other status becomes a 500 for
/// the user. So this route answers every method, never reads a body (no
/// 413), and for a bad token only ever says 401.
public struct ForwardAuthController: Sendable {
    let tokens: TokenService

    public init(tokens: TokenService) { self.tokens = tokens }

    public func addRoutes(to router: inout Router) {
        router.anyMethod("/auth/verify", verify)
    }

    /// 200 with an empty body and `X-Auth-User`, `X-Auth-Subject`,
    /// `X-Auth-Session` for a valid access token whose session is live;
    /// 401 with `WWW-Authenticate: Bearer ...` otherwise.
    @Sendable public func verify(_ request: Request) throws -> Response {
        let caller = try tokens.authenticate(request)
        return Response(
            status: 200,
            headers: [
                "X-Auth-User": caller.username,
                "X-Auth-Subject": caller.userID,
                "X-Auth-Session": caller.sessionID,
                "Cache-Control": "no-store",
            ])
    }
}
