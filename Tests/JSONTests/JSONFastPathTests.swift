import JSON
import Testing

/// The parser's fast paths (integers and short decimals computed without
/// `strtod`, strings found eight bytes at a time, member names compared by
/// their bytes and a hash filter, objects checked by `scanObject` without
/// being built) must give exactly what the slow, obvious way gives.
@Suite("JSON parser fast paths")
struct JSONFastPathTests {
    // MARK: - Numbers

    /// The value `Double(String)` (the C library's `strtod`) gives, which the
    /// parser matched before it had fast paths; nil where it refuses.
    private static func oracle(_ text: String) -> Double? {
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }

    private static func expectSameAsOracle(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let parsed = try? JSONValue.parse(text)
        guard let expected = oracle(text) else {
            #expect(parsed == nil, "\(text) should be refused", sourceLocation: sourceLocation)
            return
        }
        guard case .number(let value)? = parsed else {
            Issue.record("\(text) was refused", sourceLocation: sourceLocation)
            return
        }
        // Bit for bit: -0 is not 0, and a rounding slip shows.
        #expect(
            value.bitPattern == expected.bitPattern, "\(text): \(value) != \(expected)", sourceLocation: sourceLocation)
    }

    static let numberTexts: [String] = [
        // Integers, around 2^53 and past 19 digits (where the fast path ends).
        "0", "-0", "1", "-1", "7", "10", "1700000000", "-1700000000", "1764000900",
        "9007199254740991", "9007199254740992", "9007199254740993", "9007199254740994", "9007199254740995",
        "-9007199254740993", "18014398509481985", "18014398509481987", "999999999999999999",
        "1000000000000000000", "9999999999999999999", "10000000000000000000", "18446744073709551615",
        "18446744073709551616", "36893488147419103233", "123456789012345678901234567890", "-123456789012345678901",
        // Exponents and fractions.
        "1e3", "1E3", "1e+3", "1e-3", "-1e3", "1E-0", "1e0", "0e0", "-0e-5", "0e999999", "0.0", "-0.0", "0.000",
        "1.5", "-1.5", "0.1", "0.2", "0.3", "0.5", "2.5", "1.5e3", "2E-2", "1e+2", "1.5e-3", "123.456e7",
        "3.141592653589793", "2.718281828459045", "1.0000000000000002", "0.000001", "1e-7", "1e22", "1e23",
        "-1e22", "4.35e22", "9007199254740993e0", "9007199254740993.0", "9007199254740992e1", "9007199254740993e-1",
        "12345678901234567890e-5", "0.12345678901234567890", "1234567890.1234567890", "1.7976931348623157e308",
        "2.2250738585072014e-308", "5e-324", "4.9e-324", "2.5e-300", "-2.5e-300", "1e-400", "1e308", "1e309",
        "-1e400", "1700000000.5", "1.5e9", "1e-22", "1e-23", "8.589973e9", "0.1e1", "100e-2", "-9.5e-1",
    ]

    @Test("numbers parse exactly as strtod reads them", arguments: numberTexts)
    func numbersMatchStrtod(_ text: String) {
        Self.expectSameAsOracle(text)
        // The same inside an object, where the number is followed by more text.
        let inObject = try? JSONValue.parse(#"{"n":\#(text),"m":1}"#)
        if let expected = Self.oracle(text) {
            #expect(inObject?.objectValue?["n"]?.numberValue?.bitPattern == expected.bitPattern, "\(text)")
        } else {
            #expect(inObject == nil)
        }
    }

    @Test("thousands of generated numbers parse exactly as strtod reads them")
    func generatedNumbers() {
        var random = SplitMix64(seed: 0x5EED_2026)
        for _ in 0..<20_000 {
            var text = random.next() % 4 == 0 ? "-" : ""
            let integerDigits = Int(random.next() % 21) + 1
            for position in 0..<integerDigits {
                let digit = random.next() % 10
                text += String(position == 0 && integerDigits > 1 ? max(digit, 1) : digit)
            }
            if random.next() % 2 == 0 {
                text += "."
                for _ in 0..<(Int(random.next() % 18) + 1) { text += String(random.next() % 10) }
            }
            if random.next() % 3 == 0 {
                text += ["e", "E", "e+", "e-", "E-"][Int(random.next() % 5)]
                text += String(random.next() % 40)
            }
            Self.expectSameAsOracle(text)
        }
    }

    @Test("-0 keeps its sign")
    func negativeZero() throws {
        let value = try #require(try JSONValue.parse("-0").numberValue)
        #expect(value == 0 && value.sign == .minus)
        let positive = try #require(try JSONValue.parse("0").numberValue)
        #expect(positive.sign == .plus)
    }

    @Test(
        "number grammar is still strict",
        arguments: [
            "01", "-01", "00", "-", "--1", "+1", "1.", ".5", "1e", "1e+", "1.e3", "0x1", "1_000",
            "1e400", "-1e400", "1 2",
        ])
    func numberGrammar(_ text: String) {
        #expect(throws: JSONError.self) { try JSONValue.parse(text) }
    }

    // MARK: - Strings

    /// Strings of every length around the eight-byte steps, with a special
    /// byte at every position.
    @Test("strings of every length and with a special byte at every position")
    func stringPositions() throws {
        for length in 0...40 {
            let plain = String(repeating: "a", count: length)
            #expect(try JSONValue.parse("\"\(plain)\"") == .string(plain), "length \(length)")
            #expect(try JSONValue.parse("[\"\(plain)\",1]") == [.string(plain), 1])
            for position in 0..<max(length, 1) where length > 0 {
                func with(_ middle: String) -> String {
                    String(plain.prefix(position)) + middle + String(plain.dropFirst(position + 1))
                }
                // Escapes, decoded.
                #expect(try JSONValue.parse("\"\(with("\\n"))\"") == .string(with("\n")))
                #expect(try JSONValue.parse("\"\(with("\\u00e9"))\"") == .string(with("é")))
                #expect(try JSONValue.parse("\"\(with("\\\""))\"") == .string(with("\"")))
                // Raw non-ASCII of every UTF-8 length.
                for scalar in ["é", "\u{0800}", "€", "\u{FFFD}", "\u{FFFF}", "😀", "\u{10FFFF}"] {
                    #expect(try JSONValue.parse("\"\(with(scalar))\"") == .string(with(scalar)))
                }
                // DEL is not a control character for JSON.
                #expect(try JSONValue.parse("\"\(with("\u{7F}"))\"") == .string(with("\u{7F}")))
                // Refused: control characters and invalid UTF-8 anywhere.
                var control = Array("\"\(plain)\"".utf8)
                control[1 + position] = 0x1F
                #expect(throws: JSONError.self) { try JSONValue.parse(control) }
                let invalidSequences: [[UInt8]] = [
                    [0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0x80],
                ]
                for bad in invalidSequences {
                    var invalid = Array("\"\(plain)\"".utf8)
                    invalid.replaceSubrange((1 + position)...(1 + position), with: bad)
                    #expect(throws: JSONError.self, "\(bad) at \(position) of \(length)") {
                        try JSONValue.parse(invalid)
                    }
                }
            }
            // Unterminated, at every length, also inside a larger document.
            #expect(throws: JSONError.self) { try JSONValue.parse("\"\(plain)") }
            #expect(throws: JSONError.self) { try JSONValue.parse("{\"k\":\"\(plain)") }
        }
    }

    @Test("a multi-byte sequence cut off by the end of the input is refused")
    func truncatedAtEnd() {
        for cut: [UInt8] in [[0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98]] {
            #expect(throws: JSONError.self) { try JSONValue.parse([0x22] + cut) }
            #expect(throws: JSONError.self) { try JSONValue.parse([0x22, 0x61] + cut) }
            #expect(throws: JSONError.self) { try JSONValue.parse([0x5B, 0x22, 0x61] + cut) }
        }
    }

    @Test(
        "non-ASCII text with escapes",
        arguments: [
            (#""é\n😀 \u00e9""#, "é\n😀 é"),
            (#""\u00e9é\ud83d\ude00😀""#, "éé😀😀"),
            (#""Zoë \"Z\" O'Brien\\""#, "Zoë \"Z\" O'Brien\\"),
            (#""日本語\t\u65e5\u672c\u8a9e""#, "日本語\t日本語"),
            (#""a\/b\u0000c""#, "a/b\u{0}c"),
        ])
    func nonASCIIWithEscapes(_ text: String, _ expected: String) throws {
        #expect(try JSONValue.parse(text) == .string(expected))
        #expect(try JSONValue.parse("{\(text):\(text)}") == .object(JSONObject([(expected, .string(expected))])))
    }

    // MARK: - Member names

    private static func object(names: [String]) -> String {
        "{" + names.enumerated().map { "\"\($0.element)\":\($0.offset)" }.joined(separator: ",") + "}"
    }

    @Test("many members, past every buffer the name check uses, keep their order")
    func manyMembers() throws {
        for count in [15, 16, 17, 31, 32, 33, 64, 100, 300] {
            let names = (0..<count).map { "name\($0)" }
            let object = try #require(try JSONValue.parse(Self.object(names: names)).objectValue)
            #expect(object.keys == names)
            #expect(object["name\(count - 1)"] == .number(Double(count - 1)))
        }
    }

    @Test("a duplicate is found wherever it is")
    func duplicatesAnywhere() {
        for count in [2, 8, 16, 17, 33, 70] {
            let names = (0..<count).map { "n\($0)" }
            for (first, second) in [(0, count - 1), (count / 2, count - 1), (count - 2, count - 1), (0, 1)]
            where first != second {
                var withDuplicate = names
                withDuplicate[second] = names[first]
                #expect(throws: JSONError.self, "\(count) names, \(second) repeats \(first)") {
                    try JSONValue.parse(Self.object(names: withDuplicate))
                }
            }
        }
    }

    @Test(
        "names that are the same String are duplicates, however they are written",
        arguments: [
            #"{"a":1,"\u0061":2}"#,
            #"{"\u0061":1,"a":2}"#,
            #"{"é":1,"\u00e9":2}"#,
            // Canonically equivalent, so equal as Swift Strings (and to JSONObject lookups).
            #"{"é":1,"e\u0301":2}"#,
            #"{"K":1,"\u212A":2}"#,
            #"{"\u212A":1,"K":2}"#,
            "{\"K\":1,\"\u{212A}\":2}",
            "{\"Kelvin\":1,\"\u{212A}elvin\":2}",
            #"{"x":{"p":1,"q":{"r":1,"\u0072":2}}}"#,
        ])
    func equivalentNames(_ text: String) {
        #expect(throws: JSONError.self) { try JSONValue.parse(text) }
        #expect(throws: JSONError.self) {
            try Array(text.utf8).withUnsafeBufferPointer { try JSONValue.scanObject($0) { _ in } }
        }
    }

    @Test("the same names in different objects are no duplicates, at any depth")
    func sameNamesElsewhere() throws {
        let inner = Self.object(names: (0..<40).map { "k\($0)" })
        let text = #"{"k0":\#(inner),"k1":[\#(inner),\#(inner)],"k2":{"k0":\#(inner),"k1":\#(inner)},"k3":\#(inner)}"#
        let object = try #require(try JSONValue.parse(text).objectValue)
        #expect(object.keys == ["k0", "k1", "k2", "k3"])
        #expect(throws: JSONError.self) { try JSONValue.parse(text.dropLast() + #","k2":0}"#) }
        // And after a nested object with many names closes, its names are forgotten.
        #expect(throws: JSONError.self) {
            try JSONValue.parse(#"{"a":\#(inner),"k5":1,"b":2,"k5":3}"#)
        }
    }

    // MARK: - scanObject

    @Test("scanObject accepts exactly the objects parse accepts")
    func scanAgreesWithParse() {
        var texts = JSONParserTests.refusals.map(\.bytes)
        texts += JSONParserTests.acceptances.map { Array($0.text.utf8) }
        texts += [
            "{}", " { } ", #"{"a":[1,{"b":null}],"c":"d"}"#, #"{"a":1}x"#, #"{"a":1,}"#, "[]", #""s""#, "1",
            #"{"a":{"a":{"a":1}}}"#, #"{"a":"\u00e9","b":tru}"#, #"{"a":1 "b":2}"#, #"{"a" 1}"#, "{", "{\"",
        ].map { Array($0.utf8) }
        texts += JSONParserTests.refusals.map { Array("{\"k\":".utf8) + $0.bytes + Array("}".utf8) }
        for bytes in texts {
            let parsed = try? JSONValue.parse(bytes)
            let isObject = parsed?.objectValue != nil
            let scanned = (try? bytes.withUnsafeBufferPointer { try JSONValue.scanObject($0) { _ in } }) != nil
            #expect(scanned == isObject, "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
        }
    }

    @Test("scanObject reports each member where it lies")
    func scanReportsMembers() throws {
        let text =
            #"{"iss":"gatehouse","sub":"a\"b\u00e9","user":"zoë","n":-1.5e3,"t":true,"f":false,"z":null,"#
            + #""a":[1,"x"],"o":{"p":{}},"\u0065xp":1764000900,"longer_than_8":0}"#
        let bytes = Array(text.utf8)
        let expected = try #require(try JSONValue.parse(text).objectValue)
        var seen: [(name: String, member: JSONScannedMember)] = []
        try bytes.withUnsafeBufferPointer { buffer in
            try JSONValue.scanObject(buffer) { member in
                seen.append((JSONValue.string(member.name, in: buffer), member))
            }
            #expect(seen.map(\.name) == expected.keys)
            for (name, member) in seen {
                let value = try #require(expected[name])
                let span = UnsafeBufferPointer(rebasing: buffer[member.valueStart..<member.valueEnd])
                #expect(try JSONValue.parse(span) == value, "\(name)")
                switch value {
                case .string(let string):
                    #expect(member.kind == .string)
                    #expect(JSONValue.string(member.string, in: buffer) == string)
                    #expect(JSONValue.string(member.string, in: buffer, equals: string, otherIsASCII: false))
                    #expect(!JSONValue.string(member.string, in: buffer, equals: string + "x", otherIsASCII: false))
                case .number(let number):
                    #expect(member.kind == .number && member.number == number)
                case .bool(let flag):
                    #expect(member.kind == .bool && member.number == (flag ? 1 : 0))
                case .null: #expect(member.kind == .null)
                case .array: #expect(member.kind == .array)
                case .object: #expect(member.kind == .object)
                }
                // A plain ASCII name of up to eight bytes is exactly its word.
                if case .ascii = member.name.shape, name.utf8.count <= 8 {
                    var word: UInt64 = 0
                    for (offset, byte) in name.utf8.enumerated() { word |= UInt64(byte) << (8 * UInt64(offset)) }
                    #expect(member.nameWord == word, "\(name)")
                }
            }
        }
        #expect(seen.first { $0.name == "exp" }.map { $0.member.name.shape == .escaped } == true)
        #expect(seen.first { $0.name == "iss" }.map { $0.member.string.shape == .ascii } == true)
        #expect(seen.first { $0.name == "user" }.map { $0.member.string.shape == .unescaped } == true)
    }

    @Test("string(_:in:equals:) compares as String ==, also across normal forms")
    func stringEquality() throws {
        let text = #"{"a":"gatehouse","b":"e\u0301","c":"é","d":"\u212A"}"#
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            var members: [JSONScannedMember] = []
            try JSONValue.scanObject(buffer) { members.append($0) }
            #expect(JSONValue.string(members[0].string, in: buffer, equals: "gatehouse", otherIsASCII: true))
            #expect(!JSONValue.string(members[0].string, in: buffer, equals: "gatehous", otherIsASCII: true))
            #expect(!JSONValue.string(members[0].string, in: buffer, equals: "gatehousf", otherIsASCII: true))
            #expect(JSONValue.string(members[1].string, in: buffer, equals: "é", otherIsASCII: false))
            #expect(JSONValue.string(members[2].string, in: buffer, equals: "e\u{301}", otherIsASCII: false))
            #expect(JSONValue.string(members[3].string, in: buffer, equals: "K", otherIsASCII: true))
        }
    }

    // MARK: - Entry points

    @Test("every entry point parses the same")
    func entryPoints() throws {
        let text = #"{"a":[1,2.5,"x"],"b":{"c":null}}"#
        let expected = try JSONValue.parse(text)
        let bytes = Array(text.utf8)
        #expect(try JSONValue.parse(bytes) == expected)
        #expect(try bytes.withUnsafeBufferPointer { try JSONValue.parse($0) } == expected)
        #expect(try JSONValue.parse(text.utf8) == expected)
        #expect(try JSONValue.parse(("  " + text + "  ").dropFirst(2).dropLast(2).description) == expected)
        // Not contiguous: copied once, same result.
        #expect(try JSONValue.parse(bytes.lazy.map { $0 }) == expected)
        #expect(throws: JSONError.self) { try JSONValue.parse(UnsafeBufferPointer<UInt8>(start: nil, count: 0)) }
    }
}

/// A small deterministic generator (SplitMix64), so a failure repeats.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
