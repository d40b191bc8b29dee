/// A JWS `alg` value this library signs and verifies (RFC 7518 section 3.2).
///
/// Only HMAC with SHA-2 is offered: the service both issues and checks its
/// tokens, so there is no need for public-key algorithms, and "none" is never
/// accepted.
public enum JWSAlgorithm: String, Sendable, CaseIterable {
    /// HMAC using SHA-256.
    case hs256 = "HS256"
    /// HMAC using SHA-384.
    case hs384 = "HS384"
    /// HMAC using SHA-512.
    case hs512 = "HS512"

    /// The length of the MAC in bytes.
    public var macLength: Int {
        switch self {
        case .hs256: 32
        case .hs384: 48
        case .hs512: 64
        }
    }

    /// The OpenSSL digest name.
    var digestName: String {
        switch self {
        case .hs256: "SHA256"
        case .hs384: "SHA384"
        case .hs512: "SHA512"
        }
    }
}
