import Foundation
import TestSupport

/// Two real `gatehouse` instances on one new database of a test's PostgreSQL, each with a data
/// directory of its own, as two replicas behind a proxy would run. A is listening before B starts,
/// so A is the one that makes what the first start makes (the signing keys).
struct InstancePair {
    let a: GatehouseProcess
    let b: GatehouseProcess
    let onA: HTTPTestClient
    let onB: HTTPTestClient
    let ports: [UInt16]
    /// The database both use.
    let database: String

    /// - Parameter settings: environment both instances get, besides `GATEHOUSE_DATABASE_URL` and
    ///   `ProcessTests.environment`'s.
    static func start(on postgres: PostgresServer, in directory: String, _ settings: [String: String]) async throws
        -> InstancePair
    {
        let database = try await blockingIO { try postgres.createDatabase() }
        let shared = settings.merging(["GATEHOUSE_DATABASE_URL": postgres.url(database: database)]) { $1 }
        let a = try GatehouseProcess(
            environment: ProcessTests.environment(directory + "/a", shared), logPath: directory + "/a.log")
        let portA = try a.waitUntilListening()
        let b = try GatehouseProcess(
            environment: ProcessTests.environment(directory + "/b", shared), logPath: directory + "/b.log")
        let portB = try b.waitUntilListening()
        return InstancePair(
            a: a, b: b, onA: try HTTPTestClient(port: portA), onB: try HTTPTestClient(port: portB),
            ports: [portA, portB], database: database)
    }
}
