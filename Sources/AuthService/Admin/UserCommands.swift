import Foundation
import JSON
import MicroHTTP

/// `gatehouse users list|show|grant|revoke|lock|unlock`: accounts, from the
/// command line, against the same store as the service, with or without it
/// running. This is how the first administrator is made
/// (`gatehouse users grant alice admin`).
///
/// A change that ends sessions (grant, revoke, lock) ends them in the store
/// in the same transaction; a running service learns of them within
/// ``Application/revocationPollInterval`` (its ``RevocationFeed``). Each
/// change is a security event (``AuditLog/Event/adminAction``, `via=cli`)
/// written to standard error.
public enum UserCommands {
    /// What the subcommands accept, for `--help`.
    public static let usage = """
        gatehouse users list [--flag value ...]          every user: name, id, roles, locked, created
        gatehouse users show NAME [--flag value ...]     one user, with its app_metadata
        gatehouse users grant NAME ROLE [...]            give a role (ends the user's sessions)
        gatehouse users revoke NAME ROLE [...]           take a role away (ends the user's sessions)
        gatehouse users lock NAME [...]                  refuse log-in and refresh (ends the user's sessions)
        gatehouse users unlock NAME [...]                allow log-in again
        """

    /// A subcommand and its operands, split from the configuration flags.
    public struct Invocation: Sendable, Equatable {
        public enum Action: Sendable, Equatable {
            case list
            case show(username: String)
            case grant(username: String, role: String)
            case revoke(username: String, role: String)
            case lock(username: String)
            case unlock(username: String)
        }

        public let action: Action
        /// What is left for `Configuration.parse`.
        public let configurationArguments: [String]

        /// Reads `users <subcommand> [operands] [flags]` (without `users`): the operands are the
        /// words before the first flag.
        public init(arguments: [String]) throws(ConfigurationError) {
            guard let subcommand = arguments.first else {
                throw ConfigurationError("users needs a subcommand\n\n" + UserCommands.usage)
            }
            let rest = arguments.dropFirst()
            let operands = Array(rest.prefix { !$0.hasPrefix("-") })
            configurationArguments = Array(rest.dropFirst(operands.count))
            func expect(_ count: Int, _ names: String) throws(ConfigurationError) {
                guard operands.count == count else {
                    throw ConfigurationError("users \(subcommand) takes \(names)\n\n" + UserCommands.usage)
                }
            }
            switch subcommand {
            case "list":
                try expect(0, "no operands")
                action = .list
            case "show":
                try expect(1, "NAME")
                action = .show(username: operands[0])
            case "grant":
                try expect(2, "NAME ROLE")
                action = .grant(username: operands[0], role: operands[1])
            case "revoke":
                try expect(2, "NAME ROLE")
                action = .revoke(username: operands[0], role: operands[1])
            case "lock":
                try expect(1, "NAME")
                action = .lock(username: operands[0])
            case "unlock":
                try expect(1, "NAME")
                action = .unlock(username: operands[0])
            default:
                throw ConfigurationError("unknown users subcommand '\(subcommand)'\n\n" + UserCommands.usage)
            }
        }
    }

    /// A failure to report to the user (exit status 1).
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String

        public init(_ message: String) { self.message = message }

        public var description: String { message }
    }

    /// Runs `action` against the store `configuration` names.
    /// - Parameters:
    ///   - audit: where changes are recorded as security events.
    /// - Returns: the text to print.
    /// - Throws: ``Failure`` (unknown user, invalid role, no database, store failure).
    public static func run(
        _ action: Invocation.Action, configuration: Configuration, audit: AuditLog,
        now: Int64 = WallClock.system.seconds
    ) throws(Failure) -> String {
        let path = configuration.databasePath
        guard configuration.postgresURL != nil || FileManager.default.fileExists(atPath: path) else {
            throw Failure("there is no database at \(path) yet; start gatehouse once (and register users) first")
        }
        let store: any UserStore
        do {
            store = try openStore(configuration: configuration)
        } catch {
            throw Failure("could not open the database (\(configuration.storeDescription)): \(error.message)")
        }
        defer { store.close() }
        do {
            switch action {
            case .list:
                return try list(store)
            case .show(let username):
                return show(try existing(username, in: store))
            case .grant(let username, let role), .revoke(let username, let role):
                guard Roles.isValid(role) else {
                    throw Failure("'\(role)' is not a role name: use 1 to 64 of a-z, 0-9, '_', '.', ':' and '-'")
                }
                let user = try existing(username, in: store)
                let granting = if case .grant = action { true } else { false }
                if granting, !user.roles.contains(role), user.roles.count >= Roles.maxCount {
                    throw Failure("\(user.username) holds \(Roles.maxCount) roles already, the most a user may hold")
                }
                let changes = granting ? UserChanges(grant: [role]) : UserChanges(revoke: [role])
                let update = try store.updateUser(id: user.id, changes, at: now)
                audit.recordCommand(
                    .adminAction,
                    [
                        "actor": operatingSystemUser, "action": granting ? "grant_role" : "revoke_role",
                        "target": user.username, "target_id": user.id, "role": role,
                        "sessions_ended": String(update.endedSessions.count),
                    ])
                return summary(update, change: granting ? "granted \(role)" : "revoked \(role)")
            case .lock(let username), .unlock(let username):
                let locking = if case .lock = action { true } else { false }
                let user = try existing(username, in: store)
                let update = try store.updateUser(id: user.id, UserChanges(locked: locking), at: now)
                audit.recordCommand(
                    .adminAction,
                    [
                        "actor": operatingSystemUser, "action": locking ? "lock_user" : "unlock_user",
                        "target": user.username, "target_id": user.id,
                        "sessions_ended": String(update.endedSessions.count),
                    ])
                return summary(update, change: locking ? "locked" : "unlocked")
            }
        } catch let failure as Failure {
            throw failure
        } catch let error as StoreError {
            throw Failure("the store failed: \(error.message)")
        } catch {
            throw Failure("\(error)")
        }
    }

    private static func existing(_ username: String, in store: any UserStore) throws(Failure) -> User {
        let found: User?
        do {
            found = try store.user(named: username)
        } catch {
            throw Failure("the store failed: \(error.message)")
        }
        guard let found else { throw Failure("there is no user named '\(username)'") }
        return found
    }

    /// Every user, a page at a time, as a table.
    static func list(_ store: any UserStore) throws(StoreError) -> String {
        var rows = [["USERNAME", "ID", "ROLES", "LOCKED", "CREATED"]]
        var after: String?
        repeat {
            let page = try store.listUsers(limit: 500, after: after, matching: nil)
            for user in page.users {
                rows.append([
                    user.username, user.id, user.roles.isEmpty ? "-" : user.roles.joined(separator: ","),
                    user.locked ? "yes" : "no", KeyCommands.timestamp(user.createdAt),
                ])
            }
            after = page.next
        } while after != nil
        guard rows.count > 1 else { return "No users yet.\n" }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, text in
                column == row.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// One user, a field a line.
    static func show(_ user: User) -> String {
        let metadata = user.appMetadata.map { String(decoding: JSONValue.object($0).serialized(), as: UTF8.self) }
        return """
            username:     \(user.username)
            id:           \(user.id)
            roles:        \(user.roles.isEmpty ? "-" : user.roles.joined(separator: ","))
            locked:       \(user.locked ? "yes" : "no")
            created:      \(KeyCommands.timestamp(user.createdAt))
            app_metadata: \(metadata ?? "-")

            """
    }

    private static func summary(_ update: UserUpdate, change: String) -> String {
        let user = update.user
        let roles = user.roles.isEmpty ? "-" : user.roles.joined(separator: ",")
        var text = "\(user.username): \(change); roles now \(roles)"
        text += user.locked ? ", locked.\n" : ".\n"
        if !update.endedSessions.isEmpty {
            text += "Ended \(update.endedSessions.count) session\(update.endedSessions.count == 1 ? "" : "s"); "
                + "a running gatehouse refuses their tokens within a second.\n"
        }
        return text
    }

    /// Who ran the command, as the operating system knows them (`uid:N` without a name).
    static var operatingSystemUser: String {
        let uid = getuid()
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid:\(uid)" }
        return String(cString: name)
    }
}
