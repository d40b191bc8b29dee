import Foundation
import JSON
import Testing
import TestSupport

/// What the service does at the HTTP level, through the real daemon.
@Suite struct HTTPBehaviourTests {
    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let missing = try client.send("GET", "/nope")
            #expect(missing.status == 404)
            #expect(try missing.json().objectValue?["error"] == "not_found")
            let wrongMethod = try client.send("GET", "/login")
            #expect(wrongMethod.status == 405)
            #expect(try wrongMethod.json().objectValue?["error"] == "method_not_allowed")
            #expect(wrongMethod.header("Allow")?.contains("POST") == true)
            let deleteProtected = try client.send("DELETE", "/protected")
            #expect(deleteProtected.status == 405)
            #expect(deleteProtected.header("Allow")?.contains("GET") == true)
        }
    }

    @Test func oversizedBodyGets413AndTheServiceCarriesOn() async throws {
        try await withGatehouse({ $0.maxBodyBytes = 4096 }) { gatehouse in
            let big = Array(#"{"username":"x","password":""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: 5000)
                + Array(#""}"#.utf8)
            let client = try gatehouse.client()
            let response = try client.send(
                "POST", "/register", headers: [("Content-Type", "application/json")], body: big)
            #expect(response.status == 413)
            #expect(try response.json().objectValue?["error"] == "payload_too_large")
            // The unread body cannot be taken for a next request: the server closes.
            #expect(client.isClosedByPeer(within: 2))
            // Everyone else is served as before.
            #expect(try gatehouse.client().send("GET", "/healthz").status == 200)
        }
    }

    @Test func keepAliveServesManyRequestsOnOneConnection() async throws {
        try await withGatehouse { gatehouse in
            let token = try registerAndLogin(gatehouse, "keepalive")
            let client = try gatehouse.client()
            let port = client.localPort
            for _ in 0..<10 {
                let response = try client.send("GET", "/protected", headers: [("Authorization", "Bearer \(token)")])
                #expect(response.status == 200)
                #expect(!response.closesConnection)
            }
            _ = try client.send("POST", "/login", json: ["username": "keepalive", "password": "password-of-keepalive"])
            #expect(try client.send("GET", "/healthz").status == 200)
            #expect(client.localPort == port)
        }
    }

    @Test func corsPreflightAndAnyOrigin() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            let preflight = try client.send(
                "OPTIONS", "/login",
                headers: [
                    ("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "content-type"),
                ])
            #expect(preflight.status == 204)
            #expect(preflight.header("Access-Control-Allow-Origin") == "*")
            #expect(preflight.header("Access-Control-Allow-Methods")?.contains("POST") == true)
            #expect(preflight.header("Access-Control-Allow-Headers")?.contains("Content-Type") == true)
            #expect(preflight.header("Access-Control-Allow-Headers")?.contains("Authorization") == true)
            #expect(preflight.header("Access-Control-Max-Age") == "600")
            #expect(preflight.header("Access-Control-Allow-Credentials") == nil)
            let simple = try client.send("GET", "/healthz", headers: [("Origin", "https://app.example")])
            #expect(simple.header("Access-Control-Allow-Origin") == "*")
        }
    }

    @Test func corsAllowListEchoesOnlyListedOrigins() async throws {
        try await withGatehouse({
            $0.corsOrigins = .list(["https://app.example", "http://localhost:3000"])
        }) { gatehouse in
            let client = try gatehouse.client()
            let allowed = try client.send(
                "OPTIONS", "/register",
                headers: [("Origin", "http://localhost:3000"), ("Access-Control-Request-Method", "POST")])
            #expect(allowed.status == 204)
            #expect(allowed.header("Access-Control-Allow-Origin") == "http://localhost:3000")
            #expect(allowed.header("Vary")?.contains("Origin") == true)

            let refused = try client.send(
                "OPTIONS", "/register",
                headers: [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")])
            #expect(refused.header("Access-Control-Allow-Origin") == nil)
            #expect(refused.header("Access-Control-Allow-Methods") == nil)

            let error = try client.send("GET", "/protected", headers: [("Origin", "https://app.example")])
            #expect(error.status == 401)
            #expect(error.header("Access-Control-Allow-Origin") == "https://app.example")
            #expect(error.header("Access-Control-Expose-Headers")?.contains("WWW-Authenticate") == true)
        }
    }
}
