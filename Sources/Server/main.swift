// gatehouse: parse the command line, then serve or run a subcommand.
// Everything else lives in AuthService, so tests build exactly what this runs.

import AuthService
import Foundation
import MicroHTTP

// Block the stop signals before any thread starts, so every thread inherits
// the mask and `sigwait` below is the one place they arrive.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
sigaddset(&stopSignals, SIGTERM)
sigaddset(&stopSignals, SIGINT)
// SIGHUP: read the signing keys again (after `gatehouse keys rotate`).
sigaddset(&stopSignals, SIGHUP)
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

let usage = """
    Usage: gatehouse [serve] [--flag value ...]   run the service
           gatehouse healthcheck [--flag value ...] ask /healthz of the configured address; exit 0 or 1
           gatehouse version                        print the version
    \(KeyCommands.usage.split(separator: "\n").map { "       " + $0 }.joined(separator: "\n"))
    \(UserCommands.usage.split(separator: "\n").map { "       " + $0 }.joined(separator: "\n"))
           gatehouse --help                         this text

    Every setting is an environment variable and a flag; flags win.

    """

var arguments = Array(CommandLine.arguments.dropFirst())
let command: String
if let first = arguments.first, !first.hasPrefix("-") {
    command = first
    arguments.removeFirst()
} else {
    command = "serve"
}

if arguments.contains("--help") || arguments.contains("-h") || command == "help" {
    print(usage + Configuration.helpText)
    exit(0)
}

func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("gatehouse: \(message)\n".utf8))
    exit(code)
}

// `keys <subcommand> [--now]`: its own words come off before the settings are read.
var keysInvocation: KeyCommands.Invocation?
if command == "keys" {
    do {
        let invocation = try KeyCommands.Invocation(arguments: arguments)
        arguments = invocation.configurationArguments
        keysInvocation = invocation
    } catch {
        fail(error.message, code: 2)
    }
}

// `users <subcommand> [NAME [ROLE]]`: likewise.
var usersInvocation: UserCommands.Invocation?
if command == "users" {
    do {
        let invocation = try UserCommands.Invocation(arguments: arguments)
        arguments = invocation.configurationArguments
        usersInvocation = invocation
    } catch {
        fail(error.message, code: 2)
    }
}

let configuration: Configuration
do {
    configuration = try Configuration.parse(environment: ProcessInfo.processInfo.environment, arguments: arguments)
} catch {
    fail(error.message, code: 2)
}

switch command {
case "serve":
    let logger = Logger(level: configuration.logLevel, format: configuration.logFormat)
    let application: Application
    do {
        application = try buildApplication(configuration: configuration, logger: logger)
        try application.start()
    } catch {
        fail("could not start: \(error)", code: 1)
    }
    var received: Int32 = 0
    while true {
        sigwait(&stopSignals, &received)
        guard received == SIGHUP else { break }
        application.reloadKeys()
    }
    logger.info("stopping", ["signal": received == SIGTERM ? "SIGTERM" : "SIGINT"])
    application.shutdown()
    exit(0)
case "healthcheck":
    exit(HealthCheck.run(host: configuration.host, port: configuration.port) ? 0 : 1)
case "keys":
    guard let action = keysInvocation?.action else { fail("keys needs a subcommand", code: 2) }
    do {
        print(try KeyCommands.run(action, configuration: configuration), terminator: "")
    } catch {
        fail("\(error)", code: 1)
    }
case "users":
    guard let action = usersInvocation?.action else { fail("users needs a subcommand", code: 2) }
    let logger = Logger(level: configuration.logLevel, format: configuration.logFormat)
    let audit = AuditLog(logger: logger, proxies: configuration.trustedProxies)
    do {
        let output = try UserCommands.run(action, configuration: configuration, audit: audit)
        logger.flush()
        print(output, terminator: "")
    } catch {
        logger.flush()
        fail(error.message, code: 1)
    }
case "version":
    print("gatehouse \(Version.current)")
case let other:
    fail("unknown command '\(other)'\n\n" + usage, code: 2)
}
