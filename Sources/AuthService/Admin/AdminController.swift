import Foundation
import JOSE
public import JSON
public import MicroHTTP

/// The admin API, for callers whose access token holds the `admin` role:
/// `GET /admin/users` (paged), `GET`, `PATCH` and `DELETE /admin/users/{id}`,
/// and `POST /admin/users/{id}/logout`.
///
/// Every route answers 401 without a valid token, then 403 `forbidden`
/// without the role, then 400 for bad input (nothing is changed), then 404
/// `not_found` for an unknown id. Every action is a security event
/// (``AuditLog/Event/adminAction``).
///
/// An administrator cannot lock or delete their own account, or take the
/// `admin` role from it, through the API (409 `conflict`): that would end
/// their own sessions and could leave nobody who can undo it. The command
/// line (`gatehouse users ...`) can. Any other change to one's own roles or
/// app claims ends one's own sessions too, like everyone's: log in again.
public struct AdminController: Sendable {
    let store: any UserStore
    let storePool: WorkerPool
    let tokens: TokenService
    let refreshTTL: Int
    let clock: WallClock
    let audit: AuditLog
    var logger: Logger { audit.logger }

    /// Users per page when `limit` is not given, and the most a page may hold.
    public static let defaultPageSize = 50
    public static let pageSizes = 1...100
    /// The longest `q` accepted (no username is longer).
    public static let maxQueryLength = CredentialRules.usernameLength.upperBound
    /// Members and elements a `PATCH` body may hold, all levels together (`app_metadata` is up to 4 KiB).
    public static let maxPatchValues = 1024

    /// - Parameters:
    ///   - storePool: where every route runs (each reads or writes the store).
    ///   - refreshTTL: how long an ended session's id is kept in the revocation list.
    public init(
        store: any UserStore, storePool: WorkerPool, tokens: TokenService, refreshTTL: Int, clock: WallClock,
        audit: AuditLog
    ) {
        self.store = store
        self.storePool = storePool
        self.tokens = tokens
        self.refreshTTL = refreshTTL
        self.clock = clock
        self.audit = audit
    }

    public func addRoutes(to router: inout Router) {
        router.add(.get, "/admin/users", on: storePool, listUsers)
        router.add(.get, "/admin/users/{id}", on: storePool, showUser)
        router.add(.patch, "/admin/users/{id}", on: storePool, updateUser)
        router.add(.delete, "/admin/users/{id}", on: storePool, deleteUser)
        router.add(.post, "/admin/users/{id}/logout", on: storePool, endSessions)
    }

    /// `GET /admin/users?limit=&cursor=&q=`: `{"users": [...], "next_cursor"}`,
    /// ordered by username without regard to case; `next_cursor` is null on
    /// the last page. `q` keeps usernames that contain it (any case).
    @Sendable public func listUsers(_ request: Request) throws -> Response {
        let admin = try authorize(request)
        let limit = try Self.limit(request.queryValue("limit"))
        let after = try request.queryValue("cursor").map(Self.username(fromCursor:))
        let query = try Self.query(request.queryValue("q"))
        let page = try storeCall(logger) { () throws(StoreError) in
            try store.listUsers(limit: limit, after: after, matching: query)
        }
        audit.record(
            .adminAction, request,
            [
                "actor": admin.username, "actor_id": admin.userID, "action": "list_users",
                "count": String(page.users.count),
            ])
        return .json([
            "users": .array(page.users.map { .object(Self.representation(of: $0)) }),
            "next_cursor": page.next.map { .string(Self.cursor(after: $0)) } ?? .null,
        ])
    }

    /// `GET /admin/users/{id}`: the user (no password hash).
    @Sendable public func showUser(_ request: Request) throws -> Response {
        let admin = try authorize(request)
        let user = try existingUser(request)
        audit.record(.adminAction, request, Self.fields(admin, "show_user", user))
        return .json(.object(Self.representation(of: user)))
    }

    /// `PATCH /admin/users/{id}` `{roles?, app_metadata?, locked?}`: the user
    /// as changed. Changing roles or app claims, or locking, ends every
    /// session of the user; invalid input changes nothing.
    @Sendable public func updateUser(_ request: Request) throws -> Response {
        let admin = try authorize(request)
        let id = try Self.id(of: request)
        let changes = try Self.changes(from: JSONBody(request, maxValues: Self.maxPatchValues))
        if id == admin.userID {
            if changes.locked == true {
                throw AuthError.conflict("You cannot lock your own account through the API.")
            }
            if let roles = changes.roles, !roles.contains(Roles.admin) {
                throw AuthError.conflict(
                    "You cannot take the admin role from your own account through the API; another administrator "
                        + "or 'gatehouse users revoke' can.")
            }
        }
        let now = clock.seconds
        let update: UserUpdate
        do {
            update = try store.updateUser(id: id, changes, at: now)
        } catch where error.code == .notFound {
            throw Self.noSuchUser
        } catch {
            logger.error("store failed", ["operation": "updateUser", "error": error.description])
            throw AuthError.storeUnavailable
        }
        tokens.revocations.revoke(update.endedSessions, until: now + Int64(refreshTTL), now: now)
        var fields = [
            ("actor", admin.username), ("actor_id", admin.userID), ("action", "update_user"),
            ("target", update.user.username), ("target_id", update.user.id),
        ]
        if changes.roles != nil { fields.append(("roles", update.user.roles.joined(separator: ","))) }
        if let metadata = changes.appMetadata { fields.append(("app_metadata", metadata == nil ? "cleared" : "set")) }
        if let locked = changes.locked { fields.append(("locked", String(locked))) }
        fields.append(("sessions_ended", String(update.endedSessions.count)))
        audit.record(.adminAction, request, fields)
        return .json(.object(Self.representation(of: update.user)))
    }

    /// `DELETE /admin/users/{id}`: 204; the account and every session end, as
    /// with `DELETE /me`.
    @Sendable public func deleteUser(_ request: Request) throws -> Response {
        let admin = try authorize(request)
        let user = try existingUser(request)
        guard user.id != admin.userID else {
            throw AuthError.conflict("You cannot delete your own account through the admin API; use DELETE /me.")
        }
        let now = clock.seconds
        let ended: [String]
        do {
            ended = try store.revokeSessions(userID: user.id, except: nil, at: now)
            try store.deleteUser(id: user.id)
        } catch where error.code == .notFound {
            throw Self.noSuchUser
        } catch {
            logger.error("store failed", ["operation": "deleteUser", "error": error.description])
            throw AuthError.storeUnavailable
        }
        tokens.revocations.revoke(ended, until: now + Int64(refreshTTL), now: now)
        var fields = Self.fields(admin, "delete_user", user)
        fields.append(("sessions_ended", String(ended.count)))
        audit.record(.adminAction, request, fields)
        return .empty(status: 204)
    }

    /// `POST /admin/users/{id}/logout`: 204; every session of the user ends.
    @Sendable public func endSessions(_ request: Request) throws -> Response {
        let admin = try authorize(request)
        let user = try existingUser(request)
        let now = clock.seconds
        let ended = try storeCall(logger) { () throws(StoreError) in
            try store.revokeSessions(userID: user.id, except: nil, at: now)
        }
        tokens.revocations.revoke(ended, until: now + Int64(refreshTTL), now: now)
        var fields = Self.fields(admin, "end_sessions", user)
        fields.append(("sessions_ended", String(ended.count)))
        audit.record(.adminAction, request, fields)
        return .empty(status: 204)
    }

    // MARK: - Checks

    /// The caller, if their token is valid (else 401) and holds `admin` (else 403).
    private func authorize(_ request: Request) throws -> AuthenticatedUser {
        let caller = try tokens.authenticate(request, readingRoles: true)
        guard caller.hasRole(Roles.admin) else {
            audit.record(
                .adminForbidden, request,
                ["actor": caller.username, "actor_id": caller.userID, "path": request.path])
            throw AuthError.forbidden("This needs the admin role.")
        }
        return caller
    }

    private static let noSuchUser = AuthError.notFound("There is no user with this id.")

    /// The `{id}` of the path.
    private static func id(of request: Request) throws(AuthError) -> String {
        guard let id = request.pathParameter("id"), !id.isEmpty else { throw noSuchUser }
        return id
    }

    private func existingUser(_ request: Request) throws(AuthError) -> User {
        let id = try Self.id(of: request)
        guard let user = try storeCall(logger, { () throws(StoreError) in try store.user(id: id) }) else {
            throw Self.noSuchUser
        }
        return user
    }

    /// `limit`: 1-100, default 50.
    static func limit(_ text: String?) throws(AuthError) -> Int {
        guard let text else { return defaultPageSize }
        guard text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), text.utf8.count <= 4,
            let limit = Int(text), pageSizes.contains(limit)
        else {
            throw .invalidRequest(
                "limit must be a whole number from \(pageSizes.lowerBound) to \(pageSizes.upperBound).")
        }
        return limit
    }

    /// `q`: at most 64 characters; empty means no filter.
    static func query(_ text: String?) throws(AuthError) -> String? {
        guard let text, !text.isEmpty else { return nil }
        guard text.utf8.count <= maxQueryLength else {
            throw .invalidRequest("q must be at most \(maxQueryLength) characters.")
        }
        return text
    }

    /// The opaque cursor for the page after `username`.
    static func cursor(after username: String) -> String {
        Base64URL.encode(Array(("u:" + username).utf8))
    }

    /// The username a cursor made by ``cursor(after:)`` holds.
    static func username(fromCursor cursor: String) throws(AuthError) -> String {
        let malformed = AuthError.invalidRequest("cursor is malformed; pass next_cursor from the previous page.")
        guard cursor.utf8.count <= 128, let bytes = Base64URL.decode(cursor),
            let text = String(validating: bytes, as: UTF8.self), text.hasPrefix("u:")
        else { throw malformed }
        let username = String(text.dropFirst(2))
        guard (try? CredentialRules.validateUsername(username)) != nil else { throw malformed }
        return username
    }

    /// The changes a `PATCH` body asks for, all checked.
    static func changes(from body: JSONBody) throws(AuthError) -> UserChanges {
        var changes = UserChanges()
        for (name, value) in body.object.members {
            switch name {
            case "roles":
                guard case .array(let elements) = value else {
                    throw .invalidRequest("roles must be an array of role names, not \(value.kindDescription).")
                }
                var names: [String] = []
                for element in elements {
                    guard case .string(let role) = element else {
                        throw .invalidRequest("roles must hold only strings, not \(element.kindDescription).")
                    }
                    names.append(role)
                }
                changes.roles = try Roles.validate(names)
            case "app_metadata":
                switch value {
                case .null:
                    changes.appMetadata = .some(nil)
                case .object(let object):
                    try Roles.validate(appMetadata: object)
                    changes.appMetadata = .some(object)
                default:
                    throw .invalidRequest("app_metadata must be an object or null, not \(value.kindDescription).")
                }
            case "locked":
                guard case .bool(let locked) = value else {
                    throw .invalidRequest("locked must be true or false, not \(value.kindDescription).")
                }
                changes.locked = locked
            default:
                throw .invalidRequest(
                    "'\(name.prefix(64))' cannot be changed here; send roles, app_metadata or locked.")
            }
        }
        guard changes.roles != nil || changes.appMetadata != nil || changes.locked != nil else {
            throw .invalidRequest("Send at least one of roles, app_metadata or locked.")
        }
        return changes
    }

    // MARK: - Output

    /// A user as the admin API shows it: never the password hash.
    public static func representation(of user: User) -> JSONObject {
        [
            "id": .string(user.id),
            "username": .string(user.username),
            "created_at": .string(Date(timeIntervalSince1970: TimeInterval(user.createdAt)).formatted(.iso8601)),
            "roles": .array(user.roles.map { .string($0) }),
            "app_metadata": user.appMetadata.map { .object($0) } ?? .null,
            "locked": .bool(user.locked),
        ]
    }

    private static func fields(_ admin: AuthenticatedUser, _ action: String, _ user: User) -> [(String, String)] {
        [
            ("actor", admin.username), ("actor_id", admin.userID), ("action", action), ("target", user.username),
            ("target_id", user.id),
        ]
    }
}
