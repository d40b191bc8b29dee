import JSON
import Testing

@Suite("JSON encoding")
struct JSONEncodingTests {
    /// A value that uses every kind, escapes, non-ASCII text and awkward numbers.
    static let varied: JSONValue = [
        "id": 1_700_000_000,
        "name": "Zoë \"Z\" O'Brien\\",
        "html": "<script>alert('x')</script> & more",
        "controls": "\u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F}",
        "unicode": "😀 𝄞 \u{2028} \u{10FFFF}",
        "numbers": [0, -1, 1.5, -0.25, 1e-7, 3.141592653589793, 9_007_199_254_740_992, 1e300, -2.5e-300],
        "flags": [true, false, nil],
        "nested": ["empty_array": [], "empty_object": [:], "deep": [[["x": [1, [2, [3]]]]]]],
        "": "empty key",
    ]

    @Test("parse(serialized(x)) == x, and the text survives a second round unchanged")
    func roundTrip() throws {
        let text = Self.varied.serialized()
        let parsed = try JSONValue.parse(text)
        #expect(parsed == Self.varied)
        #expect(parsed.serialized() == text)
        #expect(parsed.objectValue?.keys == Self.varied.objectValue?.keys)
    }

    @Test(
        "integral numbers have no fraction",
        arguments: [
            (JSONValue.number(0), "0"),
            (1, "1"),
            (-5, "-5"),
            (1_700_000_000, "1700000000"),
            (.number(1.7e9), "1700000000"),
            (.number(9_007_199_254_740_992), "9007199254740992"),
            (.number(-9_007_199_254_740_992), "-9007199254740992"),
            (.number(100.0), "100"),
        ])
    func integers(_ value: JSONValue, _ expected: String) {
        #expect(value.serializedString == expected)
    }

    @Test(
        "other numbers round-trip exactly",
        arguments: [1.5, -0.25, 0.1, 1e-7, 1e300, 9_007_199_254_740_994.0, 3.141592653589793, .leastNonzeroMagnitude])
    func fractions(_ number: Double) throws {
        let text = JSONValue.number(number).serializedString
        #expect(try JSONValue.parse(text) == .number(number), "\(text)")
    }

    @Test("non-finite numbers are written as null, never as NaN or Infinity")
    func nonFinite() {
        #expect(JSONValue.number(.nan).serializedString == "null")
        #expect(JSONValue.number(.infinity).serializedString == "null")
        #expect(JSONValue.number(-.infinity).serializedString == "null")
    }

    @Test("<, > and & are escaped so a browser sniffing HTML finds no markup")
    func htmlCharacters() {
        let value: JSONValue = "<script>&</script>"
        #expect(value.serializedString == #""\u003cscript\u003e\u0026\u003c/script\u003e""#)
    }

    @Test(
        "strings escape quotes, backslashes and control characters, and nothing else",
        arguments: [
            ("quote \"", #""quote \"""#),
            ("back\\slash", #""back\\slash""#),
            ("line\nfeed", #""line\nfeed""#),
            ("carriage\rreturn", #""carriage\rreturn""#),
            ("tab\there", #""tab\there""#),
            ("nul\u{0}", #""nul\u0000""#),
            ("unit\u{1F}", #""unit\u001f""#),
            ("slash / stays", #""slash / stays""#),
            ("delete \u{7F} stays", "\"delete \u{7F} stays\""),
            ("café 😀", "\"café 😀\""),
        ])
    func stringEscapes(_ string: String, _ expected: String) {
        #expect(JSONValue.string(string).serializedString == expected)
    }

    @Test("compact output: no spaces, members in insertion order")
    func compactAndOrdered() {
        let value: JSONValue = ["b": 1, "a": [true, nil], "c": ["z": "x", "y": 2]]
        #expect(value.serializedString == #"{"b":1,"a":[true,null],"c":{"z":"x","y":2}}"#)
    }

    @Test("setting an existing key replaces its value in place; setting nil removes it")
    func objectMutation() {
        var object: JSONObject = ["first": 1, "second": 2, "third": 3]
        object["second"] = "two"
        #expect(object.keys == ["first", "second", "third"])
        #expect(object["second"] == "two")
        object["first"] = nil
        #expect(object.keys == ["second", "third"])
        object["fourth"] = 4
        #expect(object.keys == ["second", "third", "fourth"])
        #expect(JSONObject([("k", 1), ("k", 2)]).members.count == 1)
        #expect(JSONObject([("k", 1), ("k", 2)])["k"] == 2)
    }
}
