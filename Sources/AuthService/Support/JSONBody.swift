public import JSON
public import MicroHTTP

/// A request body that was checked to be a JSON object, with typed access to
/// its fields that turns every mistake into a 400 naming the field.
public struct JSONBody: Sendable {
    public let object: JSONObject

    /// Decodes the body of `request`.
    /// - Throws: 415 when the body is not declared as JSON; 400
    ///   `invalid_request` when it is empty, malformed, or not an object.
    public init(_ request: Request) throws(AuthError) {
        guard request.mediaType == "application/json" else { throw .unsupportedMediaType }
        guard !request.body.isEmpty else { throw .invalidRequest("The request body is empty; send a JSON object.") }
        let value: JSONValue
        do {
            value = try JSONValue.parse(request.body, maxDepth: 16)
        } catch {
            throw .invalidRequest("The request body is not valid JSON: \(error.description).")
        }
        guard case .object(let object) = value else {
            throw .invalidRequest("The request body must be a JSON object, not \(value.kindDescription).")
        }
        self.object = object
    }

    /// A required string field.
    public func string(_ name: String) throws(AuthError) -> String {
        guard let value = object[name] else { throw .invalidRequest("The field '\(name)' is required.") }
        guard case .string(let string) = value else {
            throw .invalidRequest("The field '\(name)' must be a string, not \(value.kindDescription).")
        }
        return string
    }
}
