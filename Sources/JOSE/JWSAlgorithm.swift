/// A JWS `alg` value this library signs and verifies (RFC 7518 section 3.1,
/// RFC 8037 section 3.1).
///
/// HMAC with SHA-2 for a service that both issues and checks its tokens;
/// RSA, ECDSA and Ed25519 signatures when others must check them with a
/// published public key. "none" is never accepted. Every key is bound to one
/// algorithm, and a token is only checked with a key whose algorithm is the
/// token's `alg`.
public enum JWSAlgorithm: String, Sendable, CaseIterable {
    /// HMAC using SHA-256 (RFC 7518 section 3.2).
    case hs256 = "HS256"
    /// HMAC using SHA-384 (RFC 7518 section 3.2).
    case hs384 = "HS384"
    /// HMAC using SHA-512 (RFC 7518 section 3.2).
    case hs512 = "HS512"
    /// RSASSA-PKCS1-v1_5 using SHA-256, with a modulus of 2048 bits or more
    /// (RFC 7518 section 3.3).
    case rs256 = "RS256"
    /// ECDSA using P-256 and SHA-256; the signature is R || S, 64 bytes
    /// (RFC 7518 section 3.4).
    case es256 = "ES256"
    /// EdDSA, here only with Ed25519 (RFC 8037 section 3.1); 64-byte signatures.
    case edDSA = "EdDSA"

    /// Whether this is an HMAC algorithm (HS256, HS384, HS512), whose key is
    /// a shared secret; `false` for the public-key algorithms.
    public var isSymmetric: Bool {
        switch self {
        case .hs256, .hs384, .hs512: true
        case .rs256, .es256, .edDSA: false
        }
    }

    /// The length of the MAC in bytes. HMAC algorithms only: asking it of
    /// RS256, ES256 or EdDSA is a programming error and traps (their
    /// signature length is `AsymmetricKey.signatureLength`, which for RS256
    /// depends on the key).
    public var macLength: Int {
        switch self {
        case .hs256: 32
        case .hs384: 48
        case .hs512: 64
        case .rs256, .es256, .edDSA: preconditionFailure("JWSAlgorithm.macLength is for HMAC only, not \(rawValue)")
        }
    }

    /// The OpenSSL digest name (`nil` for EdDSA, which hashes internally).
    var digestName: String? {
        switch self {
        case .hs256, .rs256, .es256: "SHA256"
        case .hs384: "SHA384"
        case .hs512: "SHA512"
        case .edDSA: nil
        }
    }
}
