import Foundation
import JOSE

/// `gatehouse keys list` and `gatehouse keys rotate [--now]`: the managed
/// signing keys, from the command line, with or without the service running.
/// In the data directory, a running service picks a change up on `SIGHUP`, or
/// by itself within `GATEHOUSE_KEY_RELOAD_INTERVAL` seconds; in PostgreSQL
/// (`GATEHOUSE_DATABASE_URL`), every instance on the database at once.
public enum KeyCommands {
    /// What the subcommands accept, for `--help`.
    public static let usage = """
        gatehouse keys list [--flag value ...]           the signing keys: kid, alg, state, dates
        gatehouse keys rotate [--now] [--flag value ...] a new key: published now, signing after
                                                         GATEHOUSE_KEY_PUBLISH_DELAY (--now: at once)
        """

    /// A subcommand and its own options, split from the configuration flags.
    public struct Invocation: Sendable, Equatable {
        public enum Action: Sendable, Equatable {
            case list
            case rotate(now: Bool)
        }

        public let action: Action
        /// What is left for `Configuration.parse`.
        public let configurationArguments: [String]

        /// Reads `keys <subcommand> [--now] [flags]` (without `keys`).
        public init(arguments: [String]) throws(ConfigurationError) {
            guard let subcommand = arguments.first else {
                throw ConfigurationError("keys needs a subcommand: list or rotate\n\n" + KeyCommands.usage)
            }
            var rest = Array(arguments.dropFirst())
            switch subcommand {
            case "list":
                action = .list
            case "rotate":
                let now = rest.contains("--now")
                rest.removeAll { $0 == "--now" }
                action = .rotate(now: now)
            default:
                throw ConfigurationError("unknown keys subcommand '\(subcommand)'\n\n" + KeyCommands.usage)
            }
            configurationArguments = rest
        }
    }

    /// Runs `action` against the keys `configuration` names.
    /// - Returns: the text to print.
    /// - Throws: `ConfigurationError` or `KeyStoreError` with a message for the user.
    public static func run(
        _ action: Invocation.Action, configuration: Configuration, now: Int64 = WallClock.system.seconds
    ) throws -> String {
        let tokenLifetime = Int64(configuration.accessTTL + configuration.leeway)
        switch action {
        case .list:
            if configuration.hasConfiguredKey {
                return "The signing key is configured (GATEHOUSE_JWT_SECRET or GATEHOUSE_SIGNING_KEY_FILE); "
                    + "gatehouse neither generates nor rotates it.\n"
            }
            let schedule = try withStorage(configuration) { storage in try storage.readSchedule() }
            guard let schedule else {
                return "No signing keys in \(location(configuration)) yet; the first start makes one.\n"
            }
            return table(schedule.states(at: now, tokenLifetime: tokenLifetime))
        case .rotate(let immediately):
            guard !configuration.hasConfiguredKey else {
                throw ConfigurationError(
                    "the signing key is configured (GATEHOUSE_JWT_SECRET or GATEHOUSE_SIGNING_KEY_FILE), so gatehouse "
                        + "cannot rotate it; unset it to have gatehouse manage its keys")
            }
            return try withStorage(configuration) { storage in
                try rotate(
                    KeyRotation(storage: storage, tokenLifetime: tokenLifetime), immediately: immediately,
                    configuration: configuration, now: now)
            }
        }
    }

    /// Opens the storage of the managed keys `configuration` names for `body`: PostgreSQL when
    /// `GATEHOUSE_DATABASE_URL` says so (its schema brought up to date), else the data directory.
    private static func withStorage<T>(_ configuration: Configuration, _ body: (any KeyStorage) throws -> T) throws -> T
    {
        guard let url = configuration.postgresURL else {
            return try body(KeyDirectory(dataDirectory: configuration.dataDirectory))
        }
        let store: PostgresStore
        do {
            store = try PostgresStore(url: url, poolSize: 1)
        } catch {
            throw ConfigurationError("could not open the database (\(configuration.storeDescription)): \(error)")
        }
        defer { store.close() }
        return try body(PostgresKeyStorage(store: store, description: configuration.storeDescription))
    }

    /// Where the keys are, for the text.
    private static func location(_ configuration: Configuration) -> String {
        configuration.postgresURL == nil
            ? KeyDirectory(dataDirectory: configuration.dataDirectory).keysDirectory
            : "the database (\(configuration.storeDescription))"
    }

    /// `keys rotate`: the first key if there is none, else a new one.
    private static func rotate(
        _ rotation: KeyRotation, immediately: Bool, configuration: Configuration, now: Int64
    ) throws -> String {
        let tokenLifetime = rotation.tokenLifetime
        switch try rotation.prepare(algorithm: configuration.signingAlgorithm, now: now) {
        case .unchanged:
            break
        case .created(let key):
            return "There was no key yet: new \(key.algorithm.rawValue) key \(key.kid) signs from now.\n"
        case .algorithmChanged(let previous, let key):
            return "The configured algorithm is \(key.algorithm.rawValue), the keys were \(previous.rawValue): "
                + "new \(key.algorithm.rawValue) key \(key.kid) signs from now; the \(previous.rawValue) keys verify "
                + "until \(timestamp(now + tokenLifetime)).\n"
        }
        let delay = immediately ? 0 : Int64(configuration.keyPublishDelay)
        let result = try rotation.rotate(algorithm: configuration.signingAlgorithm, now: now, publishDelay: delay)
        var lines: [String] = []
        lines.append(
            "New \(result.key.algorithm.rawValue) key \(result.key.kid): published now, "
                + (delay == 0 ? "signing now." : "signing from \(timestamp(result.key.activates)) (in \(delay) s)."))
        if let replaced = result.replaced {
            lines.append(
                "Key \(replaced.kid) stops signing then, and verifies until "
                    + "\(timestamp(result.key.activates + tokenLifetime)), when its last token has expired.")
        }
        for key in result.droppedPending {
            lines.append("Key \(key.kid) had not started signing; the new key replaces it.")
        }
        for key in result.removedRetired {
            lines.append("Key \(key.kid) was retired; removed.")
        }
        lines.append(
            configuration.postgresURL == nil
                ? "A running gatehouse picks this up on SIGHUP, or by itself within "
                    + "\(configuration.keyReloadInterval) s."
                : "Every running instance on this database picks this up at once (notified), or by itself "
                    + "within \(configuration.keyReloadInterval) s.")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `keys list` table.
    static func table(_ states: [(key: ManagedKey, state: KeyState)]) -> String {
        var rows = [["KID", "ALG", "STATE", "CREATED", "SIGNS FROM", "VERIFIES UNTIL"]]
        for (key, state) in states {
            let until: String
            switch state {
            case .retiring(let time), .retired(let time): until = timestamp(time)
            case .pending, .active: until = "-"
            }
            rows.append([
                key.kid, key.algorithm.rawValue, state.name, timestamp(key.created),
                key.activates == 0 ? "-" : timestamp(key.activates), until,
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, text in
                column == row.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// UTC, to the second: `2026-11-25T07:00:00Z`.
    static func timestamp(_ seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: Double(seconds)))
    }
}
