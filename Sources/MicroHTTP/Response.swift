public import JSON

/// An HTTP response as a value: what a handler returns and what filters adjust.
public struct Response: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response (`Content-Type: application/json`).
    public static func json(_ value: JSONValue, status: Int = 200, headers: HTTPHeaders = [:]) -> Response {
        jsonBytes(value.serialized(), status: status, headers: headers)
    }

    /// A JSON response from an already-encoded body (a precomputed constant, say).
    public static func jsonBytes(_ body: [UInt8], status: Int = 200, headers: HTTPHeaders = [:]) -> Response {
        var response = Response(status: status, headers: headers, body: body)
        response.headers.set("Content-Type", "application/json")
        return response
    }

    /// The uniform error body `{"error": code, "message": message}`.
    public static func error(
        status: Int, code: String, message: String, headers: HTTPHeaders = [:]
    ) -> Response {
        json(["error": .string(code), "message": .string(message)], status: status, headers: headers)
    }

    /// A response with no body (204, say).
    public static func empty(status: Int = 204, headers: HTTPHeaders = [:]) -> Response {
        Response(status: status, headers: headers)
    }

    /// The body parsed as JSON, for tests and clients of the value.
    public func jsonBody() throws(JSONError) -> JSONValue { try JSONValue.parse(body) }
}
