public import JSON

/// Signs JWTs (RFC 7519) as compact JWS (RFC 7515 section 7.1) with a key
/// ring's signing key.
public struct JWTSigner: Sendable {
    /// The ring whose `signingKey` signs.
    public let keyRing: KeyRing

    /// - Parameter keyRing: the ring whose `signingKey` signs every token; it
    ///   must be able to sign (`SigningKey.canSign`: an HMAC key, or an
    ///   asymmetric key with its private half) by the time `sign` is called.
    public init(keyRing: KeyRing) {
        self.keyRing = keyRing
    }

    /// The compact JWS of `claims`: header `{"alg":…,"typ":"JWT","kid":…}`,
    /// then the claims serialised as given, then the MAC or signature of both.
    ///
    /// The claims are not checked; include `exp`, which `JWTVerifier` requires.
    ///
    /// Signing with a public-only key is a programming error and traps. So
    /// does a libcrypto failure on a key that was checked when it was made,
    /// which only happens when memory runs out or the library is broken.
    /// - Parameter claims: the JWT claims set.
    public func sign(_ claims: JSONObject) -> String {
        let key = keyRing.signingKey
        let payload = JSONValue.object(claims).serialized()
        var token: [UInt8] = []
        token.reserveCapacity(
            key.encodedHeader.count + Base64URL.encodedLength(of: payload.count) + key.encodedSignatureLength + 2)
        token.append(contentsOf: key.encodedHeader)
        token.append(UInt8(ascii: "."))
        Base64URL.append(payload, to: &token)
        let signature = key.mac?.authenticationCode(for: token) ?? Self.sign(token, with: key)
        token.append(UInt8(ascii: "."))
        Base64URL.append(signature, to: &token)
        return String(decoding: token, as: UTF8.self)
    }

    /// The signature of `signingInput` by the asymmetric `key`; traps if the
    /// key is public only, or if libcrypto fails.
    private static func sign(_ signingInput: [UInt8], with key: SigningKey) -> [UInt8] {
        guard let asymmetric = key.asymmetricKey else { preconditionFailure("SigningKey \(key.kid) holds no key") }
        precondition(asymmetric.hasPrivateKey, "JWTSigner: the signing key \(key.kid) is a public key; it cannot sign")
        do {
            return try asymmetric.signature(for: signingInput)
        } catch {
            fatalError("\(key.algorithm.rawValue) signing failed on a checked key: \(error)")
        }
    }
}
