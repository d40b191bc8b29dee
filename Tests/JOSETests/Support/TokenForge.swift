import JOSE
import JSON

/// Builds compact tokens by hand, so a test can break exactly one rule and
/// keep everything else (in particular the MAC) valid.
struct TokenForge {
    static let secret: [UInt8] = Array("an HS256 test secret of 32 bytes".utf8)
    static let otherSecret: [UInt8] = Array("another secret, also 32 bytes!!!".utf8)
    static let kid = "test-key"
    /// A fixed clock: 2023-11-14T22:13:20Z.
    static let now: Double = 1_700_000_000

    let key: SigningKey
    let ring: KeyRing

    init() throws {
        key = try SigningKey.hmac(secret: Self.secret, algorithm: .hs256, kid: Self.kid)
        ring = KeyRing(signingKey: key)
    }

    /// A claims text that passes every check at `now`.
    static let validPayload = #"{"sub":"user-1","exp":1700000600,"iat":1700000000}"#

    /// header.payload.MAC, MACed with `secret` under `algorithm`.
    func token(
        header: String = #"{"alg":"HS256","typ":"JWT","kid":"test-key"}"#,
        payload: String = TokenForge.validPayload,
        algorithm: JWSAlgorithm = .hs256,
        secret: [UInt8] = TokenForge.secret
    ) throws -> String {
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let mac = try HMACKey(secret: secret, algorithm: algorithm).authenticationCode(for: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(mac)
    }

    /// The MAC part alone, for tests that rebuild the token around it.
    func parts(of token: String) -> [String] {
        token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }
}
