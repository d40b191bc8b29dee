/// What a verified token's claims must satisfy beyond a valid signature.
public struct VerificationPolicy: Sendable {
    /// When set, the `iss` claim must be exactly this string (RFC 7519 section 4.1.1).
    public var issuer: String?
    /// When set, the `aud` claim (a string, or an array of strings) must
    /// contain this string (RFC 7519 section 4.1.3).
    public var audience: String?
    /// Seconds of clock skew allowed when checking `exp`, `nbf` and `iat`.
    public var leeway: Double = 30
    /// Longer tokens are refused before any decoding.
    public var maxTokenBytes: Int = 8192

    /// - Parameters:
    ///   - issuer: the required `iss`, or `nil` to accept any.
    ///   - audience: the audience that `aud` must name, or `nil` to not check `aud`.
    ///   - leeway: seconds of clock skew allowed for `exp`, `nbf` and `iat`.
    ///   - maxTokenBytes: the longest token accepted, in UTF-8 bytes.
    public init(issuer: String? = nil, audience: String? = nil, leeway: Double = 30, maxTokenBytes: Int = 8192) {
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.maxTokenBytes = maxTokenBytes
    }
}
