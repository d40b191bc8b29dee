import JSON
import Testing

/// One input the parser must refuse, named for the test report.
struct Refusal: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let maxDepth: Int

    init(_ name: String, _ text: String, maxDepth: Int = 64) {
        self.init(name, bytes: Array(text.utf8), maxDepth: maxDepth)
    }

    init(_ name: String, bytes: [UInt8], maxDepth: Int = 64) {
        self.name = name
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    var testDescription: String { name }
}

/// One input the parser must accept, with the value it must produce.
struct Acceptance: Sendable, CustomTestStringConvertible {
    let text: String
    let expected: JSONValue

    init(_ text: String, _ expected: JSONValue) {
        self.text = text
        self.expected = expected
    }

    var testDescription: String {
        text.count > 40 ? String(text.prefix(40)).debugDescription + "..." : text.debugDescription
    }
}

private func nested(_ depth: Int) -> String {
    String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
}

@Suite("JSON parser")
struct JSONParserTests {
    static let refusals: [Refusal] = [
        Refusal("trailing garbage after an object", #"{"a":1} x"#),
        Refusal("two values", "1 2"),
        Refusal("extra closing bracket", "[]]"),
        Refusal("leading zero", "01"),
        Refusal("negative leading zero", "-01"),
        Refusal("NaN", "NaN"),
        Refusal("NaN inside an array", "[NaN]"),
        Refusal("Infinity", "Infinity"),
        Refusal("negative Infinity", "-Infinity"),
        Refusal("number overflowing a double", "1e400"),
        Refusal("plus sign", "+1"),
        Refusal("fraction without integer part", ".5"),
        Refusal("fraction without digits", "1."),
        Refusal("exponent without digits", "1e"),
        Refusal("minus alone", "-"),
        Refusal("hex number", "0x10"),
        Refusal("lone high surrogate", #""\ud800""#),
        Refusal("lone low surrogate", #""\udc00""#),
        Refusal("high surrogate then a letter", #""\ud800x""#),
        Refusal("high surrogate then a non-surrogate escape", #""\ud800\u0041""#),
        Refusal("two high surrogates", #""\ud800\ud800""#),
        Refusal("raw control character in a string", bytes: [0x22, 0x61, 0x01, 0x62, 0x22]),
        Refusal("raw newline in a string", "\"a\nb\""),
        Refusal("raw tab in a string after an escape", "\"\\n\tb\""),
        Refusal("invalid UTF-8 byte", bytes: [0x22, 0xFF, 0x22]),
        Refusal("overlong UTF-8 encoding", bytes: [0x22, 0xC0, 0xAF, 0x22]),
        Refusal("UTF-8 encoded surrogate", bytes: [0x22, 0xED, 0xA0, 0x80, 0x22]),
        Refusal("truncated UTF-8 sequence", bytes: [0x22, 0xE2, 0x82, 0x22]),
        Refusal("invalid UTF-8 after an escape", bytes: [0x22, 0x5C, 0x6E, 0xFF, 0x22]),
        Refusal("invalid UTF-8 in a member name", bytes: [0x7B, 0x22, 0xFE, 0x22, 0x3A, 0x31, 0x7D]),
        Refusal("byte order mark", bytes: [0xEF, 0xBB, 0xBF] + Array("{}".utf8)),
        Refusal("duplicate key", #"{"a":1,"a":2}"#),
        Refusal("duplicate key spelled with an escape", #"{"a":1,"\u0061":2}"#),
        Refusal("duplicate key in a nested object", #"{"x":{"b":true,"b":false}}"#),
        Refusal("arrays nested deeper than the default limit of 64", nested(65)),
        Refusal("objects nested deeper than a limit of 3", #"{"a":{"b":{"c":{}}}}"#, maxDepth: 3),
        Refusal("arrays nested deeper than a limit of 1", "[[]]", maxDepth: 1),
        Refusal("unterminated string", #""abc"#),
        Refusal("unterminated string ending in a backslash", #""abc\"#),
        Refusal("unterminated string after an escape", #""a\nbc"#),
        Refusal("truncated unicode escape", #""\u00"#),
        Refusal("non-hex unicode escape", #""\u00zz""#),
        Refusal("unknown escape", #""\x41""#),
        Refusal("single-quoted string", "'a'"),
        Refusal("single-quoted member name", "{'a':1}"),
        Refusal("unquoted member name", "{a:1}"),
        Refusal("trailing comma in an array", "[1,]"),
        Refusal("trailing comma in an object", #"{"a":1,}"#),
        Refusal("missing comma", "[1 2]"),
        Refusal("missing colon", #"{"a" 1}"#),
        Refusal("unclosed array", "[1"),
        Refusal("unclosed object", #"{"a":1"#),
        Refusal("empty input", ""),
        Refusal("only whitespace", " \n\t "),
        Refusal("misspelled literal", "tru"),
        Refusal("capitalised literal", "True"),
        Refusal("comment", "[1] // no"),
    ]

    @Test("refuses", arguments: refusals)
    func refuses(_ refusal: Refusal) {
        #expect(throws: JSONError.self) {
            try JSONValue.parse(refusal.bytes, maxDepth: refusal.maxDepth)
        }
    }

    static let acceptances: [Acceptance] = [
        Acceptance("0", 0),
        Acceptance("-0", .number(-0.0)),
        Acceptance("42", 42),
        Acceptance("-1.5", -1.5),
        Acceptance("1.5e3", 1500),
        Acceptance("2E-2", 0.02),
        Acceptance("1e+2", 100),
        Acceptance("1700000000", 1_700_000_000),
        Acceptance("true", true),
        Acceptance("false", false),
        Acceptance("null", nil),
        Acceptance(#""""#, ""),
        Acceptance(#""plain""#, "plain"),
        Acceptance("[]", []),
        Acceptance("{}", [:]),
        Acceptance(" \t\r\n[1, \"two\", null] \n", [1, "two", nil]),
        Acceptance(#"{"a":{"b":[true,{"c":null}]}}"#, ["a": ["b": [true, ["c": nil]]]]),
        Acceptance(#"{"": 0}"#, ["": 0]),
        Acceptance(#""caf\u00e9""#, "café"),
        Acceptance(#""caf\u00C9""#, "cafÉ"),
        Acceptance(#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{08}\u{0C}\n\r\t"),
        Acceptance(#""\u0000""#, "\u{0}"),
        Acceptance(#""\u2028""#, "\u{2028}"),
        Acceptance(#""\ud83d\ude00""#, "😀"),
        Acceptance(#""\uD83D\uDE00""#, "😀"),
        Acceptance(#""\udbff\udfff""#, "\u{10FFFF}"),
        Acceptance(#""a\ud834\udd1eb""#, "a𝄞b"),
        Acceptance("\"raw 😀 é \u{10FFFF}\"", "raw 😀 é \u{10FFFF}"),
        Acceptance(#""mixed é\n😀 \u00e9""#, "mixed é\n😀 é"),
        Acceptance(nested(64), nested64),
    ]

    private static let nested64: JSONValue = (1..<64).reduce(JSONValue.array([])) { inner, _ in .array([inner]) }

    @Test("accepts", arguments: acceptances)
    func accepts(_ acceptance: Acceptance) throws {
        #expect(try JSONValue.parse(acceptance.text) == acceptance.expected)
    }

    @Test("nesting exactly at the limit is accepted")
    func depthAtLimit() throws {
        let value = try JSONValue.parse(#"{"a":{"b":{"c":1}}}"#, maxDepth: 3)
        #expect(value == ["a": ["b": ["c": 1]]])
        #expect(try JSONValue.parse("[[]]", maxDepth: 2) == [[]])
    }

    @Test("a refusal names the byte offset where it went wrong")
    func errorOffset() {
        #expect(throws: JSONError.self) { try JSONValue.parse("[1,2] x") }
        do {
            _ = try JSONValue.parse("[1,2] x")
        } catch {
            #expect(error.offset == 6)
            #expect(error.description.contains("at byte 6"))
        }
    }

    @Test("surrogate pairs decode to one scalar")
    func surrogatePair() throws {
        let value = try JSONValue.parse(#""\ud83d\ude00""#)
        let string = try #require(value.stringValue)
        #expect(string.unicodeScalars.map(\.value) == [0x1F600])
        #expect(Array(string.utf8) == [0xF0, 0x9F, 0x98, 0x80])
    }

    @Test("object members keep their order")
    func keyOrder() throws {
        let value = try JSONValue.parse(#"{"zeta":1,"alpha":2,"mid":{"y":1,"x":2}}"#)
        let object = try #require(value.objectValue)
        #expect(object.keys == ["zeta", "alpha", "mid"])
        #expect(object["mid"]?.objectValue?.keys == ["y", "x"])
        #expect(value.serializedString == #"{"zeta":1,"alpha":2,"mid":{"y":1,"x":2}}"#)
    }

    @Test("accessors return the payload only for their own kind")
    func accessors() throws {
        let value = try JSONValue.parse(#"{"s":"x","n":1.5,"b":true,"a":[1],"o":{}}"#)
        let object = try #require(value.objectValue)
        #expect(object["s"]?.stringValue == "x")
        #expect(object["n"]?.numberValue == 1.5)
        #expect(object["b"]?.boolValue == true)
        #expect(object["a"]?.arrayValue == [1])
        #expect(object["o"]?.objectValue == JSONObject())
        #expect(object["s"]?.numberValue == nil)
        #expect(object["n"]?.stringValue == nil)
        #expect(object["missing"] == nil)
        #expect(object["a"]?.kindDescription == "an array")
    }
}
