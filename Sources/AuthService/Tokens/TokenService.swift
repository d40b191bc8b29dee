public import JOSE
import JSON
public import MicroHTTP

/// Who a verified access token says the caller is.
public struct AuthenticatedUser: Sendable, Equatable {
    public let userID: String
    public let username: String
    public let sessionID: String
    public let tokenID: String
    public let expiresAt: Double
}

/// Issues access tokens and checks the ones that come back. Pure CPU: no
/// store access on the check path; revoked sessions come from memory.
public final class TokenService: Sendable {
    public let keyRing: KeyRing
    public let revocations: RevocationList
    public let accessTTL: Int
    public let issuer: String
    public let audience: String?
    let signer: JWTSigner
    let verifier: JWTVerifier
    let clock: WallClock

    public init(
        keyRing: KeyRing, revocations: RevocationList = RevocationList(), accessTTL: Int, issuer: String,
        audience: String?, leeway: Int, clock: WallClock
    ) {
        self.keyRing = keyRing
        self.revocations = revocations
        self.accessTTL = accessTTL
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        signer = JWTSigner(keyRing: keyRing)
        verifier = JWTVerifier(
            keyRing: keyRing,
            policy: VerificationPolicy(issuer: issuer, audience: audience, leeway: Double(leeway)))
    }

    /// A signed access token for `user` in session `sessionID`, with claims
    /// `iss`, `sub`, `user`, `iat`, `exp`, `jti`, `sid` (and `aud` when configured).
    public func issueAccessToken(userID: String, username: String, sessionID: String) -> String {
        let now = clock.seconds
        var claims: JSONObject = [
            "iss": .string(issuer),
            "sub": .string(userID),
            "user": .string(username),
            "iat": .number(Double(now)),
            "exp": .number(Double(now + Int64(accessTTL))),
            "jti": .string(Base64URL.encode(SecureRandom.bytes(16))),
            "sid": .string(sessionID),
        ]
        if let audience { claims["aud"] = .string(audience) }
        return signer.sign(claims)
    }

    /// Verifies the token a request carries.
    /// - Throws: 401 `token_missing` without credentials, 401 `invalid_token`
    ///   (with the reason) for anything refused.
    public func authenticate(_ request: Request) throws(AuthError) -> AuthenticatedUser {
        guard let header = request.headers["Authorization"] else { throw .tokenMissing }
        let token = try BearerToken.extract(from: header)
        return try authenticate(token: token)
    }

    /// Verifies a compact token.
    public func authenticate(token: Substring) throws(AuthError) -> AuthenticatedUser {
        let verified: VerifiedToken
        do {
            verified = try verifier.verify(token, now: clock.now)
        } catch {
            throw .invalidToken(error.message)
        }
        guard let subject = verified.subject, let username = verified.username, let sessionID = verified.sessionID,
            let tokenID = verified.tokenID
        else {
            throw .invalidToken("the token lacks the sub, user, sid or jti claim")
        }
        guard !revocations.isRevoked(sessionID) else { throw .invalidToken("the session has ended") }
        return AuthenticatedUser(
            userID: subject, username: username, sessionID: sessionID, tokenID: tokenID,
            expiresAt: verified.expiresAt)
    }
}

/// Reads the token out of an `Authorization` header.
enum BearerToken {
    /// `Bearer <token>` (RFC 6750 section 2.1, scheme in any case) or a bare
    /// `<token>`, which the Flask tutorial's clients send.
    static func extract(from header: String) throws(AuthError) -> Substring {
        let value = header.trimmingCharacters(in: " \t")
        guard !value.isEmpty else { throw .tokenMissing }
        guard let space = value.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return value }
        let scheme = value[..<space]
        guard scheme.lowercased() == "bearer" else {
            throw .invalidToken("the Authorization scheme must be Bearer")
        }
        let token = value[space...].trimmingCharacters(in: " \t")
        guard !token.isEmpty else { throw .tokenMissing }
        guard !token.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw .invalidToken("the Authorization header has more than one value")
        }
        return token
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> Substring {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return slice
    }
}
