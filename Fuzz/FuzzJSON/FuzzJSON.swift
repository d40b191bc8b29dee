// FuzzJSON: libFuzzer target for the JSON parser and the service's request
// body decoding (`make fuzz`, `make fuzz-smoke`; Fuzz/README.md).
//
// Each input is one request body. Besides "no crash, no leak, no hang" it
// checks that the parser's entry points agree with one another:
// - `parse` over an Array, a buffer and a String (when the bytes are UTF-8)
//   give the same value or the same error;
// - a value parsed within a depth of 16 parses the same within 64;
// - parse, serialise, parse gives an equal value, and serialising that again
//   gives the same bytes;
// - `scanObject` accepts exactly the texts `parse` accepts as objects, and
//   every member it locates (name, kind, number, string, value span) is the
//   one `parse` built;
// - `JSONBody` (what every POST handler decodes) accepts exactly the objects
//   `parse(maxDepth: 16)` does (but for those it refuses for having
//   `JSONBody.maxValues` members and elements or more), with the same members.
// A disagreement traps, which libFuzzer reports as a crash with the input.
//
// Without `--sanitize=fuzzer` (a plain `swift build`) this file is the main
// file of an executable that does nothing; libFuzzer's own `main` drives it
// only in the fuzzing build, where SwiftPM compiles it as a library.

import AuthService
import JSON
import MicroHTTP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: size > 0 ? data : nil, count: size)
    JSONFuzzer.check(input)
    return 0
}

enum JSONFuzzer {
    static func check(_ input: UnsafeBufferPointer<UInt8>) {
        let bytes = Array(input)

        // MARK: Entry points agree
        let fromBuffer = Result { () throws(JSONError) in try JSONValue.parse(input) }
        let fromArray = Result { () throws(JSONError) in try JSONValue.parse(bytes) }
        expect(same(fromBuffer, fromArray), "parse(buffer) and parse(array) differ", input)
        // A collection without contiguous storage takes the copying path.
        let fromLazy = Result { () throws(JSONError) in try JSONValue.parse(input.lazy.map { $0 }) }
        expect(same(fromBuffer, fromLazy), "parse(buffer) and parse(lazy collection) differ", input)
        if let text = String(validating: bytes, as: UTF8.self) {
            let fromString = Result { () throws(JSONError) in try JSONValue.parse(text) }
            expect(same(fromBuffer, fromString), "parse(buffer) and parse(string) differ", input)
        }
        let shallow = Result { () throws(JSONError) in try JSONValue.parse(input, maxDepth: 16) }
        if case .success(let value) = shallow {
            expect(fromBuffer == .success(value), "a value within depth 16 differs within 64", input)
        }

        // MARK: Round trip
        if case .success(let value) = fromBuffer {
            let encoded = value.serialized()
            let reparsed = Result { () throws(JSONError) in try JSONValue.parse(encoded) }
            expect(reparsed == .success(value), "parse(serialized(v)) != v", input)
            if case .success(let again) = reparsed {
                expect(again.serialized() == encoded, "serialising twice gives different bytes", input)
            }
        }

        // MARK: scanObject agrees with parse
        checkScan(input, parsed: fromBuffer)

        // MARK: Request body decoding
        let request = Request(
            method: .post, path: "/login", headers: ["Content-Type": "application/json; charset=utf-8"],
            body: bytes)
        let body = Result { () throws(AuthError) in try JSONBody(request) }
        switch (body, shallow) {
        case (.success(let body), .success(.object(let object))):
            expect(body.object == object, "JSONBody differs from parse", input)
            // What /register and /login do with the fields.
            if let username = try? body.string("username"), let password = try? body.string("password") {
                _ = try? CredentialRules.validateUsername(username)
                _ = try? CredentialRules.validatePassword(password, username: username)
            }
            _ = try? body.string("refresh_token")
        case (.failure, .success(.object(let object))):
            // JSONBody refuses a body of `maxValues` separators or more before parsing it.
            expect(
                separators(in: .object(object)) >= JSONBody.maxValues, "JSONBody refused an object parse accepts",
                input)
        case (.success, _):
            expect(false, "JSONBody accepted what parse refuses or is not an object", input)
        case (.failure, _):
            break
        }
    }

    /// `scanObject` must accept exactly the objects `parse` accepts and
    /// locate each of their members where `parse` found it.
    static func checkScan(_ input: UnsafeBufferPointer<UInt8>, parsed: Result<JSONValue, JSONError>) {
        var members: [JSONScannedMember] = []
        let scanned = Result { () throws(JSONError) in
            try JSONValue.scanObject(input) { members.append($0) }
        }
        guard case .success(.object(let object)) = parsed else {
            expect(scanned.isFailure, "scanObject accepted what parse refuses or is not an object", input)
            return
        }
        expect(!scanned.isFailure, "scanObject refused an object parse accepts", input)
        expect(members.count == object.count, "scanObject saw a different number of members", input)
        for (member, (key, value)) in zip(members, object.members) {
            let name = JSONValue.string(member.name, in: input)
            expect(name == key, "scanObject member name differs", input)
            let nameIsASCII = key.utf8.allSatisfy { $0 < 0x80 }
            expect(
                JSONValue.string(member.name, in: input, equals: key, otherIsASCII: nameIsASCII),
                "string(_:in:equals:) refused the member's own name", input)
            // The value's span parses to the value.
            let span = UnsafeBufferPointer(rebasing: input[member.valueStart..<member.valueEnd])
            let spanValue = Result { () throws(JSONError) in try JSONValue.parse(span) }
            expect(spanValue == .success(value), "a member's value span does not parse to its value", input)
            switch value {
            case .null: expect(member.kind == .null, "kind differs (null)", input)
            case .bool(let flag):
                expect(member.kind == .bool && member.number == (flag ? 1 : 0), "kind differs (bool)", input)
            case .number(let number):
                expect(member.kind == .number && member.number == number, "number differs", input)
            case .string(let string):
                expect(member.kind == .string, "kind differs (string)", input)
                expect(JSONValue.string(member.string, in: input) == string, "string differs", input)
            case .array: expect(member.kind == .array, "kind differs (array)", input)
            case .object: expect(member.kind == .object, "kind differs (object)", input)
            }
            // `nameWord` is exactly an ASCII name of up to eight bytes (the verifier relies on it).
            if member.name.shape == .ascii, key.utf8.count <= 8 {
                var word: UInt64 = 0
                for (offset, byte) in key.utf8.enumerated() { word |= UInt64(byte) << (8 * UInt64(offset)) }
                expect(member.nameWord == word, "nameWord is not the name's bytes", input)
            }
        }
    }

    /// The `,` separators in the text of `value`: one fewer than the members
    /// or elements of each container that has any.
    static func separators(in value: JSONValue) -> Int {
        switch value {
        case .array(let elements):
            max(0, elements.count - 1) + elements.reduce(0) { $0 + separators(in: $1) }
        case .object(let object):
            max(0, object.count - 1) + object.members.reduce(0) { $0 + separators(in: $1.value) }
        default: 0
        }
    }

    /// Whether two parse results are the same value, or errors at the same offset.
    static func same(_ a: Result<JSONValue, JSONError>, _ b: Result<JSONValue, JSONError>) -> Bool {
        switch (a, b) {
        case (.success(let x), .success(let y)): x == y
        case (.failure(let x), .failure(let y)): x == y
        default: false
        }
    }

    /// Traps with `message` (and the input's length) when `condition` is false:
    /// libFuzzer reports it as a crash and saves the input.
    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, _ input: UnsafeBufferPointer<UInt8>) {
        guard !condition else { return }
        fatalError("FuzzJSON: \(message()) (input of \(input.count) bytes)")
    }
}

extension Result {
    fileprivate var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
