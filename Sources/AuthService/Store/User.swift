public import JSON

/// An account, as the store keeps it.
public struct User: Sendable, Equatable {
    /// Opaque, stable identifier (the `sub` claim of its tokens).
    public let id: String
    /// The name the user registered with, in its original case.
    public let username: String
    /// The password hash in PHC string format (`$argon2id$v=19$m=...`).
    public let passwordHash: String
    /// Creation time, seconds since the Unix epoch.
    public let createdAt: Int64
    /// Role names (``Roles``), sorted, no duplicates: the `roles` claim of its access tokens.
    public let roles: [String]
    /// Claims only administrators set, copied into its access tokens as `app_metadata`; nil: none.
    public let appMetadata: JSONObject?
    /// A locked user cannot log in or refresh; locking ends every session.
    public let locked: Bool

    /// Creates a user value.
    /// - Parameters:
    ///   - id: stable identifier.
    ///   - username: the registered name.
    ///   - passwordHash: PHC string.
    ///   - createdAt: seconds since the Unix epoch.
    ///   - roles: role names, sorted, no duplicates.
    ///   - appMetadata: administrator-set claims, or nil.
    ///   - locked: whether log-in and refresh are refused.
    public init(
        id: String, username: String, passwordHash: String, createdAt: Int64, roles: [String] = [],
        appMetadata: JSONObject? = nil, locked: Bool = false
    ) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.createdAt = createdAt
        self.roles = roles
        self.appMetadata = appMetadata
        self.locked = locked
    }
}

/// What an administrator changes about a user (``UserStore/updateUser(id:_:at:)``); what is nil
/// stays as it is.
public struct UserChanges: Sendable, Equatable {
    /// The whole new set of roles (replaces the current one), applied before `grant` and `revoke`.
    public var roles: [String]?
    /// Roles to add.
    public var grant: [String] = []
    /// Roles to take away.
    public var revoke: [String] = []
    /// `.some(object)` sets the app claims, `.some(nil)` removes them, nil leaves them.
    public var appMetadata: JSONObject??
    /// Lock or unlock; nil leaves it.
    public var locked: Bool?

    public init(
        roles: [String]? = nil, grant: [String] = [], revoke: [String] = [], appMetadata: JSONObject?? = nil,
        locked: Bool? = nil
    ) {
        self.roles = roles
        self.grant = grant
        self.revoke = revoke
        self.appMetadata = appMetadata
        self.locked = locked
    }

    /// The roles `current` becomes: sorted, without duplicates.
    public func roles(from current: [String]) -> [String] {
        var result = Set(roles ?? current)
        result.formUnion(grant)
        result.subtract(revoke)
        return result.sorted()
    }
}

/// The outcome of ``UserStore/updateUser(id:_:at:)``.
public struct UserUpdate: Sendable, Equatable {
    /// The user as stored after the change.
    public let user: User
    /// The sessions the change ended (every live one, when roles or app claims changed or the user
    /// was locked; none otherwise).
    public let endedSessions: [String]

    public init(user: User, endedSessions: [String]) {
        self.user = user
        self.endedSessions = endedSessions
    }
}

/// One page of ``UserStore/listUsers(limit:after:matching:)``.
public struct UserPage: Sendable, Equatable {
    /// The users, ordered by username without regard to case.
    public let users: [User]
    /// The username to pass as `after` for the next page; nil on the last page.
    public let next: String?

    public init(users: [User], next: String?) {
        self.users = users
        self.next = next
    }
}

/// Sessions ended since a point in the store's revocation sequence
/// (``UserStore/revocations(after:)``).
public struct RevocationBatch: Sendable {
    /// The ended sessions with the time their tokens expire anyway.
    public let sessions: [(id: String, expiresAt: Int64)]
    /// Where the next call continues (unchanged when there was nothing new).
    public let cursor: Int64

    public init(sessions: [(id: String, expiresAt: Int64)], cursor: Int64) {
        self.sessions = sessions
        self.cursor = cursor
    }
}
