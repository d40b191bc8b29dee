import AuthService
import Foundation
import JSON
import MicroHTTP
import TestSupport
import Testing

/// `docs/openapi.yaml` as the binary carries it: compiled in up to date, read
/// by the YAML subset reader exactly as PyYAML reads it, well-formed (every
/// reference resolves, every error code is one the service has), and served.
/// `ContractTests` checks it against the live service.
@Suite struct OpenAPIDocumentTests {
    static let sourcePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml").path

    static func document() throws -> JSONObject {
        try #require(try OpenAPIDocument.parsed.get().objectValue)
    }

    @Test func theCompiledInDocumentIsTheFileInTheRepository() throws {
        let file = try #require(FileManager.default.contents(atPath: Self.sourcePath))
        // If this fails, the build did not notice docs/openapi.yaml changed.
        #expect(OpenAPIDocument.yaml == Array(file))
    }

    @Test func itReadsExactlyAsPyYAMLReadsIt() async throws {
        let pyYAML = try await PyYAML.load(file: Self.sourcePath)
        let ours = try OpenAPIDocument.parsed.get()
        #expect(ours == pyYAML)
        // Member order is kept too, so the served JSON reads like the YAML.
        #expect(ours.serialized() == pyYAML.serialized())
    }

    @Test func itIsAnOpenAPI31DocumentWhoseOperationsHaveIDsAndResponses() throws {
        let document = try Self.document()
        #expect(document["openapi"]?.stringValue?.hasPrefix("3.1.") == true)
        let paths = try #require(document["paths"]?.objectValue)
        var operationIDs: [String] = []
        for (path, item) in paths.members {
            let operations = try #require(item.objectValue).members.filter { Self.methods.contains($0.key) }
            #expect(!operations.isEmpty, "\(path) has no operation")
            for (method, operation) in operations {
                let operation = try #require(operation.objectValue)
                operationIDs += [operation["operationId"]?.stringValue ?? "\(method) \(path) has no operationId"]
                let responses = try #require(operation["responses"]?.objectValue, "\(method) \(path)")
                for status in responses.keys {
                    #expect(Int(status).map { (100...599).contains($0) } == true, "\(method) \(path): \(status)")
                }
            }
        }
        #expect(Set(operationIDs).count == operationIDs.count, "operationIds repeat: \(operationIDs)")
    }

    @Test func everyReferenceResolves() throws {
        let document = JSONValue.object(try Self.document())
        var references: [String] = []
        Self.collectReferences(in: document, into: &references)
        #expect(references.count > 50)
        for reference in Set(references) {
            #expect(Self.resolve(reference, in: document) != nil, "unresolved $ref \(reference)")
        }
    }

    /// Every `error` a response documents is in the catalogue, `ErrorCode`,
    /// and every code in the catalogue is one some response documents or
    /// MicroHTTP's shared answers (404, 405, 501) and `internal_error` give.
    @Test func everyDocumentedErrorCodeIsInTheCatalogue() throws {
        let document = JSONValue.object(try Self.document())
        let catalogue = try #require(
            Self.resolve("#/components/schemas/ErrorCode", in: document)?.objectValue?["enum"]?.arrayValue)
        let codes = Set(catalogue.compactMap(\.stringValue))
        var used: Set<String> = []
        Self.collectErrorCodes(in: document, into: &used)
        #expect(used.isSubset(of: codes), "not in ErrorCode: \(used.subtracting(codes))")
        #expect(codes.subtracting(used) == ["internal_error"])
    }

    @Test func itIsServedAsJSONAndAsYAML() throws {
        let controller = try OpenAPIController()
        let json = controller.document(Request(method: .get, path: "/openapi.json"))
        #expect(json.status == 200)
        #expect(json.headers["Content-Type"] == "application/json")
        #expect(try json.jsonBody() == (try OpenAPIDocument.parsed.get()))
        let yaml = controller.source(Request(method: .get, path: "/openapi.yaml"))
        #expect(yaml.status == 200)
        #expect(yaml.headers["Content-Type"] == "application/yaml; charset=utf-8")
        #expect(yaml.body == OpenAPIDocument.yaml)
    }

    // MARK: - Walking the document

    static let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    static func collectReferences(in value: JSONValue, into references: inout [String]) {
        switch value {
        case .object(let object):
            for (key, member) in object.members {
                if key == "$ref", let reference = member.stringValue { references.append(reference) }
                collectReferences(in: member, into: &references)
            }
        case .array(let elements):
            for element in elements { collectReferences(in: element, into: &references) }
        default: break
        }
    }

    /// The values of `error` in the `properties` of every schema.
    static func collectErrorCodes(in value: JSONValue, into codes: inout Set<String>) {
        switch value {
        case .object(let object):
            if let error = object["properties"]?.objectValue?["error"]?.objectValue {
                if let code = error["const"]?.stringValue { codes.insert(code) }
                for code in error["enum"]?.arrayValue ?? [] { if let code = code.stringValue { codes.insert(code) } }
            }
            for member in object.members { collectErrorCodes(in: member.value, into: &codes) }
        case .array(let elements):
            for element in elements { collectErrorCodes(in: element, into: &codes) }
        default: break
        }
    }

    /// A local JSON pointer (`#/components/schemas/Error`), or nil.
    static func resolve(_ reference: String, in document: JSONValue) -> JSONValue? {
        guard reference.hasPrefix("#/") else { return nil }
        var value: JSONValue? = document
        for token in reference.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let name = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            value = value?.objectValue?[name]
        }
        return value
    }
}
