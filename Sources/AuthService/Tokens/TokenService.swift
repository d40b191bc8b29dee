public import JOSE
public import JSON
public import MicroHTTP

/// Who a verified access token says the caller is.
public struct AuthenticatedUser: Sendable, Equatable {
    public let userID: String
    public let username: String
    public let sessionID: String
    public let tokenID: String
    public let expiresAt: Double
    /// The token's `roles` claim; nil unless the check was asked for it
    /// (``TokenService/authenticate(_:readingRoles:)``), or the token has none.
    public let roles: [String]?

    /// Whether the token's roles include `role` (false when they were not read).
    public func hasRole(_ role: String) -> Bool { roles?.contains(role) ?? false }
}

/// Issues access tokens and checks the ones that come back. Pure CPU: no
/// store access on the check path; revoked sessions come from memory.
public final class TokenService: Sendable {
    /// The signing keys in force (they may rotate while the service runs).
    public let keys: KeyManager
    public let revocations: RevocationList
    public let accessTTL: Int
    public let issuer: String
    public let audience: String?
    let clock: WallClock
    /// Every check, counted by result.
    let verifications: LabelledCounters<TokenVerificationResult>

    /// With the keys of `keys`.
    /// - Parameter metrics: where each token check is counted.
    public init(
        keys: KeyManager, revocations: RevocationList = RevocationList(), accessTTL: Int, issuer: String,
        audience: String?, clock: WallClock, metrics: GatehouseMetrics = GatehouseMetrics()
    ) {
        self.keys = keys
        self.revocations = revocations
        self.accessTTL = accessTTL
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        verifications = metrics.tokenVerifications
    }

    /// With one key ring that never changes.
    public convenience init(
        keyRing: KeyRing, revocations: RevocationList = RevocationList(), accessTTL: Int, issuer: String,
        audience: String?, leeway: Int, clock: WallClock
    ) {
        self.init(
            keys: KeyManager(ring: keyRing, policy: Self.policy(issuer: issuer, audience: audience, leeway: leeway)),
            revocations: revocations, accessTTL: accessTTL, issuer: issuer, audience: audience, clock: clock)
    }

    /// What every access token must satisfy.
    public static func policy(issuer: String, audience: String?, leeway: Int) -> VerificationPolicy {
        VerificationPolicy(issuer: issuer, audience: audience, leeway: Double(leeway))
    }

    /// A signed access token for `user` in session `sessionID`: its current
    /// roles and app claims from the store go into the `roles` and
    /// `app_metadata` claims.
    public func issueAccessToken(for user: User, sessionID: String) -> String {
        issueAccessToken(
            userID: user.id, username: user.username, sessionID: sessionID, roles: user.roles,
            appMetadata: user.appMetadata)
    }

    /// A signed access token for `user` in session `sessionID`, with claims
    /// `iss`, `sub`, `user`, `iat`, `exp`, `jti`, `sid`, `roles` (always, maybe
    /// empty), `app_metadata` (when given) and `aud` (when configured).
    public func issueAccessToken(
        userID: String, username: String, sessionID: String, roles: [String] = [], appMetadata: JSONObject? = nil
    ) -> String {
        let now = clock.seconds
        var claims: JSONObject = [
            "iss": .string(issuer),
            "sub": .string(userID),
            "user": .string(username),
            "iat": .number(Double(now)),
            "exp": .number(Double(now + Int64(accessTTL))),
            "jti": .string(Base64URL.encode(SecureRandom.bytes(16))),
            "sid": .string(sessionID),
            "roles": .array(roles.map { .string($0) }),
        ]
        if let appMetadata { claims["app_metadata"] = .object(appMetadata) }
        if let audience { claims["aud"] = .string(audience) }
        return keys.keySet.signer.sign(claims)
    }

    /// Verifies the token a request carries.
    /// - Throws: 401 `token_missing` without credentials, 401 `invalid_token`
    ///   (with the reason) for anything refused.
    public func authenticate(_ request: Request) throws(AuthError) -> AuthenticatedUser {
        try authenticate(request, readingRoles: false)
    }

    /// Verifies the token a request carries, and with `readingRoles` also
    /// reads its `roles` claim (which parses the whole payload: only the
    /// routes that need roles ask for them).
    public func authenticate(_ request: Request, readingRoles: Bool) throws(AuthError) -> AuthenticatedUser {
        guard var header = request.headers["Authorization"] else {
            verifications.increment(.missing)
            throw .tokenMissing
        }
        // One pass over contiguous bytes, no copies: this is every authenticated request.
        let result = header.withUTF8 { bytes -> Result<AuthenticatedUser, AuthError> in
            let range: Range<Int>
            do throws(AuthError) {
                range = try BearerToken.range(in: bytes)
            } catch {
                verifications.increment(error.errorCode == AuthError.tokenMissing.errorCode ? .missing : .invalid)
                return .failure(error)
            }
            do throws(AuthError) {
                return .success(
                    try authenticate(utf8: UnsafeBufferPointer(rebasing: bytes[range]), readingRoles: readingRoles))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Verifies a compact token, reading its roles too.
    public func authenticate(token: some StringProtocol) throws(AuthError) -> AuthenticatedUser {
        var token = String(token)
        let result = token.withUTF8 { bytes -> Result<AuthenticatedUser, AuthError> in
            do throws(AuthError) {
                return .success(try authenticate(utf8: bytes, readingRoles: true))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Checks a token and counts the result.
    private func authenticate(utf8 token: UnsafeBufferPointer<UInt8>, readingRoles: Bool) throws(AuthError)
        -> AuthenticatedUser
    {
        let verified: VerifiedToken
        do {
            verified = try keys.keySet.verifier.verify(utf8: token, now: clock.now)
        } catch {
            verifications.increment(error.code == .expired ? .expired : .invalid)
            throw .invalidToken(error.message)
        }
        guard let subject = verified.subject, let username = verified.username, let sessionID = verified.sessionID,
            let tokenID = verified.tokenID
        else {
            verifications.increment(.invalid)
            throw .invalidToken("the token lacks the sub, user, sid or jti claim")
        }
        guard !revocations.isRevoked(sessionID) else {
            verifications.increment(.revoked)
            throw .invalidToken("the session has ended")
        }
        verifications.increment(.valid)
        // Tokens issued before roles existed have none: nil, like no roles.
        let roles = readingRoles ? verified.claim("roles")?.arrayValue?.compactMap(\.stringValue) : nil
        return AuthenticatedUser(
            userID: subject, username: username, sessionID: sessionID, tokenID: tokenID,
            expiresAt: verified.expiresAt, roles: roles)
    }
}

/// Finds the token in an `Authorization` header.
enum BearerToken {
    /// The range of the token in the header's bytes: `Bearer <token>` (RFC 6750
    /// section 2.1, scheme in any case) or a bare `<token>`, which the Flask
    /// tutorial's clients send. Works on raw bytes: walking a 400-byte token by
    /// `Character` cost more than verifying its signature.
    static func range(in bytes: UnsafeBufferPointer<UInt8>) throws(AuthError) -> Range<Int> {
        var start = 0
        var end = bytes.count
        while start < end, isBlank(bytes[start]) { start += 1 }
        while end > start, isBlank(bytes[end - 1]) { end -= 1 }
        guard start < end else { throw .tokenMissing }
        var space = start
        while space < end, !isBlank(bytes[space]) { space += 1 }
        guard space < end else { return start..<end }
        guard isBearer(bytes[start..<space]) else {
            throw .invalidToken("the Authorization scheme must be Bearer")
        }
        var tokenStart = space
        while tokenStart < end, isBlank(bytes[tokenStart]) { tokenStart += 1 }
        guard tokenStart < end else { throw .tokenMissing }
        guard !bytes[tokenStart..<end].contains(where: isBlank) else {
            throw .invalidToken("the Authorization header has more than one value")
        }
        return tokenStart..<end
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// "bearer" in any case.
    private static func isBearer(_ scheme: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard scheme.count == 6 else { return false }
        let start = scheme.startIndex
        return scheme[start] | 0x20 == UInt8(ascii: "b") && scheme[start + 1] | 0x20 == UInt8(ascii: "e")
            && scheme[start + 2] | 0x20 == UInt8(ascii: "a") && scheme[start + 3] | 0x20 == UInt8(ascii: "r")
            && scheme[start + 4] | 0x20 == UInt8(ascii: "e") && scheme[start + 5] | 0x20 == UInt8(ascii: "r")
    }
}
