/// Hashes and verifies passwords with Argon2id (RFC 9106) through libargon2, in PHC string format.
///
/// Hashing is deliberately slow (tens of milliseconds at the defaults): call it from a
/// ``HashingPool``, never from a request thread or Swift's cooperative pool.
public struct PasswordHasher: Sendable {
    /// Salt length in bytes (RFC 9106 recommends 16).
    public static let saltLength = 16
    /// Hash output (tag) length in bytes.
    public static let tagLength = 32

    /// The cost parameters new hashes get. Verification uses the parameters stored in each hash.
    public let parameters: Argon2Parameters

    /// The hash of a random password, made at init time with ``parameters``. Verify a login for an
    /// unknown user against it, so that it costs the same work as a wrong password:
    /// `verify(password, against: dummyHash)` (which returns `false`).
    public let dummyHash: String

    /// Creates a hasher and its ``dummyHash``.
    /// - Parameter parameters: cost parameters; default: the OWASP minimum.
    /// - Throws: ``PasswordHasherError`` if libargon2 refuses the parameters (the moment to find out
    ///   is start-up) or no random salt can be had.
    public init(parameters: Argon2Parameters = Argon2Parameters()) throws(PasswordHasherError) {
        self.parameters = parameters
        let hexDigits = Array("0123456789abcdef")
        let randomPassword = String(
            try Argon2.randomBytes(32).flatMap { byte in [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]] }
        )
        dummyHash = try Argon2.hashEncoded(
            password: randomPassword,
            salt: try Argon2.randomBytes(Self.saltLength),
            tagLength: Self.tagLength,
            parameters: parameters
        )
    }

    /// Hashes a password with a fresh 16-byte random salt.
    /// - Parameter password: the password; its UTF-8 bytes are hashed.
    /// - Returns: the PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` (unpadded base64).
    public func hash(_ password: String) throws(PasswordHasherError) -> String {
        try Argon2.hashEncoded(
            password: password,
            salt: try Argon2.randomBytes(Self.saltLength),
            tagLength: Self.tagLength,
            parameters: parameters
        )
    }

    /// Checks a password against a stored PHC string, in constant time with respect to the hash.
    /// - Parameters:
    ///   - password: the candidate password.
    ///   - encoded: an Argon2id PHC string, as ``hash(_:)`` makes.
    /// - Returns: `true` only on a match; `false` on a mismatch and on any error, including a
    ///   malformed or non-Argon2id `encoded`.
    public func verify(_ password: String, against encoded: String) -> Bool {
        Argon2.verify(password: password, encoded: encoded)
    }
}
