import Foundation
import JOSE
import JSON
import Testing
import TestSupport

/// Key rotation with the real binary: `gatehouse keys rotate` beside a
/// running service, which picks the change up on SIGHUP or by itself.
/// Tokens signed before and after a rotation are both accepted by
/// `/protected`, `/auth/verify` and PyJWT, and the JWK Set lists both keys.
@Suite(.serialized) struct KeyRotationProcessTests {
    static let password = "rotation-password"

    static func environment(_ directory: String, _ extra: [String: String] = [:]) -> [String: String] {
        ProcessTests.environment(directory, ["GATEHOUSE_SIGNING_ALG": "ES256"].merging(extra) { $1 })
    }

    /// Runs `gatehouse <arguments>` to completion.
    /// - Returns: its exit status and everything it printed.
    static func run(_ arguments: [String], _ environment: [String: String], in directory: String) throws -> (
        status: Int32, output: String
    ) {
        let process = try GatehouseProcess(
            arguments: arguments, environment: environment, logPath: directory + "/cli-\(UUID().uuidString).log")
        let status = process.waitForExit(timeout: 30)
        return (status, process.output)
    }

    /// The `kid` in a token's header.
    static func kid(of token: String) throws -> String {
        let part = try #require(token.split(separator: ".").first)
        let header = try #require(Base64URL.decode(part))
        return try #require(try JSONValue.parse(header).objectValue?["kid"]?.stringValue)
    }

    static func jwksKids(_ client: HTTPTestClient) throws -> [String] {
        let response = try client.send("GET", "/.well-known/jwks.json")
        #expect(response.status == 200)
        let keys = try #require(try response.json().objectValue?["keys"]?.arrayValue)
        return keys.compactMap { $0.objectValue?["kid"]?.stringValue }
    }

    /// Whether `/protected` and `/auth/verify` both accept `token`.
    static func accepted(_ token: String, by client: HTTPTestClient) throws -> Bool {
        let protected = try client.get("/protected", bearer: token).status
        let verify = try client.send("GET", "/auth/verify", headers: [("Authorization", "Bearer \(token)")]).status
        #expect(protected == verify)
        return protected == 200 && verify == 200
    }

    @Test func aRotationReachesTheRunningServiceOnSIGHUPAndOldTokensStayValid() async throws {
        try await withTemporaryDirectory { directory in
            let environment = Self.environment(directory)
            let service = try GatehouseProcess(environment: environment, logPath: directory + "/service.log")
            let client = try HTTPTestClient(port: try service.waitUntilListening())
            defer { client.close() }
            #expect(try client.send("POST", "/register", json: ["username": "rita", "password": .string(Self.password)]).status == 201)
            let tokenA = try client.login("rita", Self.password).access
            let kidA = try Self.kid(of: tokenA)
            #expect(try Self.jwksKids(client) == [kidA])

            let rotate = try Self.run(["keys", "rotate", "--now"], environment, in: directory)
            #expect(rotate.status == 0, "\(rotate.output)")
            #expect(rotate.output.contains("signing now"))
            kill(service.process.processIdentifier, SIGHUP)
            #expect(await waitUntil(timeout: 10, interval: .milliseconds(50)) { (try? Self.jwksKids(client).count) == 2 })

            let tokenB = try client.login("rita", Self.password).access
            let kidB = try Self.kid(of: tokenB)
            #expect(kidB != kidA)
            #expect(try Self.jwksKids(client) == [kidB, kidA])
            #expect(try Self.accepted(tokenA, by: client))
            #expect(try Self.accepted(tokenB, by: client))
            // And by a library nobody here wrote, from the live JWK Set.
            let verdicts = try await PyJWT.verify(
                tokens: [tokenA, tokenB], jwksURL: "http://127.0.0.1:\(service.port)/.well-known/jwks.json",
                issuer: "gatehouse", algorithms: ["ES256"], leeway: 30)
            #expect(verdicts.allSatisfy { $0.isVerified }, "\(verdicts)")
            #expect(verdicts.map { $0.header?["kid"]?.stringValue } == [kidA, kidB])

            let list = try Self.run(["keys", "list"], environment, in: directory)
            #expect(list.status == 0)
            let rows = list.output.split(separator: "\n").filter { $0.contains("ES256") }
            #expect(rows.count == 2)
            #expect(rows.contains { $0.contains(kidA) && $0.contains("retiring") })
            #expect(rows.contains { $0.contains(kidB) && $0.contains("active") })

            #expect(service.stop() == 0)
            #expect(service.output.contains("signing keys changed"))
        }
    }

    @Test func withAPublishDelayTheNewKeyIsPublishedBeforeItSigns() async throws {
        try await withTemporaryDirectory { directory in
            let environment = Self.environment(directory)
            let service = try GatehouseProcess(environment: environment, logPath: directory + "/service.log")
            let client = try HTTPTestClient(port: try service.waitUntilListening())
            defer { client.close() }
            #expect(try client.send("POST", "/register", json: ["username": "pia", "password": .string(Self.password)]).status == 201)
            let kidA = try Self.kid(of: try client.login("pia", Self.password).access)

            let rotate = try Self.run(["keys", "rotate"], environment, in: directory)
            #expect(rotate.status == 0, "\(rotate.output)")
            #expect(rotate.output.contains("signing from"))
            kill(service.process.processIdentifier, SIGHUP)
            #expect(await waitUntil(timeout: 10, interval: .milliseconds(50)) { (try? Self.jwksKids(client).count) == 2 })
            // Published, but the old key still signs for the publish delay (600 s).
            #expect(try Self.kid(of: try client.login("pia", Self.password).access) == kidA)
            #expect(try Self.jwksKids(client).first == kidA)
            #expect(service.stop() == 0)
        }
    }

    @Test func theServicePicksUpARotationByItself() async throws {
        try await withTemporaryDirectory { directory in
            let environment = Self.environment(directory, ["GATEHOUSE_KEY_RELOAD_INTERVAL": "1"])
            let service = try GatehouseProcess(environment: environment, logPath: directory + "/service.log")
            let client = try HTTPTestClient(port: try service.waitUntilListening())
            defer { client.close() }
            #expect(try Self.jwksKids(client).count == 1)
            let rotate = try Self.run(["keys", "rotate", "--now"], environment, in: directory)
            #expect(rotate.status == 0, "\(rotate.output)")
            // No signal: the service reads its keys again every second here (30 s by default).
            #expect(await waitUntil(timeout: 15, interval: .milliseconds(50)) { (try? Self.jwksKids(client).count) == 2 })
            #expect(service.stop() == 0)
        }
    }

    @Test func aConfiguredKeyIsNotRotatedByGatehouse() async throws {
        try await withTemporaryDirectory { directory in
            let keyPath = directory + "/signing.pem"
            try AsymmetricKey.generate(for: .edDSA).privateKeyPEM().write(toFile: keyPath, atomically: true, encoding: .utf8)
            let environment = Self.environment(
                directory, ["GATEHOUSE_SIGNING_ALG": "EdDSA", "GATEHOUSE_SIGNING_KEY_FILE": keyPath])
            let rotate = try Self.run(["keys", "rotate"], environment, in: directory)
            #expect(rotate.status == 1)
            #expect(rotate.output.contains("configured"))

            let service = try GatehouseProcess(environment: environment, logPath: directory + "/service.log")
            let client = try HTTPTestClient(port: try service.waitUntilListening())
            defer { client.close() }
            let expected = try AsymmetricKey(
                pem: String(contentsOfFile: keyPath, encoding: .utf8), algorithm: .edDSA
            ).thumbprint
            #expect(try Self.jwksKids(client) == [expected])
            #expect(service.stop() == 0)
        }
    }

    @Test(arguments: [
        (["GATEHOUSE_SIGNING_ALG": "PS256"], "GATEHOUSE_SIGNING_ALG must be"),
        (["GATEHOUSE_SIGNING_ALG": "ES256", "GATEHOUSE_JWT_SECRET": String(repeating: "x", count: 40)], "HS256 secret"),
        (["GATEHOUSE_SIGNING_KEY_FILE": "/nonexistent.pem"], "GATEHOUSE_SIGNING_KEY_FILE is for RS256"),
        (["GATEHOUSE_SIGNING_ALG": "RS256", "GATEHOUSE_SIGNING_KEY_FILE": "/nonexistent.pem"], "could not read"),
    ])
    func badKeySettingsStopTheStartWithAReason(settings: [String: String], reason: String) async throws {
        try await withTemporaryDirectory { directory in
            let service = try GatehouseProcess(
                environment: ProcessTests.environment(directory, settings), logPath: directory + "/service.log")
            let status = service.waitForExit(timeout: 15)
            #expect(status != 0)
            #expect(service.output.contains(reason), "\(service.output)")
        }
    }
}
