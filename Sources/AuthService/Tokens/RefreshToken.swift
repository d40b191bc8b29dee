import JOSE

/// An opaque refresh token: 256 random bits, base64url. Only its SHA-256
/// hash is ever stored.
struct RefreshToken {
    let value: String
    let hash: [UInt8]

    static func generate() -> RefreshToken {
        let value = Base64URL.encode(SecureRandom.bytes(32))
        return RefreshToken(value: value, hash: hash(of: value))
    }

    static func hash(of value: String) -> [UInt8] { Digest.sha256(Array(value.utf8)) }

    /// Whether `value` could be one of ours (43 base64url characters, 256 bits):
    /// anything else is refused without a store lookup.
    static func isWellFormed(_ value: String) -> Bool {
        value.utf8.count == 43 && Base64URL.decode(value)?.count == 32
    }
}

/// Random identifiers for users, sessions and tokens.
enum Identifier {
    private static let hexDigits = Array("0123456789abcdef")

    /// A random (version 4) UUID in its usual text form.
    static func uuid() -> String {
        var bytes = SecureRandom.bytes(16)
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        var text = ""
        for (index, byte) in bytes.enumerated() {
            if [4, 6, 8, 10].contains(index) { text.append("-") }
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return text
    }

    /// A session id: 128 random bits, base64url.
    static func session() -> String { Base64URL.encode(SecureRandom.bytes(16)) }
}
