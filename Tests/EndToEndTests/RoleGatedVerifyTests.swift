import Foundation
import JSON
import Testing
import TestSupport

/// `/auth/verify` with roles: `X-Auth-Roles` on every 200, and
/// `X-Auth-Require-Role` (any one of a comma-separated list) answered 403
/// `forbidden` for a valid token without such a role.
@Suite struct RoleGatedVerifyTests {
    static let cases: [(required: String?, status: Int)] = [
        (nil, 200),
        ("admin", 403),
        ("editor", 200),
        ("admin,editor", 200),
        ("admin, billing:read", 200),
        (" admin ,  ops ", 403),
        ("", 200),
        (",", 200),
        ("Editor", 403),
    ]

    @Test(arguments: cases)
    func requiredRolesDecideBetween200And403(_ required: String?, _ status: Int) async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            try gatehouse.register("gina", over: client)
            try gatehouse.grant("gina", "editor")
            try gatehouse.grant("gina", "billing:read")
            let token = try client.login("gina", AdminAPITests.password).access
            var headers = [("Authorization", "Bearer \(token)")]
            if let required { headers.append(("X-Auth-Require-Role", required)) }
            for method in ["GET", "POST", "PROPFIND"] {
                let response = try client.send(method, "/auth/verify", headers: headers)
                #expect(response.status == status, "\(method) \(required ?? "-")")
                if status == 200 {
                    #expect(response.header("X-Auth-Roles") == "billing:read,editor")
                    #expect(response.header("X-Auth-User") == "gina")
                } else {
                    #expect(try response.json().objectValue?["error"] == "forbidden")
                }
            }
        }
    }

    @Test func aTokenWithoutRolesGetsNoRolesHeaderAndABadTokenIsStill401() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            try gatehouse.register("hank", over: client)
            let token = try client.login("hank", AdminAPITests.password).access
            let plain = try client.send("GET", "/auth/verify", headers: [("Authorization", "Bearer \(token)")])
            #expect(plain.status == 200)
            #expect(plain.header("X-Auth-Roles") == nil)
            let bad = try client.send(
                "GET", "/auth/verify", headers: [("Authorization", "Bearer x.y.z"), ("X-Auth-Require-Role", "admin")])
            #expect(bad.status == 401)
            let none = try client.send("GET", "/auth/verify", headers: [("X-Auth-Require-Role", "admin")])
            #expect(none.status == 401)
        }
    }
}
