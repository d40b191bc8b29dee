import JSON

/// Reads scalars and flow collections from one line: they never span lines
/// in the subset `YAML` reads.
struct ScalarCursor {
    let line: YAMLParser.Line
    var position: Int

    private var bytes: [UInt8] { line.bytes }
    private var atEnd: Bool { position >= bytes.count }

    private func error(_ message: String) -> YAMLError { YAMLError(line: line.number, message) }

    mutating func skipSpaces() {
        while position < bytes.count, bytes[position] == UInt8(ascii: " ") { position += 1 }
    }

    /// At a `:` that ends a key: followed by a space or the end of the line.
    var atColon: Bool {
        position < bytes.count && bytes[position] == UInt8(ascii: ":")
            && (position + 1 == bytes.count || bytes[position + 1] == UInt8(ascii: " "))
    }

    /// Only spaces and a comment may follow a value.
    mutating func expectEndOfLine() throws(YAMLError) {
        let before = position
        skipSpaces()
        if atEnd { return }
        if bytes[position] == UInt8(ascii: "#"), position > before { return }
        throw error("unexpected text after the value: \(Self.text(bytes[position...]))")
    }

    // MARK: - Quoted scalars

    /// A single- or double-quoted scalar starting at the cursor, which must
    /// close on this line.
    mutating func parseQuoted() throws(YAMLError) -> String {
        let quote = bytes[position]
        var text: [UInt8] = []
        var cursor = position + 1
        while true {
            guard cursor < bytes.count else {
                throw error("a quoted scalar must close on its line (multi-line scalars: use | or >)")
            }
            let byte = bytes[cursor]
            if byte == quote {
                if quote == UInt8(ascii: "'"), cursor + 1 < bytes.count, bytes[cursor + 1] == quote {
                    text.append(quote)
                    cursor += 2
                    continue
                }
                cursor += 1
                break
            }
            if quote == UInt8(ascii: "\""), byte == UInt8(ascii: "\\") {
                cursor = try unescape(at: cursor + 1, into: &text)
                continue
            }
            text.append(byte)
            cursor += 1
        }
        position = cursor
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the character the escape at `start` (just after `\`) stands
    /// for (YAML 1.2 section 5.7); returns where the escape ends.
    private func unescape(at start: Int, into text: inout [UInt8]) throws(YAMLError) -> Int {
        guard start < bytes.count else {
            throw error("a double-quoted scalar must close on its line (no \\ line continuation)")
        }
        let simple: [UInt8: Unicode.Scalar] = [
            UInt8(ascii: "0"): "\u{0}", UInt8(ascii: "a"): "\u{7}", UInt8(ascii: "b"): "\u{8}",
            UInt8(ascii: "t"): "\u{9}", 0x09: "\u{9}", UInt8(ascii: "n"): "\u{A}", UInt8(ascii: "v"): "\u{B}",
            UInt8(ascii: "f"): "\u{C}", UInt8(ascii: "r"): "\u{D}", UInt8(ascii: "e"): "\u{1B}",
            UInt8(ascii: " "): " ", UInt8(ascii: "\""): "\"", UInt8(ascii: "/"): "/", UInt8(ascii: "\\"): "\\",
            UInt8(ascii: "N"): "\u{85}", UInt8(ascii: "_"): "\u{A0}", UInt8(ascii: "L"): "\u{2028}",
            UInt8(ascii: "P"): "\u{2029}",
        ]
        let letter = bytes[start]
        if let scalar = simple[letter] {
            text.append(contentsOf: Array(String(scalar).utf8))
            return start + 1
        }
        let digits: Int
        switch letter {
        case UInt8(ascii: "x"): digits = 2
        case UInt8(ascii: "u"): digits = 4
        case UInt8(ascii: "U"): digits = 8
        default: throw error("unknown escape \\\(Self.text(bytes[start...start]))")
        }
        let end = start + 1 + digits
        guard end <= bytes.count, let value = UInt32(Self.text(bytes[(start + 1)..<end]), radix: 16),
            bytes[(start + 1)..<end].allSatisfy({ Self.isHexDigit($0) })
        else { throw error("\\\(Self.text(bytes[start...start])) needs \(digits) hexadecimal digits") }
        guard let scalar = Unicode.Scalar(value) else {
            throw error("\\\(Self.text(bytes[start..<end])) is not a Unicode scalar value")
        }
        text.append(contentsOf: Array(String(scalar).utf8))
        return end
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default: false
        }
    }

    // MARK: - Plain scalars

    /// A plain scalar in block context: the rest of the line up to a comment.
    mutating func parsePlainValue() throws(YAMLError) -> JSONValue {
        try Self.checkPlainStart(bytes[position...], inFlow: false, line: line.number)
        var end = position
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "#"), bytes[end - 1] == UInt8(ascii: " ") { break }
            if byte == 0x09 { throw error("tabs are allowed only in quoted and block scalars") }
            if byte == UInt8(ascii: ":"), end + 1 == bytes.count || bytes[end + 1] == UInt8(ascii: " ") {
                throw error("a mapping cannot start on the line of its key (or quote a value with ': ')")
            }
            end += 1
        }
        var last = end
        while last > position, bytes[last - 1] == UInt8(ascii: " ") { last -= 1 }
        let text = Self.text(bytes[position..<last])
        position = end
        return try Self.resolve(plain: text, line: line.number)
    }

    /// A plain mapping key: a string, or a decimal integer taken as its digits.
    static func plainKey(_ bytes: ArraySlice<UInt8>, line: Int) throws(YAMLError) -> String {
        try checkPlainStart(bytes, inFlow: false, line: line)
        if bytes.contains(0x09) { throw YAMLError(line: line, "tabs are allowed only in quoted and block scalars") }
        let key = text(bytes)
        switch try resolve(plain: key, line: line) {
        case .string: return key
        case .number where key.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }): return key
        default: throw YAMLError(line: line, "the key \(key) is not a string; quote it")
        }
    }

    /// Refuses a plain scalar that starts with an indicator (YAML 1.2 section 7.3.3).
    private static func checkPlainStart(_ bytes: ArraySlice<UInt8>, inFlow: Bool, line: Int) throws(YAMLError) {
        guard let first = bytes.first else { throw YAMLError(line: line, "a value is missing") }
        let next = bytes.dropFirst().first
        switch first {
        case UInt8(ascii: "&"): throw YAMLError(line: line, "anchors (&) are not supported")
        case UInt8(ascii: "*"): throw YAMLError(line: line, "aliases (*) are not supported")
        case UInt8(ascii: "!"): throw YAMLError(line: line, "tags (!) are not supported")
        case UInt8(ascii: "%"), UInt8(ascii: "@"), UInt8(ascii: "`"), UInt8(ascii: ","), UInt8(ascii: "]"),
            UInt8(ascii: "}"), UInt8(ascii: "|"), UInt8(ascii: ">"), UInt8(ascii: "["), UInt8(ascii: "{"),
            UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "#"):
            throw YAMLError(line: line, "a plain scalar cannot start with \(text(bytes.prefix(1))); quote it")
        case UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"):
            let separated =
                next == nil || next == UInt8(ascii: " ") || next == 0x09
                || (inFlow && next.map { Array(",[]{}".utf8).contains($0) } == true)
            if separated {
                switch first {
                case UInt8(ascii: "-"): throw YAMLError(line: line, "a block sequence cannot start here")
                case UInt8(ascii: "?"): throw YAMLError(line: line, "complex keys (? key) are not supported")
                default: throw YAMLError(line: line, "a key is missing before ':'")
                }
            }
        default: break
        }
    }

    /// Types a plain scalar by the YAML 1.2 core schema, refusing one that
    /// YAML 1.1 (PyYAML and many other readers) types differently.
    static func resolve(plain text: String, line: Int) throws(YAMLError) -> JSONValue {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        // YAML 1.1 (PyYAML's resolver) booleans, merge and value keys.
        let words: Set<String> = [
            "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "<<", "=",
        ]
        if words.contains(text) {
            throw YAMLError(line: line, "\(text) is read differently by YAML 1.1 and YAML 1.2; quote it")
        }
        // Only what starts like a number can be one (or a timestamp).
        guard let first = text.utf8.first, Array("0123456789+-.".utf8).contains(first) else { return .string(text) }
        // Numbers that YAML 1.1 and 1.2 read alike.
        if text.wholeMatch(of: #/[-+]?(?:0|[1-9][0-9]*)/#) != nil
            || text.wholeMatch(of: #/[-+]?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+][0-9]+)?/#) != nil
        {
            guard let number = Double(text), number.isFinite else {
                throw YAMLError(line: line, "\(text) is not a number JSON can hold")
            }
            if !text.contains(".") {
                guard let integer = Int64(text), integer.magnitude <= 9_007_199_254_740_992 else {
                    throw YAMLError(line: line, "the integer \(text) is too large for JSON (above 2^53); quote it")
                }
            }
            return .number(number)
        }
        // Anything else either version would not read as a string.
        let special: [Regex<Substring>] = [
            // YAML 1.1 (PyYAML's resolver): ints, floats, timestamps.
            #/[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+/#,
            #/[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)/#,
            #/[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?/#,
            // YAML 1.2 core: ints and floats.
            #/[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+/#,
            #/[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN/#,
        ]
        if special.contains(where: { text.wholeMatch(of: $0) != nil }) {
            throw YAMLError(line: line, "\(text) is read differently by YAML 1.1 and YAML 1.2; quote it")
        }
        return .string(text)
    }

    // MARK: - Flow collections

    /// A flow sequence, flow mapping or scalar inside one; the collection
    /// must close on this line.
    mutating func parseFlowNode() throws(YAMLError) -> JSONValue {
        skipSpaces()
        guard !atEnd else { throw error("a flow collection must close on its line") }
        switch bytes[position] {
        case UInt8(ascii: "["):
            position += 1
            var items: [JSONValue] = []
            while true {
                skipSpaces()
                guard !atEnd else { throw error("a flow collection must close on its line") }
                if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(items)
                }
                items.append(try parseFlowNode())
                try expectSeparator(closing: UInt8(ascii: "]"))
            }
        case UInt8(ascii: "{"):
            position += 1
            var members: [(String, JSONValue)] = []
            var keys: Set<String> = []
            while true {
                skipSpaces()
                guard !atEnd else { throw error("a flow collection must close on its line") }
                if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(JSONObject(members))
                }
                let key: String
                if bytes[position] == UInt8(ascii: "'") || bytes[position] == UInt8(ascii: "\"") {
                    key = try parseQuoted()
                } else {
                    let start = position
                    try scanFlowPlain()
                    key = try Self.plainKey(bytes[start..<position], line: line.number)
                }
                guard keys.insert(key).inserted else { throw error("duplicate key '\(key)'") }
                skipSpaces()
                guard !atEnd, bytes[position] == UInt8(ascii: ":") else {
                    throw error("expected ':' after the key '\(key)' in a flow mapping")
                }
                position += 1
                skipSpaces()
                let value: JSONValue
                if !atEnd, bytes[position] == UInt8(ascii: ",") || bytes[position] == UInt8(ascii: "}") {
                    value = .null
                } else {
                    value = try parseFlowNode()
                }
                members.append((key, value))
                try expectSeparator(closing: UInt8(ascii: "}"))
            }
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try parseQuoted())
        default:
            let start = position
            try scanFlowPlain()
            return try Self.resolve(plain: Self.text(bytes[start..<position]), line: line.number)
        }
    }

    /// After an item: `,` (consumed) or the closing bracket (left for the caller).
    private mutating func expectSeparator(closing: UInt8) throws(YAMLError) {
        skipSpaces()
        guard !atEnd else { throw error("a flow collection must close on its line") }
        if bytes[position] == UInt8(ascii: ",") {
            position += 1
        } else if bytes[position] != closing {
            throw error("expected ',' or '\(Self.text([closing][...]))', found \(Self.text(bytes[position...]))")
        }
    }

    /// Moves past a plain scalar in a flow collection, trailing spaces excluded.
    private mutating func scanFlowPlain() throws(YAMLError) {
        try Self.checkPlainStart(bytes[position...], inFlow: true, line: line.number)
        let start = position
        var end = position
        scan: while end < bytes.count {
            switch bytes[end] {
            case UInt8(ascii: ","), UInt8(ascii: "?"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"),
                UInt8(ascii: "}"):
                break scan
            case UInt8(ascii: ":"):
                if end + 1 == bytes.count || Array(" ,[]{}".utf8).contains(bytes[end + 1]) { break scan }
            case UInt8(ascii: "#") where bytes[end - 1] == UInt8(ascii: " "):
                break scan
            case 0x09:
                throw error("tabs are allowed only in quoted and block scalars")
            default: break
            }
            end += 1
        }
        while end > start, bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
        guard end > start else { throw error("a value is missing in a flow collection") }
        position = end
    }

    static func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
}
