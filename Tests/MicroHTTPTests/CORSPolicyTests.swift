import MicroHTTP
import Testing

@Suite("CORS policy")
struct CORSPolicyTests {
    static let app = "https://app.example.com"
    static let listed = CORSPolicy(allowedOrigins: .list([app, "http://localhost:3000"]))

    // MARK: - Parsing GATEHOUSE_CORS_ORIGINS

    @Test(
        "accepted origin settings",
        arguments: [
            ("*", CORSPolicy.AllowedOrigins.any),
            ("  *  ", .any),
            ("https://app.example.com", .list(["https://app.example.com"])),
            (
                " https://app.example.com , http://localhost:3000/ ",
                .list(["https://app.example.com", "http://localhost:3000"])
            ),
            (
                "https://a.example.com/,https://b.example.com",
                .list(["https://a.example.com", "https://b.example.com"])
            ),
            ("https://a.example.com,,", .list(["https://a.example.com"])),
        ])
    func parses(_ text: String, _ expected: CORSPolicy.AllowedOrigins) {
        #expect(CORSPolicy.parseOrigins(text) == expected)
    }

    @Test(
        "refused origin settings",
        arguments: [
            "ftp://x",
            "https://*.x.com",
            "",
            "   ",
            ",",
            "app.example.com",
            "https://app.example.com, ftp://files.example.com",
            "*, https://app.example.com",
            "https://*",
            "https://",
        ])
    func refuses(_ text: String) {
        #expect(CORSPolicy.parseOrigins(text) == nil)
    }

    // MARK: - Headers on ordinary responses

    private func applied(_ policy: CORSPolicy, origin: String?) -> Response {
        var response = Response.json(["ok": true])
        var request = Request(method: .get, path: "/x")
        if let origin { request.headers.add("Origin", origin) }
        policy.apply(to: &response, for: request)
        return response
    }

    @Test("any origin: '*', the exposed headers, and no Vary")
    func anyOrigin() {
        let response = applied(CORSPolicy(), origin: "https://whoever.example")
        #expect(response.headers["Access-Control-Allow-Origin"] == "*")
        #expect(response.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate, Retry-After")
        #expect(response.headers["Access-Control-Allow-Credentials"] == nil)
        #expect(response.headers["Vary"] == nil)
    }

    @Test("no Origin header, no CORS headers")
    func noOrigin() {
        #expect(applied(CORSPolicy(), origin: nil).headers["Access-Control-Allow-Origin"] == nil)
        let listed = applied(Self.listed, origin: nil)
        #expect(listed.headers["Access-Control-Allow-Origin"] == nil)
        #expect(listed.headers["Vary"] == "Origin")
    }

    @Test("a listed origin is echoed back with Vary: Origin")
    func listedOrigin() {
        let response = applied(Self.listed, origin: Self.app)
        #expect(response.headers["Access-Control-Allow-Origin"] == Self.app)
        #expect(response.headers["Vary"] == "Origin")
        #expect(response.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate, Retry-After")
    }

    @Test(
        "an origin not on the list gets no CORS headers (but Vary: Origin, for caches)",
        arguments: [
            "https://evil.example", "https://app.example.com.evil.example", "http://app.example.com",
            "https://app.example.com:8443", "https://APP.example.com", "null", "",
        ])
    func unlistedOrigin(_ origin: String) {
        let response = applied(Self.listed, origin: origin)
        #expect(response.headers["Access-Control-Allow-Origin"] == nil)
        #expect(response.headers["Access-Control-Expose-Headers"] == nil)
        #expect(response.headers["Vary"] == "Origin")
    }

    // MARK: - Preflight

    private func preflight(
        _ policy: CORSPolicy, origin: String?, requestMethod: String? = "POST",
        allowed: [HTTPMethod] = [.get, .head, .options, .post]
    ) -> Response {
        var request = Request(method: .options, path: "/x")
        if let origin { request.headers.add("Origin", origin) }
        if let requestMethod { request.headers.add("Access-Control-Request-Method", requestMethod) }
        return policy.preflight(request, allowedMethods: allowed)
    }

    @Test("a preflight from an allowed origin: 204, no body, methods, headers, max age")
    func preflightAllowed() {
        for policy in [CORSPolicy(), Self.listed] {
            let response = preflight(policy, origin: Self.app)
            #expect(response.status == 204)
            #expect(response.body.isEmpty)
            #expect(response.headers["Allow"] == "GET, HEAD, OPTIONS, POST")
            #expect(response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS, POST")
            #expect(response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type")
            #expect(response.headers["Access-Control-Max-Age"] == "600")
        }
    }

    @Test("a preflight from another origin gets only Allow")
    func preflightRefused() {
        let response = preflight(Self.listed, origin: "https://evil.example")
        #expect(response.status == 204)
        #expect(response.headers["Allow"] == "GET, HEAD, OPTIONS, POST")
        #expect(response.headers["Access-Control-Allow-Methods"] == nil)
        #expect(response.headers["Access-Control-Allow-Headers"] == nil)
        #expect(response.headers["Access-Control-Max-Age"] == nil)
    }

    @Test("a plain OPTIONS (no Access-Control-Request-Method) is not a preflight")
    func plainOptions() {
        let response = preflight(CORSPolicy(), origin: Self.app, requestMethod: nil)
        #expect(response.status == 204)
        #expect(response.headers["Allow"] == "GET, HEAD, OPTIONS, POST")
        #expect(response.headers["Access-Control-Allow-Methods"] == nil)
    }

    @Test("custom headers and max age are used as configured")
    func customised() {
        let policy = CORSPolicy(allowedHeaders: ["Authorization", "X-Trace"], exposedHeaders: [], maxAge: 60)
        let response = preflight(policy, origin: Self.app)
        #expect(response.headers["Access-Control-Allow-Headers"] == "Authorization, X-Trace")
        #expect(response.headers["Access-Control-Max-Age"] == "60")
        #expect(applied(policy, origin: Self.app).headers["Access-Control-Expose-Headers"] == nil)
    }
}
