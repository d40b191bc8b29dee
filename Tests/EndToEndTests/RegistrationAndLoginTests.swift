import AuthService
import Foundation
import JSON
import Testing
import TestSupport

@Suite struct RegistrationAndLoginTests {
    /// One row per malformed registration: the raw body, its Content-Type, the status and code expected.
    static let badRegistrations: [(body: String, contentType: String?, status: Int, code: String)] = [
        (#"{"username":"dave","password":"long enough"}"#, nil, 415, "unsupported_media_type"),
        (#"{"username":"dave","password":"long enough"}"#, "text/plain", 415, "unsupported_media_type"),
        ("", "application/json", 400, "invalid_request"),
        ("{not json", "application/json", 400, "invalid_request"),
        (#"["dave","long enough"]"#, "application/json", 400, "invalid_request"),
        (#""dave""#, "application/json", 400, "invalid_request"),
        (#"{"username":"dave"}"#, "application/json", 400, "invalid_request"),
        (#"{"password":"long enough"}"#, "application/json", 400, "invalid_request"),
        (#"{"username":42,"password":"long enough"}"#, "application/json", 400, "invalid_request"),
        (#"{"username":"dave","password":null}"#, "application/json", 400, "invalid_request"),
        (#"{"username":"dave","password":["a"]}"#, "application/json", 400, "invalid_request"),
        (#"{"username":"dave","username":"root","password":"long enough"}"#, "application/json", 400, "invalid_request"),
        (#"{"username":"da","password":"long enough"}"#, "application/json", 400, "invalid_request"),
        (#"{"username":"dave smith","password":"long enough"}"#, "application/json", 400, "invalid_request"),
        (#"{"username":"d\u00e4ve","password":"long enough"}"#, "application/json", 400, "invalid_request"),
        (#"{"username":"dave","password":"short"}"#, "application/json", 400, "weak_password"),
        (#"{"username":"davedave","password":"DAVEDAVE"}"#, "application/json", 400, "weak_password"),
        (
            #"{"username":"dave","password":""# + String(repeating: "p", count: 1025) + #""}"#, "application/json",
            400, "invalid_request"
        ),
    ]

    @Test(arguments: badRegistrations)
    func badRegistrationIsRefusedWithAClearError(
        _ row: (body: String, contentType: String?, status: Int, code: String)
    ) async throws {
        try await withGatehouse { gatehouse in
            var headers: [(String, String)] = []
            if let contentType = row.contentType { headers.append(("Content-Type", contentType)) }
            let response = try gatehouse.client().send("POST", "/register", headers: headers, body: Array(row.body.utf8))
            #expect(response.status == row.status)
            let error = try response.json().objectValue
            #expect(error?["error"]?.stringValue == row.code)
            #expect((error?["message"]?.stringValue?.count ?? 0) > 10)
        }
    }

    @Test func usernameIsUniqueWithoutRegardToCaseAndNeverOverwritten() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            #expect(
                try client.send("POST", "/register", json: ["username": "Erin", "password": "first password"]).status
                    == 201)
            for name in ["Erin", "erin", "ERIN"] {
                let again = try client.send("POST", "/register", json: ["username": .string(name), "password": "second password"])
                #expect(again.status == 409)
                #expect(try again.json().objectValue?["error"] == "username_taken")
            }
            // The tutorial overwrote the password here; Gatehouse must not.
            #expect(try client.send("POST", "/login", json: ["username": "erin", "password": "first password"]).status == 200)
            #expect(try client.send("POST", "/login", json: ["username": "Erin", "password": "second password"]).status == 401)
        }
    }

    @Test func twentyFourConcurrentRegistrationsOfOneNameGiveExactlyOneSuccess() async throws {
        try await withGatehouse { gatehouse in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<24 {
                    group.addTask {
                        let response = try httpRequest(
                            port: gatehouse.port, "POST", "/register",
                            headers: [("Content-Type", "application/json")],
                            body: Array(#"{"username":"race","password":"password number \#(index)"}"#.utf8))
                        return response.status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 201 }.count == 1)
            #expect(statuses.filter { $0 == 409 }.count == 23)
        }
    }

    @Test func unknownUserAndWrongPasswordGetTheIdenticalAnswer() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            _ = try client.send("POST", "/register", json: ["username": "frank", "password": "right password"])
            let wrong = try client.send("POST", "/login", json: ["username": "frank", "password": "wrong password"])
            let unknown = try client.send("POST", "/login", json: ["username": "nobody", "password": "wrong password"])
            #expect(wrong.status == 401)
            #expect(unknown.status == 401)
            #expect(wrong.body == unknown.body)
            #expect(try wrong.json().objectValue?["error"] == "invalid_credentials")
            // Both paths ran Argon2: the log says which failed, the client cannot tell.
            let failures = gatehouse.logs.lines.filter { $0.contains("event=login_failed") }
            #expect(failures.contains { $0.contains("wrong_password") })
            #expect(failures.contains { $0.contains("unknown_user") })
        }
    }

    @Test func loginWithMissingFieldsIsABadRequest() async throws {
        try await withGatehouse { gatehouse in
            let response = try gatehouse.client().send("POST", "/login", json: ["username": "frank"])
            #expect(response.status == 400)
            #expect(try response.json().objectValue?["error"] == "invalid_request")
        }
    }

    @Test func passwordsAreStoredAsArgon2idPHCStrings() async throws {
        try await withGatehouse { gatehouse in
            _ = try registerAndLogin(gatehouse, "grace")
            // A second connection to the same SQLite file (WAL allows it).
            let store = try SQLiteStore(path: gatehouse.dataDirectory + "/gatehouse.db")
            let stored = try #require(try store.user(named: "GRACE"))
            #expect(stored.passwordHash.hasPrefix("$argon2id$v=19$m=1024,t=1,p=1$"))
            #expect(!stored.passwordHash.contains("password-of-grace"))
        }
    }
}
