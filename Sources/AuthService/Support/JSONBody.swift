public import JSON
public import MicroHTTP

/// A request body that was checked to be a JSON object, with typed access to
/// its fields that turns every mistake into a 400 naming the field.
public struct JSONBody: Sendable {
    public let object: JSONObject

    /// The most members and array elements a body may hold, all levels together. Every Gatehouse
    /// request has two or three fields. The cap is checked by one linear pass before parsing, so a
    /// body of thousands of tiny members (`{"a0":0,"a1":0,...}`, whose duplicate-name check costs
    /// the parser time quadratic in their number) is refused without being parsed.
    public static let maxValues = 64

    /// Decodes the body of `request`.
    /// - Throws: 415 when the body is not declared as JSON; 400
    ///   `invalid_request` when it is empty, has more than ``maxValues`` members and elements,
    ///   is malformed, or is not an object.
    /// - Parameter maxValues: the cap on members and elements (``maxValues`` unless the endpoint
    ///   takes bigger bodies, as the admin API's `app_metadata`).
    public init(_ request: Request, maxValues: Int = Self.maxValues) throws(AuthError) {
        guard request.mediaType == "application/json" else { throw .unsupportedMediaType }
        guard !request.body.isEmpty else { throw .invalidRequest("The request body is empty; send a JSON object.") }
        guard Self.separators(in: request.body, upTo: maxValues) < maxValues else {
            throw .invalidRequest(
                "The request body has more than \(maxValues) members and array elements; "
                    + "send only the fields the endpoint takes.")
        }
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

    /// The `,` outside strings in `bytes`, counted up to `limit`: one fewer than the members and
    /// elements of a single object or array. Malformed text is left for the parser to refuse.
    static func separators(in bytes: [UInt8], upTo limit: Int) -> Int {
        bytes.withUnsafeBufferPointer { bytes in
            var count = 0
            var inString = false
            var escaped = false
            for byte in bytes {
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                } else if byte == UInt8(ascii: ",") {
                    count += 1
                    if count >= limit { return count }
                }
            }
            return count
        }
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
