public import JSON

/// What Gatehouse accepts as roles and app claims (`app_metadata`).
public enum Roles {
    /// The role that may use the admin API (`/admin/...`).
    public static let admin = "admin"
    /// The most roles one user may hold.
    public static let maxCount = 32
    /// Role name length, bytes.
    public static let nameLength = 1...64
    /// The most bytes `app_metadata` may take, serialized as JSON.
    public static let maxAppMetadataBytes = 4096

    /// Whether `name` is a role name: 1-64 of `a-z`, `0-9`, `_`, `.`, `:`, `-`.
    public static func isValid(_ name: String) -> Bool {
        nameLength.contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"),
                    UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "-"):
                    true
                default: false
                }
            }
    }

    /// Checks one role name.
    /// - Throws: 400 `invalid_request` naming it.
    public static func validate(_ name: String) throws(AuthError) {
        guard isValid(name) else {
            throw .invalidRequest(
                "'\(name.prefix(80))' is not a role name: use 1 to 64 of a-z, 0-9, '_', '.', ':' and '-'.")
        }
    }

    /// Checks a whole set of roles: every name valid, at most ``maxCount`` distinct.
    /// - Returns: the roles sorted, without duplicates.
    public static func validate(_ names: [String]) throws(AuthError) -> [String] {
        for name in names { try validate(name) }
        let distinct = Array(Set(names)).sorted()
        guard distinct.count <= maxCount else {
            throw .invalidRequest("A user may hold at most \(maxCount) roles (got \(distinct.count)).")
        }
        return distinct
    }

    /// Checks app claims: at most ``maxAppMetadataBytes`` serialized.
    public static func validate(appMetadata: JSONObject) throws(AuthError) {
        let size = JSONValue.object(appMetadata).serialized().count
        guard size <= maxAppMetadataBytes else {
            throw .invalidRequest(
                "app_metadata is \(size) bytes as JSON; it may be at most \(maxAppMetadataBytes) bytes.")
        }
    }

    /// Parses a comma-separated list (`GATEHOUSE_DEFAULT_ROLES`, `X-Auth-Require-Role`): names
    /// trimmed of spaces, empty items dropped.
    public static func parseList(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0.trimmingSpacesAndTabs()) }.filter { !$0.isEmpty }
    }

    /// A role name as an error message or log line may show it (an invalid one may hold anything).
    static func loggable(_ name: String) -> String {
        isValid(name) ? name : "(invalid)"
    }
}

extension Substring {
    fileprivate func trimmingSpacesAndTabs() -> Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}
