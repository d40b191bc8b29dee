public import JSON

/// A token whose signature, header and time claims have been checked.
public struct VerifiedToken: Sendable {
    /// The JOSE header.
    public let header: JSONObject
    /// The JWT claims set.
    public let claims: JSONObject
    /// `exp`, in seconds since 1970 (always present after verification).
    public let expiresAt: Double

    init(header: JSONObject, claims: JSONObject, expiresAt: Double) {
        self.header = header
        self.claims = claims
        self.expiresAt = expiresAt
    }

    /// `sub`, if it is a string.
    public var subject: String? { claims["sub"]?.stringValue }
    /// `sid` (session id), if it is a string.
    public var sessionID: String? { claims["sid"]?.stringValue }
    /// `user` (user name), if it is a string.
    public var username: String? { claims["user"]?.stringValue }
    /// `jti` (token id), if it is a string.
    public var tokenID: String? { claims["jti"]?.stringValue }
    /// `iss`, if it is a string.
    public var issuer: String? { claims["iss"]?.stringValue }
    /// `iat`, in seconds since 1970, if present.
    public var issuedAt: Double? { claims["iat"]?.numberValue }
    /// `nbf`, in seconds since 1970, if present.
    public var notBefore: Double? { claims["nbf"]?.numberValue }
    /// The header's `kid`, if the token named its key.
    public var keyID: String? { header["kid"]?.stringValue }
}
