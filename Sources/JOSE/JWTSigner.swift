public import JSON

/// Signs JWTs (RFC 7519) as compact JWS (RFC 7515 section 7.1) with a key
/// ring's signing key.
public struct JWTSigner: Sendable {
    /// The ring whose `signingKey` signs.
    public let keyRing: KeyRing

    /// - Parameter keyRing: the ring whose `signingKey` signs every token.
    public init(keyRing: KeyRing) {
        self.keyRing = keyRing
    }

    /// The compact JWS of `claims`: header `{"alg":…,"typ":"JWT","kid":…}`,
    /// then the claims serialised as given, then the MAC of both.
    ///
    /// The claims are not checked; include `exp`, which `JWTVerifier` requires.
    /// - Parameter claims: the JWT claims set.
    public func sign(_ claims: JSONObject) -> String {
        let key = keyRing.signingKey
        let payload = JSONValue.object(claims).serialized()
        var token: [UInt8] = []
        token.reserveCapacity(
            key.encodedHeader.count + Base64URL.encodedLength(of: payload.count)
                + Base64URL.encodedLength(of: key.algorithm.macLength) + 2)
        token.append(contentsOf: key.encodedHeader)
        token.append(UInt8(ascii: "."))
        Base64URL.append(payload, to: &token)
        let mac = key.mac.authenticationCode(for: token)
        token.append(UInt8(ascii: "."))
        Base64URL.append(mac, to: &token)
        return String(decoding: token, as: UTF8.self)
    }
}
