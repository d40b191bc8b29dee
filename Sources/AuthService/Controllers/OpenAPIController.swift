public import MicroHTTP

/// `GET /openapi.json` and `GET /openapi.yaml`: the HTTP contract
/// (`docs/openapi.yaml`), compiled into the binary and converted to JSON once.
public struct OpenAPIController: Sendable {
    let json: [UInt8]
    let yaml: [UInt8]

    /// - Throws: `ConfigurationError` naming the line when the compiled-in
    ///   document cannot be read (a build defect the unit tests catch).
    public init() throws(ConfigurationError) {
        do {
            json = try OpenAPIDocument.json()
        } catch {
            throw ConfigurationError("the compiled-in docs/openapi.yaml cannot be read: \(error)")
        }
        yaml = OpenAPIDocument.yaml
    }

    public func addRoutes(to router: inout Router) {
        router.get("/openapi.json", document)
        router.get("/openapi.yaml", source)
    }

    /// The OpenAPI 3.1 document as JSON.
    @Sendable public func document(_ request: Request) -> Response { .jsonBytes(json) }

    /// The OpenAPI document as written, YAML (RFC 9512 media type).
    @Sendable public func source(_ request: Request) -> Response {
        Response(status: 200, headers: ["Content-Type": "application/yaml; charset=utf-8"], body: yaml)
    }
}
