public import JSON

/// The keys a verifier accepts, and the one a signer uses. Immutable: rotate
/// keys by building a new ring.
public struct KeyRing: Sendable {
    /// The key new tokens are signed with; also used to verify a token that
    /// names no `kid`.
    public let signingKey: SigningKey

    /// Every accepted key, the signing key first, at most one per `kid`.
    let keys: [SigningKey]

    /// - Parameters:
    ///   - signingKey: the key new tokens are signed with.
    ///   - additionalVerificationKeys: older keys whose tokens are still
    ///     accepted (for rotation). When two keys share a `kid` the first one
    ///     (the signing key before the others) wins and the rest are ignored.
    public init(signingKey: SigningKey, additionalVerificationKeys: [SigningKey] = []) {
        self.signingKey = signingKey
        var keys = [signingKey]
        for key in additionalVerificationKeys where !keys.contains(where: { $0.kid == key.kid }) {
            keys.append(key)
        }
        self.keys = keys
    }

    /// Every key of the ring, the signing key first, at most one per `kid`.
    public var allKeys: [SigningKey] { keys }

    /// The ring's public keys as an RFC 7517 JWK Set (section 5):
    /// `{"keys":[…]}` with the `SigningKey.publicJWK` of every asymmetric key,
    /// the signing key first; `{"keys":[]}` for a ring of HMAC keys, whose
    /// secrets are never published.
    public var jwks: JSONObject {
        ["keys": .array(keys.compactMap { $0.publicJWK.map(JSONValue.object) })]
    }

    /// The key with id `kid`, if the ring holds one.
    public func key(withID kid: String) -> SigningKey? {
        for key in keys where key.kid == kid { return key }
        return nil
    }

    /// The position in `keys` of the key with id `kid`, if any.
    func keyIndex(withID kid: String) -> Int? {
        keys.firstIndex { $0.kid == kid }
    }

    /// The position in `keys` of the key whose signer-written header is
    /// exactly `encodedHeader`, if any. (A position rather than the key, so
    /// that the caller copies, and retains, only the parts it needs.)
    func keyIndex(withEncodedHeader encodedHeader: UnsafeBufferPointer<UInt8>) -> Int? {
        for index in keys.indices where keys[index].encodedHeader.count == encodedHeader.count {
            let same = keys[index].encodedHeader.withUnsafeBufferPointer { known in
                known.hasSameBytes(as: encodedHeader)
            }
            if same { return index }
        }
        return nil
    }
}
