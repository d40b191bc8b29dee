import AuthService
import Foundation
import JSON
import MicroHTTP
import Testing
import TestSupport

/// `GET /metrics` of a live Gatehouse, read with `prometheus_client`'s text
/// parser (the test venv): every metric the service promises is there, and
/// each moves by exactly what happened.
@Suite struct MetricsTests {
    static let password = "a fine password"

    /// Scrapes `/metrics` on `client`'s connection (so every request it sent
    /// before has been counted: libmicrohttpd ends one request on a
    /// connection, completion callback included, before it reads the next).
    static func scrape(_ client: HTTPTestClient) async throws -> PrometheusExposition {
        let response = try client.send("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(response.header("X-Request-Id") != nil)
        return try await PrometheusExposition.parse(response.text)
    }

    static func login(_ client: HTTPTestClient, _ username: String, _ password: String) throws -> TestResponse {
        try client.send("POST", "/login", json: ["username": .string(username), "password": .string(password)])
    }

    static func register(_ client: HTTPTestClient, _ username: String) throws -> TestResponse {
        try client.send("POST", "/register", json: ["username": .string(username), "password": .string(password)])
    }

    /// Every family the service promises, by sample name, with its type.
    static let families: [(sample: String, type: String)] = [
        ("gatehouse_http_requests_total", "counter"),
        ("gatehouse_http_request_duration_seconds_count", "histogram"),
        ("gatehouse_http_requests_in_flight", "gauge"),
        ("gatehouse_logins_total", "counter"),
        ("gatehouse_registrations_total", "counter"),
        ("gatehouse_refreshes_total", "counter"),
        ("gatehouse_token_verifications_total", "counter"),
        ("gatehouse_rate_limited_total", "counter"),
        ("gatehouse_hash_queue_depth", "gauge"),
        ("gatehouse_store_queue_depth", "gauge"),
        ("gatehouse_revoked_sessions", "gauge"),
        ("gatehouse_signing_keys", "gauge"),
        ("gatehouse_signature_cache_entries", "gauge"),
        ("gatehouse_signature_cache_hits_total", "counter"),
        ("gatehouse_signature_cache_misses_total", "counter"),
        ("gatehouse_build_info", "gauge"),
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ]

    @Test func everyPromisedMetricIsThereWithItsTypeAndEveryOutcomeLabel() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            _ = try client.send("GET", "/healthz")
            let metrics = try await Self.scrape(client)
            for (sample, type) in Self.families {
                let family = metrics.family(of: sample)
                #expect(family?.type == type, "\(sample): \(family.map { "\($0.type)" } ?? "missing")")
                #expect(family?.help.isEmpty == false)
            }
            func labels(_ name: String, _ label: String) -> Set<String> {
                Set(metrics.samples(name).compactMap { $0.labels[label] })
            }
            #expect(
                labels("gatehouse_logins_total", "outcome")
                    == ["success", "invalid_credentials", "rate_limited", "invalid_request", "unavailable", "error"])
            #expect(
                labels("gatehouse_registrations_total", "outcome")
                    == ["success", "username_taken", "weak_password", "invalid_request", "rate_limited", "unavailable",
                        "error"])
            #expect(
                labels("gatehouse_refreshes_total", "outcome")
                    == ["success", "invalid_token", "reuse_detected", "invalid_request", "rate_limited", "unavailable",
                        "error"])
            #expect(
                labels("gatehouse_token_verifications_total", "result")
                    == ["valid", "missing", "invalid", "expired", "revoked"])
            #expect(
                labels("gatehouse_rate_limited_total", "limit")
                    == ["login_ip", "login_username", "register_ip", "refresh_ip"])
            #expect(metrics.value("gatehouse_signing_keys", ["state": "active"]) == 1)
            #expect(metrics.value("gatehouse_build_info", ["version": Version.current]) == 1)
            #expect(metrics.value("gatehouse_hash_queue_depth") == 0)
            #expect(metrics.value("gatehouse_revoked_sessions") == 0)
            #expect(
                metrics.value("gatehouse_http_requests_total", ["route": "/healthz", "method": "GET", "status": "200"])
                    == 1)
            // The process: this test process, which runs the service in-process.
            let resident = try #require(metrics.value("process_resident_memory_bytes"))
            #expect(resident > 1_000_000)
            let open = try #require(metrics.value("process_open_fds"))
            #expect(open >= 3)
            let maximum = try #require(metrics.value("process_max_fds"))
            #expect(maximum >= open)
            let cpu = try #require(metrics.value("process_cpu_seconds_total"))
            #expect(cpu > 0)
            let start = try #require(metrics.value("process_start_time_seconds"))
            #expect(abs(start - Date().timeIntervalSince1970) < 24 * 3600)
        }
    }

    @Test func eachCounterMovesByExactlyWhatHappened() async throws {
        try await withGatehouse { gatehouse in
            let client = try gatehouse.client()
            var before = try await Self.scrape(client)
            /// What changed since `before` for one series (absent counts as 0).
            func moved(_ after: PrometheusExposition, _ name: String, _ labels: [String: String] = [:]) -> Double {
                (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0)
            }

            #expect(try Self.register(client, "meter").status == 201)
            #expect(try Self.register(client, "METER").status == 409)
            var after = try await Self.scrape(client)
            #expect(moved(after, "gatehouse_registrations_total", ["outcome": "success"]) == 1)
            #expect(moved(after, "gatehouse_registrations_total", ["outcome": "username_taken"]) == 1)
            #expect(moved(after, "gatehouse_logins_total", ["outcome": "success"]) == 0)

            before = after
            let tokens = try Tokens(try Self.login(client, "meter", Self.password))
            after = try await Self.scrape(client)
            #expect(moved(after, "gatehouse_logins_total", ["outcome": "success"]) == 1)
            #expect(after.samples("gatehouse_logins_total").map { moved(after, $0.name, $0.labels) }.reduce(0, +) == 1)
            #expect(
                moved(after, "gatehouse_http_requests_total", ["route": "/login", "method": "POST", "status": "200"])
                    == 1)

            before = after
            #expect(try Self.login(client, "meter", "not the password").status == 401)
            #expect(try Self.login(client, "nobody", "not the password").status == 401)
            #expect(try client.send("POST", "/login", json: ["username": "meter"]).status == 400)
            after = try await Self.scrape(client)
            #expect(moved(after, "gatehouse_logins_total", ["outcome": "invalid_credentials"]) == 2)
            #expect(moved(after, "gatehouse_logins_total", ["outcome": "invalid_request"]) == 1)
            #expect(moved(after, "gatehouse_logins_total", ["outcome": "success"]) == 0)

            before = after
            #expect(try client.get("/protected", bearer: tokens.access).status == 200)
            #expect(try client.get("/protected", bearer: tokens.access).status == 200)
            let verify = try client.send("GET", "/auth/verify", headers: [("Authorization", "Bearer \(tokens.access)")])
            #expect(verify.status == 200)
            #expect(try client.get("/protected", bearer: "not.a.token").status == 401)
            #expect(try client.send("GET", "/protected").status == 401)
            #expect(try client.send("GET", "/no/such/route").status == 404)
            after = try await Self.scrape(client)
            #expect(moved(after, "gatehouse_token_verifications_total", ["result": "valid"]) == 3)
            #expect(moved(after, "gatehouse_token_verifications_total", ["result": "invalid"]) == 1)
            #expect(moved(after, "gatehouse_token_verifications_total", ["result": "missing"]) == 1)
            let protected = ["route": "/protected", "method": "GET", "status": "200"]
            #expect(moved(after, "gatehouse_http_requests_total", protected) == 2)
            #expect(
                moved(after, "gatehouse_http_requests_total", ["route": "/protected", "method": "GET", "status": "401"])
                    == 2)
            let verified = ["route": "/auth/verify", "method": "GET", "status": "200"]
            #expect(moved(after, "gatehouse_http_requests_total", verified) == 1)
            #expect(
                moved(after, "gatehouse_http_requests_total", ["route": "unmatched", "method": "GET", "status": "404"])
                    == 1)
            #expect(moved(after, "gatehouse_http_request_duration_seconds_count", ["route": "/protected"]) == 4)
            #expect(
                moved(after, "gatehouse_http_request_duration_seconds_bucket", ["route": "/protected", "le": "+Inf"])
                    == 4)
            #expect(moved(after, "gatehouse_http_request_duration_seconds_sum", ["route": "/protected"]) > 0)

            // Refresh, then replay the used refresh token: the session is revoked.
            before = after
            let rotated = try client.refresh(tokens.refresh)
            #expect(rotated.status == 200)
            #expect(try client.refresh(tokens.refresh).status == 401)
            #expect(try client.refresh("garbage").status == 401)
            #expect(try client.get("/protected", bearer: tokens.access).status == 401)
            after = try await Self.scrape(client)
            #expect(moved(after, "gatehouse_refreshes_total", ["outcome": "success"]) == 1)
            #expect(moved(after, "gatehouse_refreshes_total", ["outcome": "reuse_detected"]) == 1)
            #expect(moved(after, "gatehouse_refreshes_total", ["outcome": "invalid_token"]) == 1)
            #expect(moved(after, "gatehouse_token_verifications_total", ["result": "revoked"]) == 1)
            #expect(moved(after, "gatehouse_revoked_sessions") == 1)

            // An access token past its expiry (and the leeway).
            before = after
            let fresh = try Tokens(try Self.login(client, "meter", Self.password))
            gatehouse.clock.advance(by: Double(gatehouse.application.configuration.accessTTL + 31))
            #expect(try client.get("/protected", bearer: fresh.access).status == 401)
            after = try await Self.scrape(client)
            #expect(moved(after, "gatehouse_token_verifications_total", ["result": "expired"]) == 1)
            #expect(moved(after, "gatehouse_token_verifications_total", ["result": "valid"]) == 0)
        }
    }

    @Test func refusalsByARateLimitAreCountedByLimitAndAsTheirOutcome() async throws {
        try await withGatehouse({
            $0.rateLimits.loginPerIP = 2
            $0.rateLimits.registerPerIP = 1
        }) { gatehouse in
            let client = try gatehouse.client()
            let before = try await Self.scrape(client)
            for _ in 0..<2 { #expect(try Self.login(client, "someone", "wrong password").status == 401) }
            #expect(try Self.login(client, "someone", "wrong password").status == 429)
            #expect(try Self.register(client, "first").status == 201)
            #expect(try Self.register(client, "second").status == 429)
            let after = try await Self.scrape(client)
            func moved(_ name: String, _ labels: [String: String]) -> Double {
                (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0)
            }
            #expect(moved("gatehouse_rate_limited_total", ["limit": "login_ip"]) == 1)
            #expect(moved("gatehouse_rate_limited_total", ["limit": "register_ip"]) == 1)
            #expect(moved("gatehouse_logins_total", ["outcome": "rate_limited"]) == 1)
            #expect(moved("gatehouse_logins_total", ["outcome": "invalid_credentials"]) == 2)
            #expect(moved("gatehouse_registrations_total", ["outcome": "rate_limited"]) == 1)
            #expect(moved("gatehouse_registrations_total", ["outcome": "success"]) == 1)
            #expect(
                moved("gatehouse_http_requests_total", ["route": "/login", "method": "POST", "status": "429"]) == 1)
        }
    }

    /// `GATEHOUSE_METRICS=off`: no `/metrics` route (404, the JSON error of
    /// any unknown path) and the service otherwise unchanged; a bad value
    /// stops the start with the setting's name.
    @Test func metricsOffServesNoMetricsAndTheRestWorks() async throws {
        #expect(try Configuration.parse(environment: [:], arguments: []).metrics)
        #expect(try !Configuration.parse(environment: ["GATEHOUSE_METRICS": "off"], arguments: []).metrics)
        #expect(throws: ConfigurationError.self) {
            try Configuration.parse(environment: ["GATEHOUSE_METRICS": "maybe"], arguments: [])
        }
        try await withGatehouse({ $0.metrics = false }) { gatehouse in
            let client = try gatehouse.client()
            let metrics = try client.send("GET", "/metrics")
            #expect(metrics.status == 404)
            #expect(try metrics.json().objectValue?["error"] == "not_found")
            #expect(try Self.register(client, "quiet").status == 201)
            let login = try Self.login(client, "quiet", Self.password)
            #expect(login.status == 200)
            let token = try #require(try login.json().objectValue?["access_token"]?.stringValue)
            #expect(try client.get("/protected", bearer: token).status == 200)
        }
    }
}
