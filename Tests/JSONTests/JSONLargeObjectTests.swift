import JSON
import Testing

/// Objects with many members, where the duplicate-name check moves from
/// comparing names pairwise to a set of names (`nameSetThreshold`, 32).
///
/// Regression: the pairwise check cost O(n^2) in the number of names; a JWT
/// header of 850 tiny members (it fits in an 8 KiB token and is parsed before
/// the signature is checked) took about 1 ms to refuse, and a 64 KiB request
/// body of 6,000 members 47 ms (release). Found while fuzzing (Fuzz/README.md).
@Suite("JSON objects with many members")
struct JSONLargeObjectTests {
    /// `{"<filler0>":0,...,` + `members` + `}`, with `count` filler members first.
    private static func object(filler count: Int, then members: [String] = []) -> String {
        let filler = (0..<count).map { "\"f\($0)\":\($0)" }
        return "{" + (filler + members).joined(separator: ",") + "}"
    }

    private static func refuses(_ text: String) -> Bool {
        let parsed = (try? JSONValue.parse(text)) == nil
        let scanned = (try? Array(text.utf8).withUnsafeBufferPointer { try JSONValue.scanObject($0) { _ in } }) == nil
        return parsed && scanned
    }

    @Test("a duplicate is found on either side of the threshold", arguments: [30, 31, 32, 33, 34, 100])
    func duplicateAroundThreshold(filler: Int) {
        for repeated in [0, filler / 2, filler - 1] {
            #expect(Self.refuses(Self.object(filler: filler, then: [#""f\#(repeated)":true"#])), "f\(repeated)")
        }
        #expect(Self.refuses(Self.object(filler: filler, then: [#""x":1"#, #""y":2"#, #""x":3"#])))
        #expect(!Self.refuses(Self.object(filler: filler, then: [#""x":1"#, #""y":2"#])))
    }

    @Test(
        "names that are the same String are duplicates in a large object too",
        arguments: [
            [#""a":1"#, #""\u0061":2"#],
            [#""\u0061":1"#, #""a":2"#],
            [#""é":1"#, #""\u00e9":2"#],
            [#""é":1"#, #""e\u0301":2"#],
            [#""K":1"#, #""\u212A":2"#],
            [#""\u212A":1"#, #""K":2"#],
            ["\"K\":1", "\"\u{212A}\":2"],
            ["\"Kelvin\":1", "\"\u{212A}elvin\":2"],
        ])
    func equivalentNames(_ pair: [String]) {
        // Both before the set (the first name among the filler) and in it.
        #expect(Self.refuses(Self.object(filler: 40, then: pair)))
        #expect(Self.refuses("{" + pair[0] + "," + Self.object(filler: 40, then: [pair[1]]).dropFirst()))
        // The same names apart are not duplicates.
        #expect(!Self.refuses(Self.object(filler: 40, then: [pair[0]])))
        #expect(!Self.refuses(Self.object(filler: 40, then: [pair[1]])))
    }

    @Test("a large object's values, keys and order are as written")
    func valuesAndOrder() throws {
        let names = (0..<100).map { $0 % 3 == 0 ? "\\u006e\($0)" : $0 % 3 == 1 ? "n\($0)" : "ñ\($0)" }
        let text = "{" + names.enumerated().map { "\"\($0.element)\":\($0.offset)" }.joined(separator: ",") + "}"
        let object = try #require(try JSONValue.parse(text).objectValue)
        let expected = (0..<100).map { $0 % 3 == 2 ? "ñ\($0)" : "n\($0)" }
        #expect(object.keys == expected)
        for (offset, key) in expected.enumerated() { #expect(object[key] == .number(Double(offset))) }
    }

    @Test("nested large objects keep their own names")
    func nested() throws {
        let inner = Self.object(filler: 50)
        let text = #"{"f0":\#(inner),"f1":[\#(inner),\#(inner)],"f2":{"f0":\#(inner),"f1":\#(inner)},"#
            + (3..<45).map { "\"f\($0)\":\(inner)" }.joined(separator: ",") + "}"
        let object = try #require(try JSONValue.parse(text).objectValue)
        #expect(object.count == 45)
        #expect(!Self.refuses(text))
        // After the inner objects (each with a set) close, the outer set still holds the outer names.
        #expect(Self.refuses(text.dropLast() + #","f44":0}"#))
        #expect(Self.refuses(text.dropLast() + #","f3":0}"#))
        #expect(!Self.refuses(text.dropLast() + #","f45":0}"#))
    }

    @Test("the refusal reads the same above the threshold as below it")
    func sameError() throws {
        let small = #"{"a":1,"\u0061":2}"#
        let large = Self.object(filler: 40, then: [#""a":1"#, #""\u0061":2"#])
        let smallError = try #require(throws: JSONError.self) { try JSONValue.parse(small) }
        let largeError = try #require(throws: JSONError.self) { try JSONValue.parse(large) }
        #expect(smallError.reason == #"duplicate member name "a""#)
        #expect(largeError.reason == smallError.reason)
        // Both point just past the repeated name.
        #expect(smallError.offset == small.utf8.count - 3)
        #expect(largeError.offset == large.utf8.count - 3)
    }

    @Test("names are checked in time linear in their number")
    func linearTime() throws {
        // 50,000 names: a few hundred milliseconds in a debug build; the
        // pairwise check took minutes.
        let text = Self.object(filler: 50_000)
        let clock = ContinuousClock()
        let start = clock.now
        let object = try #require(try JSONValue.parse(text).objectValue)
        try Array(text.utf8).withUnsafeBufferPointer { try JSONValue.scanObject($0) { _ in } }
        #expect(object.count == 50_000)
        #expect(clock.now - start < .seconds(20))
    }
}
