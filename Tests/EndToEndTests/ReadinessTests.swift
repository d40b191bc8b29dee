@testable import AuthService
import Foundation
import JSON
import Testing
import TestSupport

/// `GET /readyz` over a real socket: 200 while the store answers, 503
/// `not_ready` with `Retry-After` while it cannot, and 200 again once it
/// can, each time within the ping bound. `/healthz` and token checks do not
/// depend on the store and stay 200 throughout.
@Suite struct ReadinessTests {
    static let password = "readiness-password"

    /// Registers a user and logs in: an access token for `/protected`.
    func token(_ gatehouse: GatehouseInstance) throws -> String {
        let client = try gatehouse.client()
        defer { client.close() }
        _ = try client.send("POST", "/register", json: ["username": "ready", "password": .string(Self.password)])
        return try client.login("ready", Self.password).access
    }

    /// Asks `/readyz` on a new connection; checks the body and headers that
    /// go with the status, and that the answer came within the ping bound.
    func readiness(_ gatehouse: GatehouseInstance, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        let started = Date()
        let response = try httpRequest(port: gatehouse.port, "GET", "/readyz")
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 2, "/readyz took \(elapsed) s", sourceLocation: sourceLocation)
        #expect(response.header("Cache-Control") == "no-store", sourceLocation: sourceLocation)
        let body = try response.json().objectValue
        switch response.status {
        case 200:
            #expect(body?["status"] == "ready", "\(response.text)", sourceLocation: sourceLocation)
        case 503:
            #expect(body?["error"] == "not_ready", "\(response.text)", sourceLocation: sourceLocation)
            #expect(body?["message"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
            #expect(response.header("Retry-After") == "5", sourceLocation: sourceLocation)
        default:
            Issue.record("/readyz answered \(response.status): \(response.text)", sourceLocation: sourceLocation)
        }
        return response.status
    }

    /// What does not need the store answers while it is unavailable.
    func storeFreeRoutesAnswer(_ gatehouse: GatehouseInstance, _ token: String) throws {
        #expect(try httpRequest(port: gatehouse.port, "GET", "/healthz").status == 200)
        let protected = try httpRequest(
            port: gatehouse.port, "GET", "/protected", headers: [("Authorization", "Bearer \(token)")])
        #expect(protected.status == 200)
    }

    @Test func readyWhileTheStoreAnswers() async throws {
        try await withGatehouse { gatehouse throws in
            #expect(try readiness(gatehouse) == 200)
            let head = try httpRequest(port: gatehouse.port, "HEAD", "/readyz")
            #expect(head.status == 200)
            #expect(try httpRequest(port: gatehouse.port, "POST", "/readyz").status == 405)
        }
    }

    /// Another connection to the same file (what `gatehouse users ...` or a
    /// stuck migration would be) holds the write lock: every write would
    /// wait, so the service is not ready until it lets go.
    @Test func notReadyWhileAnotherConnectionHoldsTheWriteLock() async throws {
        try await withGatehouse { gatehouse throws in
            let token = try token(gatehouse)
            let other = try SQLiteConnection(
                path: gatehouse.application.configuration.databasePath, busyTimeoutMilliseconds: 1000)
            try other.execute("BEGIN IMMEDIATE")
            #expect(try readiness(gatehouse) == 503)
            #expect(try readiness(gatehouse) == 503)
            try storeFreeRoutesAnswer(gatehouse, token)

            try other.execute("ROLLBACK")
            #expect(try readiness(gatehouse) == 200)

            // One line when readiness is lost, one when it comes back; none per failed probe.
            let lines = gatehouse.logs.lines
            #expect(lines.filter { $0.contains("not ready") }.count == 1, "\(lines)")
            #expect(lines.contains { $0.contains("not ready") && $0.contains("database is locked") }, "\(lines)")
            #expect(lines.filter { $0.contains("ready again") }.count == 1, "\(lines)")
        }
    }

    /// The database file is renamed away, replaced by a directory, then put
    /// back: the open connection would keep working on the old file, which
    /// the next start would not find.
    @Test func notReadyWhileTheDatabaseFileIsMissingOrReplaced() async throws {
        try await withGatehouse { gatehouse throws in
            let token = try token(gatehouse)
            let path = gatehouse.application.configuration.databasePath
            let files = FileManager.default
            try files.moveItem(atPath: path, toPath: path + ".moved")
            #expect(try readiness(gatehouse) == 503)
            try files.createDirectory(atPath: path, withIntermediateDirectories: false)
            #expect(try readiness(gatehouse) == 503)
            try storeFreeRoutesAnswer(gatehouse, token)

            try files.removeItem(atPath: path)
            try files.moveItem(atPath: path + ".moved", toPath: path)
            #expect(try readiness(gatehouse) == 200)
            #expect(gatehouse.logs.lines.contains { $0.contains("deleted, renamed or replaced") })
        }
    }

    @Test func notReadyOnceTheStoreIsClosed() async throws {
        try await withGatehouse { gatehouse throws in
            #expect(try readiness(gatehouse) == 200)
            gatehouse.application.store.close()
            #expect(try readiness(gatehouse) == 503)
            #expect(try httpRequest(port: gatehouse.port, "GET", "/healthz").status == 200)
        }
    }
}
