import JOSE
import JSON

/// Builds compact tokens signed with asymmetric keys by hand, so a test can
/// break exactly one rule (like `TokenForge` for HS256).
///
/// The ring: the RFC example key of `algorithm` as its signing key (kid
/// `main`), an HS256 key (kid `hs`, `TokenForge.secret`) and the RFC keys
/// of the other two asymmetric algorithms (kids `rs`, `es`, `ed`).
struct AsymmetricForge {
    let algorithm: JWSAlgorithm
    /// The ring's signing key.
    let key: AsymmetricKey
    /// A key of the same algorithm that the ring does not hold.
    let stranger: AsymmetricKey
    let ring: KeyRing

    init(_ algorithm: JWSAlgorithm) throws {
        self.algorithm = algorithm
        key = try TestKeys.rfc(algorithm)
        stranger = try TestKeys.generated(algorithm)
        var others: [SigningKey] = [try .hmac(secret: TokenForge.secret, algorithm: .hs256, kid: "hs")]
        for other in TestKeys.asymmetricAlgorithms where other != algorithm {
            others.append(.asymmetric(try TestKeys.rfc(other), kid: Self.kid(of: other)))
        }
        ring = KeyRing(signingKey: .asymmetric(key, kid: "main"), additionalVerificationKeys: others)
    }

    /// The kid of the RFC key of `algorithm` in every forge's ring but its own.
    static func kid(of algorithm: JWSAlgorithm) -> String {
        switch algorithm {
        case .rs256: "rs"
        case .es256: "es"
        case .edDSA: "ed"
        default: "hs"
        }
    }

    /// Another asymmetric algorithm than `algorithm` (RS256 -> ES256 -> EdDSA -> RS256).
    var otherAlgorithm: JWSAlgorithm {
        switch algorithm {
        case .rs256: .es256
        case .es256: .edDSA
        default: .rs256
        }
    }

    /// The header `JWTSigner` writes for the signing key.
    var standardHeader: String { #"{"alg":"\#(algorithm.rawValue)","typ":"JWT","kid":"main"}"# }

    /// `header` ("$alg" stands for the algorithm's name) and `payload`, base64url, joined by a dot.
    func signingInput(header: String? = nil, payload: String = TokenForge.validPayload) -> String {
        let header = (header ?? standardHeader).replacingAll("$alg", with: algorithm.rawValue)
        return Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
    }

    /// header.payload.signature, signed by `signer` (by default the ring's signing key).
    func token(
        header: String? = nil, payload: String = TokenForge.validPayload, signer: AsymmetricKey? = nil
    ) throws -> String {
        let input = signingInput(header: header, payload: payload)
        let signature = try (signer ?? key).signature(for: Array(input.utf8))
        return input + "." + Base64URL.encode(signature)
    }

    /// header.payload with an HS256 MAC keyed with `secret`.
    func hmacToken(header: String, secret: [UInt8]) throws -> String {
        let input = signingInput(header: header)
        let mac = try HMACKey(secret: secret, algorithm: .hs256).authenticationCode(for: Array(input.utf8))
        return input + "." + Base64URL.encode(mac)
    }

    /// `token` with its signature replaced by what `change` makes of it.
    func resigned(_ token: String, _ change: ([UInt8]) throws -> [UInt8]) throws -> String {
        var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let signature = Base64URL.decode(parts[2]) else {
            throw ForgeFailure(description: "not a compact JWS: \(token)")
        }
        parts[2] = Base64URL.encode(try change(signature))
        return parts.joined(separator: ".")
    }
}

extension String {
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
