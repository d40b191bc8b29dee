public import JSON

/// A key with its id (`kid`) and the one algorithm it is used with: an HMAC
/// secret, or an asymmetric key (private, or public only for a key that only
/// verifies).
///
/// Also carries the base64url JOSE header the signer writes for it
/// (`{"alg":…,"typ":"JWT","kid":…}`), so the verifier can recognise that exact
/// header by its bytes and skip decoding and parsing it.
public struct SigningKey: Sendable {
    /// The key id written to, and looked up from, the `kid` header.
    public let kid: String
    /// The algorithm the key is bound to; tokens naming any other are refused.
    public let algorithm: JWSAlgorithm

    /// The HMAC key, for an HMAC algorithm; exactly one of `mac` and
    /// `asymmetricKey` is set. (Two optionals rather than an enum of two
    /// class payloads: such an enum keeps its case in the pointer's spare
    /// bits, where LeakSanitizer cannot see the pointer and reports the key
    /// of a ring held in a global as leaked.)
    let mac: HMACKey?
    /// The asymmetric key, for RS256, ES256 or EdDSA; `nil` for an HMAC key.
    public let asymmetricKey: AsymmetricKey?
    /// The header `JWTSigner` writes for this key.
    let header: JSONObject
    /// `header`, serialised and base64url-encoded.
    let encodedHeader: [UInt8]

    private init(kid: String, algorithm: JWSAlgorithm, mac: HMACKey?, asymmetricKey: AsymmetricKey?) {
        self.kid = kid
        self.algorithm = algorithm
        self.mac = mac
        self.asymmetricKey = asymmetricKey
        let header: JSONObject = [
            "alg": .string(algorithm.rawValue),
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
    ///   - algorithm: the one algorithm the key is used with: HS256, HS384 or HS512.
    ///   - kid: the key id; by default the RFC 7638 thumbprint of the secret
    ///     (`thumbprint(ofSymmetricSecret:)`).
    /// - Throws: `weakKey` for an empty secret, `invalidKey` for an algorithm
    ///   that is not HMAC, `cryptoFailure` if libcrypto fails.
    public static func hmac(secret: [UInt8], algorithm: JWSAlgorithm = .hs256, kid: String? = nil) throws(JOSEError)
        -> SigningKey
    {
        let mac = try HMACKey(secret: secret, algorithm: algorithm)
        return SigningKey(
            kid: kid ?? thumbprint(ofSymmetricSecret: secret), algorithm: algorithm, mac: mac, asymmetricKey: nil)
    }

    /// An asymmetric key (RS256, ES256 or EdDSA). A public-only key can be a
    /// verification-only member of a ring; only a key with its private half
    /// can be a ring's signing key for `JWTSigner`.
    /// - Parameters:
    ///   - key: the key.
    ///   - kid: the key id; by default its RFC 7638 thumbprint (`key.thumbprint`).
    public static func asymmetric(_ key: AsymmetricKey, kid: String? = nil) -> SigningKey {
        SigningKey(kid: kid ?? key.thumbprint, algorithm: key.algorithm, mac: nil, asymmetricKey: key)
    }

    /// Whether this is an HMAC key (whose secret must never be published).
    public var isSymmetric: Bool { algorithm.isSymmetric }

    /// Whether `JWTSigner` can sign with this key: an HMAC key, or an
    /// asymmetric key with its private half.
    public var canSign: Bool { asymmetricKey?.hasPrivateKey ?? true }

    /// The JWK to publish for this key (RFC 7517 section 4): the public
    /// members (`AsymmetricKey.publicJWK`) plus `kid`, `alg` and
    /// `"use": "sig"`; `nil` for an HMAC key, whose secret is never published.
    public var publicJWK: JSONObject? {
        guard let key = asymmetricKey else { return nil }
        var jwk = key.publicJWK
        jwk["kid"] = .string(kid)
        jwk["alg"] = .string(algorithm.rawValue)
        jwk["use"] = "sig"
        return jwk
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

    /// The length of the signature part of this key's tokens, in base64url characters.
    var encodedSignatureLength: Int {
        asymmetricKey?.encodedSignatureLength ?? Base64URL.encodedLength(of: algorithm.macLength)
    }
}
