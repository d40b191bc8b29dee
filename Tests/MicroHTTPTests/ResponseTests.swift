import JSON
import MicroHTTP
import Testing

/// An error of a controller's own that knows its HTTP rendering.
struct SlowDown: HTTPResponseError {
    var status: Int { 429 }
    var errorCode: String { "rate_limited" }
    var message: String { "Slow down." }
    var responseHeaders: HTTPHeaders { ["Retry-After": "7"] }
}

/// An HTTPResponseError that keeps the default (no) extra headers.
struct Gone: HTTPResponseError {
    var status: Int { 410 }
    var errorCode: String { "gone" }
    var message: String { "It is gone." }
}

@Suite("Responses and HTTP errors")
struct ResponseTests {
    @Test("an HTTPResponseError renders as its status, headers and {error, message}")
    func errorRendering() throws {
        let response = SlowDown().response
        #expect(response.status == 429)
        #expect(response.headers["Retry-After"] == "7")
        #expect(response.headers["Content-Type"] == "application/json")
        #expect(try response.jsonBody() == ["error": "rate_limited", "message": "Slow down."])
        #expect(Gone().response.headers.fields.map(\.name) == ["Content-Type"])
    }

    @Test(
        "MicroHTTP's own errors",
        arguments: [
            (HTTPError.notFound("/x"), 404, "not_found"),
            (.methodNotAllowed(.delete, allowed: [.get, .head]), 405, "method_not_allowed"),
            (.payloadTooLarge(limit: 1024), 413, "payload_too_large"),
            (.internalError, 500, "internal_error"),
            (.unavailable("Busy.", retryAfter: 3), 503, "unavailable"),
        ])
    func builtInErrors(_ error: HTTPError, _ status: Int, _ code: String) throws {
        let body = try error.response.jsonBody()
        #expect(error.response.status == status)
        #expect(body.objectValue?["error"] == .string(code))
        #expect(body.objectValue?["message"]?.stringValue?.isEmpty == false)
        #expect(body.objectValue?.keys == ["error", "message"])
    }

    @Test("405 carries Allow; 503 carries Retry-After")
    func errorHeaders() {
        #expect(HTTPError.methodNotAllowed(.delete, allowed: [.get, .head]).response.headers["Allow"] == "GET, HEAD")
        #expect(HTTPError.unavailable("Busy.", retryAfter: 3).response.headers["Retry-After"] == "3")
    }

    @Test("json() sets one Content-Type, replacing one given in any case")
    func jsonContentType() {
        let response = Response.json(["a": 1], status: 201, headers: ["content-type": "text/plain", "X-A": "b"])
        #expect(response.status == 201)
        #expect(response.headers.values(for: "Content-Type") == ["application/json"])
        #expect(response.headers["X-A"] == "b")
        #expect(response.body == Array(#"{"a":1}"#.utf8))
    }

    @Test("the security headers filter adds nosniff, frame denial and no referrer")
    func securityHeaders() {
        var response = Response.empty()
        SecurityHeadersFilter().apply(to: &response, for: Request(method: .get, path: "/"))
        #expect(response.headers["X-Content-Type-Options"] == "nosniff")
        #expect(response.headers["X-Frame-Options"] == "DENY")
        #expect(response.headers["Referrer-Policy"] == "no-referrer")
    }
}
