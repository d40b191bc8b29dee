/// What Gatehouse accepts as a username and a password.
public enum CredentialRules {
    public static let usernameLength = 3...64
    public static let passwordBytes = 8...1024

    /// Usernames: 3-64 characters of ASCII letters, digits, `.`, `_`, `-`, `@`;
    /// unique without regard to case.
    public static func validateUsername(_ username: String) throws(AuthError) {
        guard usernameLength.contains(username.utf8.count) else {
            throw .invalidRequest(
                "The username must be \(usernameLength.lowerBound) to \(usernameLength.upperBound) characters long.")
        }
        let allowed = username.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"),
                UInt8(ascii: "@"):
                true
            default: false
            }
        }
        guard allowed else {
            throw .invalidRequest("The username may contain only letters, digits, '.', '_', '-' and '@'.")
        }
    }

    /// Passwords: 8-1024 bytes of UTF-8, not the username itself. Longer is
    /// refused as a malformed request (it only costs the server hashing time).
    public static func validatePassword(_ password: String, username: String) throws(AuthError) {
        let length = password.utf8.count
        guard length <= passwordBytes.upperBound else {
            throw .invalidRequest("The password must be at most \(passwordBytes.upperBound) bytes.")
        }
        guard length >= passwordBytes.lowerBound else {
            throw .weakPassword("The password must be at least \(passwordBytes.lowerBound) characters long.")
        }
        guard password.lowercased() != username.lowercased() else {
            throw .weakPassword("The password must not be the username.")
        }
    }
}
