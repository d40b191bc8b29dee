/// Why a token, a key or a cryptographic operation was refused.
///
/// A struct around an open set of codes (rather than a public enum) so that
/// new reasons can be added without breaking callers that switch over them.
/// Compare with `error.code == .expired`; `message` is a sentence for a
/// person and never contains key material.
public struct JOSEError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for programs.
    public enum Code: String, Sendable, CaseIterable {
        /// The token is not a compact JWS with JSON object header and payload.
        case malformed
        /// The token is longer than `VerificationPolicy.maxTokenBytes`.
        case tokenTooLarge
        /// The header's `alg` is not the algorithm bound to the selected key.
        case algorithmMismatch
        /// The header names a `kid` the key ring does not hold.
        case unknownKey
        /// The header carries `crit` (RFC 7515 section 4.1.11); no extension is understood.
        case criticalHeader
        /// The signature has the wrong length or does not match.
        case badSignature
        /// `exp` is in the past, beyond the leeway.
        case expired
        /// `nbf` is in the future, beyond the leeway.
        case notYetValid
        /// `iat` is in the future, beyond the leeway.
        case issuedInFuture
        /// A required claim is absent.
        case missingClaim
        /// A claim has the wrong JSON type.
        case invalidClaim
        /// `iss` is not the issuer the policy requires.
        case wrongIssuer
        /// `aud` does not name the audience the policy requires.
        case wrongAudience
        /// A key was refused as too weak (an empty secret, an RSA modulus under 2048 bits).
        case weakKey
        /// A key cannot be used: unreadable PEM or JWK, a key of the wrong
        /// type or curve for its algorithm, an encrypted or public-only key
        /// where a private one is needed.
        case invalidKey
        /// libcrypto reported a failure; the message carries its error code.
        case cryptoFailure
    }

    /// What went wrong, for programs.
    public let code: Code
    /// What went wrong, as a sentence for a person ("token has expired").
    public let message: String

    /// - Parameters:
    ///   - code: the reason, for programs.
    ///   - message: the reason, for a person.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`, for logs.
    public var description: String { "\(code.rawValue): \(message)" }
}

// MARK: - Constructors

/// One constructor per code, with the sentence callers usually want.
extension JOSEError {
    /// The token is not a well-formed compact JWS (`message` says which part).
    public static func malformed(_ message: String = "token is malformed") -> JOSEError {
        JOSEError(.malformed, message)
    }

    /// The token is longer than `limit` bytes.
    public static func tokenTooLarge(limit: Int) -> JOSEError {
        JOSEError(.tokenTooLarge, "token is longer than \(limit) bytes")
    }

    /// The header's `alg` is not the selected key's algorithm.
    public static func algorithmMismatch(_ message: String = "token algorithm does not match its key") -> JOSEError {
        JOSEError(.algorithmMismatch, message)
    }

    /// The header's `kid` names no key in the ring.
    public static func unknownKey(_ message: String = "token names a key that is not known") -> JOSEError {
        JOSEError(.unknownKey, message)
    }

    /// The header carries `crit`.
    public static func criticalHeader(_ message: String = "token has a critical header extension") -> JOSEError {
        JOSEError(.criticalHeader, message)
    }

    /// The signature has the wrong length or does not match.
    public static func badSignature(_ message: String = "token signature is invalid") -> JOSEError {
        JOSEError(.badSignature, message)
    }

    /// `exp` has passed, beyond the leeway.
    public static func expired(_ message: String = "token has expired") -> JOSEError {
        JOSEError(.expired, message)
    }

    /// `nbf` has not been reached, beyond the leeway.
    public static func notYetValid(_ message: String = "token is not valid yet") -> JOSEError {
        JOSEError(.notYetValid, message)
    }

    /// `iat` lies in the future, beyond the leeway.
    public static func issuedInFuture(_ message: String = "token was issued in the future") -> JOSEError {
        JOSEError(.issuedInFuture, message)
    }

    /// The required claim `name` is absent.
    public static func missingClaim(_ name: String) -> JOSEError {
        JOSEError(.missingClaim, "token has no \"\(name)\" claim")
    }

    /// The claim `name` is not of the `expected` kind ("a number").
    public static func invalidClaim(_ name: String, expected: String) -> JOSEError {
        JOSEError(.invalidClaim, "token claim \"\(name)\" is not \(expected)")
    }

    /// `iss` is absent or not the required issuer.
    public static func wrongIssuer(_ message: String = "the token's issuer (iss) is not the one expected") -> JOSEError
    {
        JOSEError(.wrongIssuer, message)
    }

    /// `aud` does not name the required audience.
    public static func wrongAudience(_ message: String = "token is meant for someone else") -> JOSEError {
        JOSEError(.wrongAudience, message)
    }

    /// A key was refused.
    public static func weakKey(_ message: String) -> JOSEError {
        JOSEError(.weakKey, message)
    }

    /// A key that cannot be used (wrong type or curve, unreadable, public only).
    public static func invalidKey(_ message: String) -> JOSEError {
        JOSEError(.invalidKey, message)
    }

    /// A libcrypto failure.
    /// - Parameters:
    ///   - operation: what failed ("EVP_MAC_init").
    ///   - opensslCode: the packed code from `ERR_get_error()`, 0 if the queue was empty.
    ///   - reason: OpenSSL's text for the code, if any.
    public static func cryptoFailure(operation: String, opensslCode: UInt, reason: String = "") -> JOSEError {
        var message = "\(operation) failed (OpenSSL error 0x\(String(opensslCode, radix: 16))"
        if !reason.isEmpty { message += ": \(reason)" }
        message += ")"
        return JOSEError(.cryptoFailure, message)
    }
}
