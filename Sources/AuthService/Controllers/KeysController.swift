public import MicroHTTP

/// `GET /.well-known/jwks.json`: the public keys that verify live access
/// tokens (RFC 7517), for services that check tokens themselves.
///
/// Lists the signing key, keys published ahead of signing (rotation), and
/// replaced keys until every token they signed has expired. Never a private
/// key, never an HMAC secret: with HS256 the set is empty.
public struct KeysController: Sendable {
    let keys: KeyManager
    let cacheControl: String

    /// - Parameters:
    ///   - keys: the keys in force.
    ///   - maxAge: seconds a client may cache the set; shorter than the
    ///     publish delay, so caches learn a new key before it signs.
    public init(keys: KeyManager, maxAge: Int) {
        self.keys = keys
        cacheControl = "public, max-age=\(maxAge)"
    }

    public func addRoutes(to router: inout Router) {
        router.get("/.well-known/jwks.json", jwks)
    }

    @Sendable public func jwks(_ request: Request) -> Response {
        .jsonBytes(keys.keySet.jwksBody, headers: ["Cache-Control": cacheControl])
    }
}
