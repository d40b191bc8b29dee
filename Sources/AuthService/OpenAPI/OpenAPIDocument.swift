internal import COpenAPI
public import JSON

/// Gatehouse's HTTP contract, `docs/openapi.yaml`, as compiled into the
/// binary (`Sources/COpenAPI`), and as JSON.
public enum OpenAPIDocument {
    /// The YAML source, byte for byte.
    public static let yaml: [UInt8] = Array(
        UnsafeBufferPointer(start: COpenAPI_document(), count: COpenAPI_document_length()))

    /// The document read by `YAML.parse`: computed once per process.
    public static let parsed: Result<JSONValue, YAMLError> = Result { () throws(YAMLError) in
        try YAML.parse(yaml)
    }

    /// The document as compact JSON, for `GET /openapi.json`.
    /// - Throws: `YAMLError` if the compiled-in document is outside the
    ///   subset `YAML` reads (a unit test parses it, so a build that passed
    ///   its tests never throws).
    public static func json() throws(YAMLError) -> [UInt8] {
        try parsed.get().serialized()
    }
}
