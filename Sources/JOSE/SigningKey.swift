import JSON

/// A key with its id (`kid`) and the one algorithm it is used with.
///
/// Also carries the base64url JOSE header the signer writes for it
/// (`{"alg":…,"typ":"JWT","kid":…}`), so the verifier can recognise that exact
/// header by its bytes and skip decoding and parsing it.
public struct SigningKey: Sendable {
    /// The key id written to, and looked up from, the `kid` header.
    public let kid: String
    /// The algorithm the key is bound to; tokens naming any other are refused.
    public let algorithm: JWSAlgorithm

    /// The scheduled key.
    let mac: HMACKey
    /// The header `JWTSigner` writes for this key.
    let header: JSONObject
    /// `header`, serialised and base64url-encoded.
    let encodedHeader: [UInt8]

    private init(kid: String, mac: HMACKey) {
        self.kid = kid
        self.algorithm = mac.algorithm
        self.mac = mac
        let header: JSONObject = [
            "alg": .string(mac.algorithm.rawValue),
            "typ": "JWT",
            "kid": .string(kid),
        ]
        self.header = header
        var encoded: [UInt8] = []
        Base64URL.append(JSONValue.object(header).serialized(), to: &encoded)
        self.encodedHeader = encoded
    }

    /// An HMAC key.
    /// - Parameters:
    ///   - secret: the key bytes; must not be empty (how long is enough is the caller's policy).
    ///   - algorithm: the one algorithm the key is used with.
    ///   - kid: the key id; by default the RFC 7638 thumbprint of the secret
    ///     (`thumbprint(ofSymmetricSecret:)`).
    /// - Throws: `weakKey` for an empty secret, `cryptoFailure` if libcrypto fails.
    public static func hmac(secret: [UInt8], algorithm: JWSAlgorithm = .hs256, kid: String? = nil) throws(JOSEError)
        -> SigningKey
    {
        let mac = try HMACKey(secret: secret, algorithm: algorithm)
        return SigningKey(kid: kid ?? thumbprint(ofSymmetricSecret: secret), mac: mac)
    }

    /// The JWK thumbprint (RFC 7638 section 3) of the symmetric key `secret`:
    /// base64url(SHA-256(`{"k":"<base64url(secret)>","kty":"oct"}`)), the
    /// required members of an `oct` JWK (RFC 7638 section 3.2) in
    /// lexicographic order with no whitespace.
    ///
    /// A thumbprint reveals nothing useful about a high-entropy secret, but it
    /// is a fast offline check for a guessed low-entropy one; use random
    /// secrets, or pass an explicit `kid`.
    public static func thumbprint(ofSymmetricSecret secret: [UInt8]) -> String {
        var json: [UInt8] = Array(#"{"k":""#.utf8)
        Base64URL.append(secret, to: &json)
        json.append(contentsOf: #"","kty":"oct"}"#.utf8)
        return Base64URL.encode(Digest.sha256(json))
    }
}
