public import JSON

/// A token whose signature, header and time claims have been checked.
///
/// The verifier checks the whole payload (a strict JSON object) but builds
/// none of it: the token keeps the payload's bytes and where the registered
/// claims lie in them. The accessors below make only the string they return;
/// `claims` builds the whole claims set each time it is read.
public struct VerifiedToken: Sendable {
    /// The JOSE header.
    public let header: JSONObject
    /// `exp`, in seconds since 1970 (always present after verification).
    public let expiresAt: Double

    /// The payload's bytes and where its registered claims are.
    private let storage: SharedPayload
    private var payload: VerifiedPayload { storage.payload }

    init(header: JSONObject, payload: VerifiedPayload, expiresAt: Double) {
        self.header = header
        self.storage = SharedPayload(payload: payload)
        self.expiresAt = expiresAt
    }

    /// The JWT claims set, parsed from the verified payload on each read
    /// (keep the result if you need it more than once).
    public var claims: JSONObject {
        payload.withBytes { bytes in
            // The verifier accepted the payload as a JSON object, by the same rules.
            (try? JSONValue.parse(bytes))?.objectValue ?? JSONObject()
        }
    }

    /// One claim of the payload, parsed on its own: the payload is scanned
    /// without building anything, and only the value of `name` is built
    /// (a whole `claims` read costs a token check about 7% more). nil when
    /// the payload has no such member.
    public func claim(_ name: String) -> JSONValue? {
        var name = name
        let nameIsASCII = name.withUTF8 { $0.allSatisfy { $0 < 0x80 } }
        return payload.withBytes { bytes -> JSONValue? in
            var found: Range<Int>?
            // The verifier accepted the payload by the same rules, names unique.
            try? JSONValue.scanObject(bytes) { member in
                if found == nil,
                    JSONValue.string(member.name, in: bytes, equals: name, otherIsASCII: nameIsASCII)
                {
                    found = member.valueStart..<member.valueEnd
                }
            }
            guard let found else { return nil }
            return try? JSONValue.parse(UnsafeBufferPointer(rebasing: bytes[found]))
        }
    }

    /// `sub`, if it is a string.
    public var subject: String? { payload.string { $0.subject } }
    /// `sid` (session id), if it is a string.
    public var sessionID: String? { payload.string { $0.sessionID } }
    /// `user` (user name), if it is a string.
    public var username: String? { payload.string { $0.username } }
    /// `jti` (token id), if it is a string.
    public var tokenID: String? { payload.string { $0.tokenID } }
    /// `iss`, if it is a string.
    public var issuer: String? { payload.string { $0.issuer } }
    /// `iat`, in seconds since 1970, if present.
    public var issuedAt: Double? { payload.withUnsafeMutablePointerToHeader { $0.pointee.issuedAt } }
    /// `nbf`, in seconds since 1970, if present.
    public var notBefore: Double? { payload.withUnsafeMutablePointerToHeader { $0.pointee.notBefore } }
    /// The header's `kid`, if the token named its key.
    public var keyID: String? { header["kid"]?.stringValue }
}

/// Where the registered claims the accessors return lie in a checked payload.
struct RegisteredClaims {
    /// The payload's length in bytes.
    var count = 0
    /// String claims: set only when the member is present and a string.
    var subject: JSONTextString?
    var sessionID: JSONTextString?
    var username: JSONTextString?
    var tokenID: JSONTextString?
    var issuer: JSONTextString?
    /// Time claims: set when present (the verifier refuses them unless they are numbers).
    var issuedAt: Double?
    var notBefore: Double?
}

/// A `VerifiedPayload`, which is written only by the verifier, before the
/// token that holds it exists, and only read from then on: that is what
/// makes sharing it between threads safe. (`ManagedBuffer` itself cannot be
/// `Sendable`.)
private struct SharedPayload: @unchecked Sendable {
    let payload: VerifiedPayload
}

/// A token's decoded payload, with its `RegisteredClaims` in front, in one
/// allocation.
final class VerifiedPayload: ManagedBuffer<RegisteredClaims, UInt8> {
    /// Storage for `count` payload bytes.
    static func make(count: Int) -> VerifiedPayload {
        unsafeDowncast(
            create(minimumCapacity: count) { _ in RegisteredClaims(count: count) },
            to: VerifiedPayload.self)
    }

    /// Calls `body` with the payload's bytes.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        withUnsafeMutablePointers { header, elements in
            body(UnsafeBufferPointer(start: elements, count: header.pointee.count))
        }
    }

    /// The string claim that `field` locates, if it is set.
    func string(_ field: (borrowing RegisteredClaims) -> JSONTextString?) -> String? {
        withUnsafeMutablePointers { header, elements in
            guard let text = field(header.pointee) else { return nil }
            return JSONValue.string(text, in: UnsafeBufferPointer(start: elements, count: header.pointee.count))
        }
    }
}
