import AuthService
import JSON
import TestSupport
import Testing

/// The YAML subset reader behind `GET /openapi.json`: what it reads (each
/// row also read by PyYAML, which must agree), and what it refuses, with the line.
@Suite struct YAMLTests {
    /// A YAML text and the JSON it must read as.
    struct Reads: CustomTestStringConvertible, Sendable {
        let yaml: String
        let json: String
        init(_ yaml: String, _ json: String) {
            self.yaml = yaml
            self.json = json
        }
        var testDescription: String { yaml.debugDescription }
    }

    static let reads: [Reads] = [
        // Scalars typed by the YAML 1.2 core schema, where YAML 1.1 agrees.
        Reads("a: 1\nb: -1\nc: +1\nd: 0\ne: -0\n", #"{"a":1,"b":-1,"c":1,"d":0,"e":0}"#),
        Reads("a: 1.5\nb: -0.5e+3\nc: 2.25E-2\n", #"{"a":1.5,"b":-500,"c":0.0225}"#),
        Reads("a: 9007199254740992\n", #"{"a":9007199254740992}"#),
        Reads(
            "a: ~\nb:\nc: null\nd: Null\ne: NULL\nf:   \n", #"{"a":null,"b":null,"c":null,"d":null,"e":null,"f":null}"#),
        Reads(
            "a: true\nb: True\nc: TRUE\nd: false\ne: False\nf: FALSE\n",
            #"{"a":true,"b":true,"c":true,"d":false,"e":false,"f":false}"#),
        Reads(
            "a: 0.1.0\nb: y\nc: n\nd: nope\ne: 1.2.3.4\n", #"{"a":"0.1.0","b":"y","c":"n","d":"nope","e":"1.2.3.4"}"#),
        Reads(
            "a: http://x.y/z?q=1#f\nb: b:c\nc: -x\nd: :x\ne: ?x\nf: x,y [z] {w}\n",
            #"{"a":"http://x.y/z?q=1#f","b":"b:c","c":"-x","d":":x","e":"?x","f":"x,y [z] {w}"}"#),
        Reads(
            "a: Bearer realm=\"g\"\nb: it's\nc: This is a protected route!\n",
            #"{"a":"Bearer realm=\"g\"","b":"it's","c":"This is a protected route!"}"#),
        Reads(
            "a: 'it''s'\nb: ''\nc: '#/x: y'\nd: 'true'\ne: '1'\n",
            ##"{"a":"it's","b":"","c":"#/x: y","d":"true","e":"1"}"##),
        Reads(
            #"a: "tab\there \u00e9 \x41 \U0001F600 \"q\" \\ \/ \0 \e \N \_ \L \P""# + "\n",
            #"{"a":"tab\there é A 😀 \"q\" \\ / \u0000 \u001b \u0085 \u00a0 \u2028 \u2029"}"#),
        Reads("a: \"\"\nb: \"# not a comment\"\n", ##"{"a":"","b":"# not a comment"}"##),
        // Comments.
        Reads("# only\na: 1 # x\n\n  # indented\nb: x #not: key\n# end\n", ##"{"a":1,"b":"x"}"##),
        Reads("a: 'x' # c\nb: [1] # c\n", #"{"a":"x","b":[1]}"#),
        // Keys.
        Reads(
            "'quoted key': 1\n\"dq\": 2\n200: ok\n0: zero\nwith space: 3\n",
            #"{"quoted key":1,"dq":2,"200":"ok","0":"zero","with space":3}"#),
        // Block collections.
        Reads("- a\n- b\n", #"["a","b"]"#),
        Reads("- - a\n  - b\n- c\n", #"[["a","b"],"c"]"#),
        Reads("-   - x\n    - y\n", #"[["x","y"]]"#),
        Reads("- a: 1\n  b: 2\n- c: 3\n", #"[{"a":1,"b":2},{"c":3}]"#),
        Reads("- \n- a\n-\n  a: 1\n- # comment\n  b\n", #"[null,"a",{"a":1},"b"]"#),
        Reads("a:\n- 1\n- 2\nb: 3\n", #"{"a":[1,2],"b":3}"#),
        Reads("a:\n  - 1\n  - 2\n", #"{"a":[1,2]}"#),
        Reads("a:\n  b:\n    c: d\n  e: f\ng:\n", #"{"a":{"b":{"c":"d"},"e":"f"},"g":null}"#),
        Reads("a:\n  just a scalar\n", #"{"a":"just a scalar"}"#),
        Reads("list:\n- a\n- b\nother:\n- c\n", #"{"list":["a","b"],"other":["c"]}"#),
        // Flow collections.
        Reads("a: [1, two, 'three', \"four\", [5], {six: 6}]\n", #"{"a":[1,"two","three","four",[5],{"six":6}]}"#),
        Reads("a: {b: 1, 'c': [d, e], f: }\n", #"{"a":{"b":1,"c":["d","e"],"f":null}}"#),
        Reads("a: []\nb: {}\nc: [a, b, ]\nd: [x:y]\n", #"{"a":[],"b":{},"c":["a","b"],"d":["x:y"]}"#),
        Reads(
            "a: {error: invalid_request, message: The field 'username' is required.}\n",
            #"{"a":{"error":"invalid_request","message":"The field 'username' is required."}}"#),
        // Block scalars.
        Reads("a: |\n  line 1\n  line 2\n", #"{"a":"line 1\nline 2\n"}"#),
        Reads("a: |-\n  line 1\n  line 2\n", #"{"a":"line 1\nline 2"}"#),
        Reads("a: |+\n  line 1\n\n\nb: 1\n", #"{"a":"line 1\n\n\n","b":1}"#),
        Reads(
            "a: |\n  # not a comment\n\n    indented\n\n\nb: 1\n", ##"{"a":"# not a comment\n\n  indented\n","b":1}"##),
        Reads("a: |2\n    indented\n   less\n", #"{"a":"  indented\n less\n"}"#),
        Reads("a: |\n\n  x\n\n", #"{"a":"\nx\n"}"#),
        Reads("a: |\nb: 1\n", #"{"a":"","b":1}"#),
        Reads("a: >\n  one\n  two\n\n  three\n    more\n  back\n", #"{"a":"one two\nthree\n  more\nback\n"}"#),
        Reads("a: >-\n  folded\n  text\n", #"{"a":"folded text"}"#),
        Reads("a: >+\n  x\n\n", #"{"a":"x\n\n"}"#),
        Reads("a: >\n\n  leading\n", #"{"a":"\nleading\n"}"#),
        Reads("a: > # comment\n  x\n", #"{"a":"x\n"}"#),
        Reads("- |\n  in seq\n- >\n  folded\n  seq\n", #"["in seq\n","folded seq\n"]"#),
        Reads("a: |\n  tab\tinside\n", #"{"a":"tab\tinside\n"}"#),
        // Empty documents, a scalar document, CRLF line ends, a byte order mark.
        Reads("", "null"),
        Reads("# nothing\n", "null"),
        Reads("just text\n", #""just text""#),
        Reads("a: 1\r\nb: 2\r\n", #"{"a":1,"b":2}"#),
        Reads("\u{FEFF}a: 1\n", #"{"a":1}"#),
    ]

    @Test(arguments: reads)
    func readsAsJSON(_ row: Reads) throws {
        let expected = try JSONValue.parse(row.json)
        #expect(try YAML.parse(row.yaml) == expected)
    }

    /// The table above is what PyYAML reads too: the subset never drifts from YAML.
    @Test func pyYAMLReadsTheSameAsEveryRow() async throws {
        let results = try await PyYAML.load(documents: Self.reads.map(\.yaml))
        for (row, result) in zip(Self.reads, results) {
            switch result {
            case .success(let value): #expect(value == (try JSONValue.parse(row.json)), "\(row.yaml.debugDescription)")
            case .failure(let error): Issue.record("PyYAML refused \(row.yaml.debugDescription): \(error)")
            }
        }
    }

    /// A YAML text, the line it must be refused at, and a part of the message.
    struct Refuses: CustomTestStringConvertible, Sendable {
        let yaml: String
        let line: Int
        let message: String
        init(_ yaml: String, line: Int, _ message: String) {
            self.yaml = yaml
            self.line = line
            self.message = message
        }
        var testDescription: String { yaml.debugDescription }
    }

    static let refuses: [Refuses] = [
        // Plain scalars YAML 1.1 (PyYAML) and 1.2 read differently, or that JSON cannot hold.
        Refuses("a: 1\nb: yes\n", line: 2, "read differently by YAML 1.1 and YAML 1.2; quote it"),
        Refuses("a: No\n", line: 1, "read differently"),
        Refuses("a: on\n", line: 1, "read differently"),
        Refuses("a: OFF\n", line: 1, "read differently"),
        Refuses("a: 017\n", line: 1, "read differently"),
        Refuses("a: 00\n", line: 1, "read differently"),
        Refuses("a: 0o17\n", line: 1, "read differently"),
        Refuses("a: 0x1F\n", line: 1, "read differently"),
        Refuses("a: 1e3\n", line: 1, "read differently"),
        Refuses("a: 1.0e5\n", line: 1, "read differently"),
        Refuses("a: 1.\n", line: 1, "read differently"),
        Refuses("a: .5\n", line: 1, "read differently"),
        Refuses("a: 1_000\n", line: 1, "read differently"),
        Refuses("a: 1:30\n", line: 1, "read differently"),
        Refuses("a: .inf\n", line: 1, "read differently"),
        Refuses("a: -.Inf\n", line: 1, "read differently"),
        Refuses("a: .nan\n", line: 1, "read differently"),
        Refuses("a: 2026-11-25\n", line: 1, "read differently"),
        Refuses("a: 2026-11-25T02:06:20Z\n", line: 1, "read differently"),
        Refuses("<<: x\n", line: 1, "read differently"),
        Refuses("a: =\n", line: 1, "read differently"),
        Refuses("a: [1, yes]\n", line: 1, "read differently"),
        Refuses("yes: 1\n", line: 1, "read differently"),
        Refuses("a: 9007199254740993\n", line: 1, "too large for JSON"),
        Refuses("1.5: x\n", line: 1, "the key 1.5 is not a string; quote it"),
        Refuses("true: x\n", line: 1, "the key true is not a string"),
        Refuses("~: x\n", line: 1, "the key ~ is not a string"),
        Refuses("a: {null: x}\n", line: 1, "the key null is not a string"),
        // Outside the subset.
        Refuses("a: &x 1\n", line: 1, "anchors (&) are not supported"),
        Refuses("a: *x\n", line: 1, "aliases (*) are not supported"),
        Refuses("a: !tag 1\n", line: 1, "tags (!) are not supported"),
        Refuses("%YAML 1.2\na: 1\n", line: 1, "directives"),
        Refuses("---\na: 1\n", line: 1, "document markers (---) are not supported"),
        Refuses("a: 1\n...\n", line: 2, "document markers (...) are not supported"),
        Refuses("? a\n: b\n", line: 1, "complex keys"),
        Refuses("a: multi\n  line\n", line: 2, "unexpected indentation"),
        Refuses("a: 'two\n  lines'\n", line: 1, "a quoted scalar must close on its line"),
        Refuses("a: \"two \\\n  lines\"\n", line: 1, "must close on its line"),
        Refuses("a: [1,\n  2]\n", line: 1, "a flow collection must close on its line"),
        Refuses("a:\n\t- 1\n", line: 2, "tabs cannot indent"),
        Refuses("a: x\tb\n", line: 1, "tabs are allowed only in quoted and block scalars"),
        Refuses("a: |\n  x\n\ty\n", line: 3, "tabs cannot indent"),
        Refuses("a: 1\n\t\nb: 2\n", line: 2, "tabs cannot indent"),
        Refuses("a: 1\n  \t \nb: 2\n", line: 2, "tabs cannot indent"),
        // Malformed.
        Refuses("a: 1\nb: 2\na: 3\n", line: 3, "duplicate key 'a' (first on line 1)"),
        Refuses("a: {b: 1, b: 2}\n", line: 1, "duplicate key 'b'"),
        Refuses("a: b: c\n", line: 1, "a mapping cannot start on the line of its key"),
        Refuses("a: - b\n", line: 1, "a block sequence cannot start here"),
        Refuses("a: %x\n", line: 1, "a plain scalar cannot start with %"),
        Refuses("a: @x\n", line: 1, "cannot start with @"),
        Refuses("a: `x`\n", line: 1, "cannot start with `"),
        Refuses("a: ]\n", line: 1, "cannot start with ]"),
        Refuses("a: 'x'y\n", line: 1, "unexpected text after the value: y"),
        Refuses("a: [x]y\n", line: 1, "unexpected text after the value"),
        Refuses("a: [b: c]\n", line: 1, "expected ',' or ']'"),
        Refuses("a: {b}\n", line: 1, "expected ':' after the key 'b'"),
        Refuses("a: {x: Really?}\n", line: 1, "expected ',' or '}'"),
        Refuses("a: \"\\q\"\n", line: 1, "unknown escape \\q"),
        Refuses("a: \"\\u12\"\n", line: 1, "needs 4 hexadecimal digits"),
        Refuses("a: \"\\ud800\"\n", line: 1, "not a Unicode scalar value"),
        Refuses("a:\n  b: 1\n c: 2\n", line: 3, "unexpected indentation"),
        Refuses("a:\n    b: 1\n  c: 2\n", line: 3, "unexpected indentation"),
        Refuses("a: 1\n- b\n", line: 2, "a sequence entry where a mapping key was expected"),
        Refuses("- a\nb: 1\n", line: 2, "unexpected content after the document"),
        Refuses("a: 1\nb\n", line: 2, "expected 'key: value'"),
        Refuses("a: |x\n  y\n", line: 1, "a block scalar header"),
        Refuses("a: | y\n  z\n", line: 1, "nothing may follow a block scalar header"),
        Refuses("a: |\n    \n  x\n", line: 3, "a leading empty line of a block scalar is longer than its first line"),
        Refuses("a: 1", line: 1, "the text must end with a line break"),
        Refuses("a: 1\nb: \u{1}\n", line: 2, "the character U+1 is not allowed"),
        Refuses("a: 1\nb: \u{85}\n", line: 2, "the character U+85 is not allowed"),
        Refuses("a: \u{2028}\n", line: 1, "the character U+2028 is not allowed"),
        Refuses("a: 1\rb: 2\n", line: 1, "a carriage return that does not end the line"),
    ]

    @Test(arguments: refuses)
    func refusesNamingTheLine(_ row: Refuses) {
        #expect {
            try YAML.parse(row.yaml)
        } throws: { error in
            guard let error = error as? YAMLError else { return false }
            return error.line == row.line && error.message.contains(row.message)
        }
    }

    @Test func invalidUTF8IsRefusedWithItsLine() {
        #expect(throws: YAMLError(line: 2, "the text is not valid UTF-8")) {
            try YAML.parse(Array("a: 1\nb: ".utf8) + [0xFF] + Array("\n".utf8))
        }
    }

    @Test func theErrorNamesItsLine() {
        #expect(YAMLError(line: 7, "duplicate key 'a'").description == "line 7: duplicate key 'a'")
    }
}
