import AuthService
import Foundation
import JSON
import MicroHTTP
import Testing
import TestSupport

/// The request log of a live Gatehouse: one line per request, with its
/// method, path, status, duration, client address and request id, and never
/// a password, a token or a query string.
@Suite struct RequestLogTests {
    static let password = "correct horse battery"

    static func requestLines(_ gatehouse: GatehouseInstance) -> [String] {
        gatehouse.logs.lines.filter { $0.contains(" info request ") }
    }

    /// The value of `key=` in a text log line.
    static func field(_ line: String, _ key: String) -> String? {
        line.split(separator: " ").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    @Test func oneLinePerRequestWithItsIdAndNoSecrets() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            var sent: [(method: String, path: String, status: Int, id: String)] = []
            func send(
                _ method: String, _ target: String, headers: [(String, String)] = [], json: JSONValue? = nil
            ) throws -> TestResponse {
                let response =
                    if let json { try client.send(method, target, headers: headers, json: json) }
                    else { try client.send(method, target, headers: headers) }
                guard let id = response.header("X-Request-Id") else { throw HarnessError("no X-Request-Id") }
                let path = String(target.split(separator: "?", maxSplits: 1)[0])
                sent.append((method, path, response.status, id))
                return response
            }
            let credentials: JSONValue = ["username": "logged", "password": .string(Self.password)]
            #expect(try send("POST", "/register", json: credentials).status == 201)
            let login = try send("POST", "/login", headers: [("X-Request-Id", "e2e-login-1")], json: credentials)
            let tokens = try Tokens(login)
            #expect(login.header("X-Request-Id") == "e2e-login-1")
            let bearer = [("Authorization", "Bearer \(tokens.access)")]
            #expect(try send("GET", "/protected", headers: bearer).status == 200)
            #expect(try send("GET", "/auth/verify?token=\(tokens.access)", headers: bearer).status == 200)
            let wrong: JSONValue = ["username": "logged", "password": .string("wrong-" + Self.password)]
            #expect(try send("POST", "/login", json: wrong).status == 401)
            #expect(try send("POST", "/refresh", json: ["refresh_token": .string(tokens.refresh)]).status == 200)
            #expect(try send("GET", "/protected", headers: [("Authorization", "Bearer x.y.z")]).status == 401)
            #expect(try send("POST", "/logout?all=true", headers: bearer).status == 204)
            #expect(try send("GET", "/metrics").status == 200)

            #expect(
                await waitUntil(timeout: 5) { Self.requestLines(gatehouse).count == sent.count },
                "\(Self.requestLines(gatehouse))")
            let lines = Self.requestLines(gatehouse)
            #expect(lines.count == sent.count)
            for line in lines {
                let keys = line.split(separator: " ").dropFirst(3).map { $0.split(separator: "=")[0] }
                #expect(keys == ["method", "path", "status", "duration_ms", "client_ip", "request_id"], "\(line)")
                #expect(Self.field(line, "client_ip") == "127.0.0.1")
                #expect(Self.field(line, "duration_ms")?.wholeMatch(of: #/\d+\.\d{3}/#) != nil, "\(line)")
            }
            // Each request's line, found by the id its response carried.
            for request in sent {
                let line = lines.first { Self.field($0, "request_id") == request.id }
                #expect(Self.field(line ?? "", "method") == request.method, "\(request)")
                #expect(Self.field(line ?? "", "path") == request.path, "\(request)")
                #expect(Self.field(line ?? "", "status") == String(request.status), "\(request)")
            }
            // The security event of the login carries the request's id too.
            let event = gatehouse.logs.lines.first { $0.contains("event=login ") }
            #expect(event.map { Self.field($0, "request_id") } == "e2e-login-1", "\(event ?? "no login event")")
            let failed = gatehouse.logs.lines.first { $0.contains("event=login_failed ") }
            let failedID = sent.first { $0.path == "/login" && $0.status == 401 }?.id
            #expect(failed.map { Self.field($0, "request_id") } == failedID)
            for line in gatehouse.logs.lines {
                #expect(!line.contains(Self.password), "\(line)")
                #expect(!line.contains(tokens.access))
                #expect(!line.contains(tokens.refresh))
                #expect(!line.contains("Bearer"))
                #expect(!line.contains("token="))
                #expect(!line.contains("all=true"))
            }
        }
    }

    @Test func withTheAccessLogOffOnlyTheServiceLinesAndSecurityEventsRemain() async throws {
        try await withGatehouse({ $0.accessLog = false }) { gatehouse in
            let client = try gatehouse.client()
            #expect(
                try client.send("POST", "/login", json: ["username": "ghost", "password": "whatever1"]).status == 401)
            _ = try client.send("GET", "/healthz")
            #expect(Self.requestLines(gatehouse).isEmpty)
            #expect(gatehouse.logs.lines.contains { $0.contains("event=login_failed ") && $0.contains("request_id=") })
        }
    }

    @Test func theSettingParses() throws {
        #expect(try Configuration.parse(environment: [:], arguments: []).accessLog)
        #expect(try !Configuration.parse(environment: ["GATEHOUSE_ACCESS_LOG": "off"], arguments: []).accessLog)
        #expect(try Configuration.parse(environment: [:], arguments: ["--access-log", "on"]).accessLog)
        #expect(throws: ConfigurationError.self) {
            try Configuration.parse(environment: ["GATEHOUSE_ACCESS_LOG": "sometimes"], arguments: [])
        }
    }

    /// The real binary, JSON lines on standard error: the buffered lines are
    /// all there once it has stopped (SIGTERM), one JSON object each.
    @Test func theBinaryWritesJSONRequestLinesAndFlushesThemOnExit() async throws {
        try await withTemporaryDirectory { directory in
            let server = try GatehouseProcess(
                environment: [
                    "GATEHOUSE_DATA_DIR": directory + "/data", "GATEHOUSE_PORT": "0", "GATEHOUSE_LOG_FORMAT": "json",
                    "GATEHOUSE_ARGON2_MEMORY_KIB": "1024", "GATEHOUSE_ARGON2_ITERATIONS": "1",
                ], logPath: directory + "/gatehouse.log")
            let port = try waitForJSONListening(server)
            let client = try HTTPTestClient(port: port)
            var ids: [String] = []
            for index in 0..<20 {
                let response = try client.send("GET", index % 2 == 0 ? "/healthz" : "/protected")
                ids.append(try #require(response.header("X-Request-Id")))
            }
            client.close()
            #expect(server.stop() == 0)
            let objects = server.output.split(separator: "\n").compactMap {
                try? JSONValue.parse(String($0)).objectValue
            }
            #expect(objects.count == server.output.split(separator: "\n").count, "\(server.output)")
            let requests = objects.filter { $0["message"] == "request" }
            #expect(requests.compactMap { $0["request_id"]?.stringValue } == ids)
            #expect(requests.filter { $0["path"] == "/protected" }.allSatisfy { $0["status"] == 401 })
            #expect(requests.filter { $0["path"] == "/healthz" }.allSatisfy { $0["status"] == 200 })
            #expect(objects.last?["message"] == "stopped")
        }
    }

    /// `GatehouseProcess.waitUntilListening` reads the text format; this reads the JSON one.
    func waitForJSONListening(_ server: GatehouseProcess) throws -> UInt16 {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            for line in server.output.split(separator: "\n") {
                guard let object = try? JSONValue.parse(String(line)).objectValue, object["message"] == "listening",
                    let address = object["address"]?.stringValue, let port = address.split(separator: ":").last
                else { continue }
                return UInt16(port) ?? 0
            }
            guard server.process.isRunning else { throw HarnessError("gatehouse exited early:\n\(server.output)") }
            usleep(20_000)
        }
        throw HarnessError("gatehouse did not log its address:\n\(server.output)")
    }
}
