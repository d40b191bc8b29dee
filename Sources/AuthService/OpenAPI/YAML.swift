public import JSON

/// Reads the subset of YAML that Gatehouse's own documents are written in
/// (`docs/openapi.yaml`), straight into JSON values.
///
/// The subset:
/// - block mappings (`key: value`) and block sequences (`- item`), nested by
///   indentation (spaces only), including a sequence at its key's indentation
///   and compact forms (`- key: value`, `- - item`);
/// - flow sequences and mappings (`[a, b]`, `{a: 1}`) that close on their line;
/// - plain, single-quoted and double-quoted scalars on one line;
/// - literal (`|`) and folded (`>`) block scalars, with chomping (`-`, `+`)
///   and indentation indicators;
/// - comments.
///
/// Plain scalars are typed by the YAML 1.2 core schema: `null`, `~` and
/// nothing are null, `true` and `false` booleans, decimal integers and
/// floats numbers, everything else a string. A plain scalar that YAML 1.1
/// (PyYAML, many other readers) would type differently is refused rather than
/// guessed at: `yes`, `no`, `on`, `off`, `017`, `0o17`, `1e3`, `1_000`, `1:30`,
/// `2026-11-25`, `.inf`, `<<`; quote it.
///
/// Anything else (anchors, aliases, tags, directives, document markers,
/// complex keys, multi-line plain or quoted scalars, tabs for indentation,
/// duplicate keys) is a `YAMLError` naming the line, never a guess.
public enum YAML {
    /// Parses one YAML document.
    /// - Parameter bytes: UTF-8 text ending with a line break.
    /// - Returns: the document as a JSON value (null for an empty document).
    /// - Throws: `YAMLError` with the line of the first problem.
    public static func parse(_ bytes: [UInt8]) throws(YAMLError) -> JSONValue {
        var parser = try YAMLParser(bytes)
        return try parser.parseDocument()
    }

    /// Parses one YAML document; see `parse(_:)`.
    public static func parse(_ text: String) throws(YAMLError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

/// The block structure: lines, indentation, mappings and sequences. Scalars
/// and flow collections are in `YAMLParser+Scalars.swift`.
struct YAMLParser {
    /// One physical line, without its line break.
    struct Line {
        /// 1-based.
        let number: Int
        let bytes: [UInt8]
        /// Where the content starts: the indentation. A sequence entry's
        /// content (`- key: value`) is parsed as a line of its own starting
        /// after the dash, so this can move right.
        var start: Int

        /// Nothing but spaces. (A tab there is refused, as PyYAML does.)
        var isBlank: Bool { start == bytes.count }
        var isComment: Bool { start < bytes.count && bytes[start] == UInt8(ascii: "#") }
        /// A line that holds no node: blank or only a comment.
        var isInsignificant: Bool { isBlank || isComment }
        /// `- ...` or a lone `-`.
        var isSequenceEntry: Bool {
            start < bytes.count && bytes[start] == UInt8(ascii: "-")
                && (start + 1 == bytes.count || bytes[start + 1] == UInt8(ascii: " "))
        }
    }

    var lines: [Line]
    var index = 0

    init(_ bytes: [UInt8]) throws(YAMLError) {
        var text = bytes[...]
        // A byte order mark is allowed at the start, as YAML says.
        if text.starts(with: [0xEF, 0xBB, 0xBF]) { text = text.dropFirst(3) }
        guard let decoded = String(validating: text, as: UTF8.self) else {
            throw YAMLError(line: Self.lineNumber(ofFirstInvalidUTF8In: Array(text)), "the text is not valid UTF-8")
        }
        guard text.isEmpty || text.last == 0x0A else {
            throw YAMLError(line: text.count { $0 == 0x0A } + 1, "the text must end with a line break")
        }
        try Self.checkCharacters(decoded)
        var lines: [Line] = []
        var number = 0
        for raw in text.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false) {
            number += 1
            var line = Array(raw)
            if line.last == 0x0D { line.removeLast() }
            if line.contains(0x0D) { throw YAMLError(line: number, "a carriage return that does not end the line") }
            var start = 0
            while start < line.count, line[start] == UInt8(ascii: " ") { start += 1 }
            lines.append(Line(number: number, bytes: line, start: start))
        }
        self.lines = lines
    }

    /// YAML's printable set, less the line breaks only YAML 1.1 knows (NEL,
    /// LS, PS): other readers would split lines there.
    static func checkCharacters(_ text: String) throws(YAMLError) {
        var line = 1
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: line += 1
            case 0x09, 0x0D, 0x20...0x7E, 0xA0...0x2027, 0x202A...0xD7FF, 0xE000...0xFEFE, 0xFF00...0xFFFD,
                0x10000...0x10FFFF:
                continue
            default:
                throw YAMLError(
                    line: line, "the character U+\(String(scalar.value, radix: 16, uppercase: true)) is not allowed")
            }
        }
    }

    static func lineNumber(ofFirstInvalidUTF8In bytes: [UInt8]) -> Int {
        var line = 1
        var start = 0
        for (offset, byte) in bytes.enumerated() where byte == 0x0A {
            if String(validating: bytes[start..<offset], as: UTF8.self) == nil { return line }
            line += 1
            start = offset + 1
        }
        return line
    }

    // MARK: - Block structure

    mutating func parseDocument() throws(YAMLError) -> JSONValue {
        skipInsignificant()
        guard index < lines.count else { return .null }
        let value = try parseNode(parentIndent: -1)
        skipInsignificant()
        if index < lines.count {
            try Self.checkStart(of: lines[index])
            throw YAMLError(line: lines[index].number, "unexpected content after the document")
        }
        return value
    }

    /// Moves past blank and comment lines.
    mutating func skipInsignificant() {
        while index < lines.count, lines[index].isInsignificant { index += 1 }
    }

    /// Refuses what a line holding a node may not start with: a tab in its
    /// indentation, a directive, a document marker.
    static func checkStart(of line: Line) throws(YAMLError) {
        if line.bytes[line.start] == 0x09 { throw YAMLError(line: line.number, "tabs cannot indent; use spaces") }
        let content = line.bytes[line.start...]
        if line.start == 0, content.first == UInt8(ascii: "%") {
            throw YAMLError(line: line.number, "directives (%YAML, %TAG) are not supported")
        }
        for marker in ["---", "..."] where line.start == 0 && content.starts(with: Array(marker.utf8)) {
            let after = content.dropFirst(3)
            if after.isEmpty || after.first == UInt8(ascii: " ") {
                throw YAMLError(line: line.number, "document markers (\(marker)) are not supported: one document only")
            }
        }
    }

    /// The node that starts on the current line, which is significant and
    /// indented deeper than `parentIndent`.
    mutating func parseNode(parentIndent: Int) throws(YAMLError) -> JSONValue {
        let line = lines[index]
        try Self.checkStart(of: line)
        if line.isSequenceEntry { return try parseSequence(indent: line.start) }
        if try mappingKey(in: line) != nil { return try parseMapping(indent: line.start) }
        return try parseValue(of: line, from: line.start, ownerIndent: parentIndent, sequenceMayFollow: false)
    }

    /// The next significant line of a block at `indent`; nil once the block ends (the text
    /// ends, or a line is indented less). A line indented more is an error.
    mutating func nextLine(atIndent indent: Int) throws(YAMLError) -> Line? {
        skipInsignificant()
        guard index < lines.count else { return nil }
        let line = lines[index]
        try Self.checkStart(of: line)
        if line.start < indent { return nil }
        if line.start > indent { throw YAMLError(line: line.number, "unexpected indentation") }
        return line
    }

    mutating func parseMapping(indent: Int) throws(YAMLError) -> JSONValue {
        var members: [(String, JSONValue)] = []
        var firstLine: [String: Int] = [:]
        while let line = try nextLine(atIndent: indent) {
            guard let (key, valueStart) = try mappingKey(in: line) else {
                if line.isSequenceEntry {
                    throw YAMLError(line: line.number, "a sequence entry where a mapping key was expected")
                }
                throw YAMLError(line: line.number, "expected 'key: value'")
            }
            if let first = firstLine[key] {
                throw YAMLError(line: line.number, "duplicate key '\(key)' (first on line \(first))")
            }
            firstLine[key] = line.number
            let value = try parseValue(of: line, from: valueStart, ownerIndent: indent, sequenceMayFollow: true)
            members.append((key, value))
        }
        return .object(JSONObject(members))
    }

    mutating func parseSequence(indent: Int) throws(YAMLError) -> JSONValue {
        var items: [JSONValue] = []
        while let line = try nextLine(atIndent: indent) {
            // A key at the same indentation ends a sequence that is a mapping's value.
            guard line.isSequenceEntry else { break }
            var contentStart = line.start + 1
            while contentStart < line.bytes.count, line.bytes[contentStart] == UInt8(ascii: " ") { contentStart += 1 }
            if contentStart == line.bytes.count || line.bytes[contentStart] == UInt8(ascii: "#") {
                // The item is on the lines below, or is null.
                index += 1
                skipInsignificant()
                if index < lines.count, lines[index].start > indent {
                    items.append(try parseNode(parentIndent: indent))
                } else {
                    items.append(.null)
                }
            } else {
                // The rest of the line is a node at its own column (`- key: value`).
                lines[index].start = contentStart
                items.append(try parseNode(parentIndent: indent))
            }
        }
        return .array(items)
    }

    /// The value that starts at `start` on `line` (after `key:`, or a node of
    /// its own), or below it. Consumes its lines.
    /// - Parameters:
    ///   - ownerIndent: the indentation of the mapping or sequence that holds the value.
    ///   - sequenceMayFollow: whether a block sequence at `ownerIndent` may be
    ///     the value (`key:` then `- item` at the key's indentation).
    mutating func parseValue(
        of line: Line, from start: Int, ownerIndent: Int, sequenceMayFollow: Bool
    ) throws(YAMLError) -> JSONValue {
        var position = start
        let bytes = line.bytes
        while position < bytes.count, bytes[position] == UInt8(ascii: " ") { position += 1 }
        if position == bytes.count || (bytes[position] == UInt8(ascii: "#") && position > start) {
            index += 1
            skipInsignificant()
            if index < lines.count {
                let next = lines[index]
                if next.start > ownerIndent { return try parseNode(parentIndent: ownerIndent) }
                if sequenceMayFollow, next.start == ownerIndent, next.isSequenceEntry {
                    return try parseSequence(indent: ownerIndent)
                }
            }
            return .null
        }
        switch bytes[position] {
        case UInt8(ascii: "|"), UInt8(ascii: ">"):
            return try parseBlockScalar(header: line, at: position, ownerIndent: ownerIndent)
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            var cursor = ScalarCursor(line: line, position: position)
            let value = try cursor.parseFlowNode()
            try cursor.expectEndOfLine()
            index += 1
            return value
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            var cursor = ScalarCursor(line: line, position: position)
            let value = try cursor.parseQuoted()
            try cursor.expectEndOfLine()
            index += 1
            return .string(value)
        default:
            var cursor = ScalarCursor(line: line, position: position)
            let value = try cursor.parsePlainValue()
            index += 1
            return value
        }
    }

    /// The key of a `key: value` line and where its value starts, or nil
    /// when the line is not a mapping entry.
    func mappingKey(in line: Line) throws(YAMLError) -> (key: String, valueStart: Int)? {
        let bytes = line.bytes
        let start = line.start
        guard start < bytes.count else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            var cursor = ScalarCursor(line: line, position: start)
            guard let key = try? cursor.parseQuoted() else { return nil }
            cursor.skipSpaces()
            guard cursor.atColon else { return nil }
            return (key, cursor.position + 1)
        case UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: ">"), UInt8(ascii: "#"):
            return nil
        case UInt8(ascii: "?") where start + 1 == bytes.count || bytes[start + 1] == UInt8(ascii: " "):
            throw YAMLError(line: line.number, "complex keys (? key) are not supported")
        default:
            var position = start
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "#"), bytes[position - 1] == UInt8(ascii: " ") { return nil }
                if byte == UInt8(ascii: ":"), position + 1 == bytes.count || bytes[position + 1] == UInt8(ascii: " ") {
                    var end = position
                    while end > start, bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
                    let key = try ScalarCursor.plainKey(bytes[start..<end], line: line.number)
                    return (key, position + 1)
                }
                position += 1
            }
            return nil
        }
    }

    // MARK: - Block scalars

    /// A `|` or `>` block scalar whose header is at `position` on `header`;
    /// its content is the lines below, indented deeper than `ownerIndent`.
    mutating func parseBlockScalar(header: Line, at position: Int, ownerIndent: Int) throws(YAMLError) -> JSONValue {
        let bytes = header.bytes
        let folded = bytes[position] == UInt8(ascii: ">")
        var chomping = Chomping.clip
        var increment: Int?
        var cursor = position + 1
        while cursor < bytes.count, bytes[cursor] != UInt8(ascii: " ") {
            switch bytes[cursor] {
            case UInt8(ascii: "-") where chomping == .clip: chomping = .strip
            case UInt8(ascii: "+") where chomping == .clip: chomping = .keep
            case UInt8(ascii: "1")...UInt8(ascii: "9") where increment == nil:
                increment = Int(bytes[cursor] - UInt8(ascii: "0"))
            default:
                throw YAMLError(line: header.number, "a block scalar header is | or > with at most -, + and a digit")
            }
            cursor += 1
        }
        while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
        if cursor < bytes.count, bytes[cursor] != UInt8(ascii: "#") {
            throw YAMLError(line: header.number, "nothing may follow a block scalar header but a comment")
        }
        index += 1

        // As PyYAML: content is indented at least one column, and deeper than its owner.
        let minimumIndent = max(ownerIndent + 1, 1)
        let indent: Int
        if let increment {
            indent = minimumIndent + increment - 1
        } else {
            var longestBlank = 0
            var probe = index
            while probe < lines.count, lines[probe].isBlank {
                longestBlank = max(longestBlank, lines[probe].bytes.count)
                probe += 1
            }
            let firstIndent = probe < lines.count ? lines[probe].start : 0
            if probe < lines.count, firstIndent >= minimumIndent, longestBlank > firstIndent {
                throw YAMLError(
                    line: lines[probe].number, "a leading empty line of a block scalar is longer than its first line")
            }
            indent = max(minimumIndent, firstIndent)
        }

        var content: [[UInt8]] = []
        while index < lines.count {
            let line = lines[index]
            var spaces = 0
            while spaces < line.bytes.count, line.bytes[spaces] == UInt8(ascii: " ") { spaces += 1 }
            if spaces == line.bytes.count {
                content.append(spaces > indent ? Array(line.bytes[indent...]) : [])
            } else if spaces < indent {
                if line.bytes[spaces] == 0x09 { throw YAMLError(line: line.number, "tabs cannot indent; use spaces") }
                break
            } else {
                content.append(Array(line.bytes[indent...]))
            }
            index += 1
        }
        var trailingBreaks = 0
        while let last = content.last, last.isEmpty {
            content.removeLast()
            trailingBreaks += 1
        }

        var text: [UInt8] = []
        if folded {
            Self.fold(content, into: &text)
        } else {
            for (offset, line) in content.enumerated() {
                if offset > 0 { text.append(0x0A) }
                text.append(contentsOf: line)
            }
        }
        switch chomping {
        case .strip: break
        case .clip: if !content.isEmpty { text.append(0x0A) }
        case .keep:
            if !content.isEmpty { text.append(0x0A) }
            text.append(contentsOf: repeatElement(0x0A, count: trailingBreaks))
        }
        return .string(String(decoding: text, as: UTF8.self))
    }

    enum Chomping { case clip, strip, keep }

    /// Folds the lines of a `>` scalar (YAML 1.2 section 8.1.3): a line break
    /// between two lines of text becomes a space, each empty line a line
    /// break; around a more-indented line every break stays.
    static func fold(_ content: [[UInt8]], into text: inout [UInt8]) {
        var emptyLines = 0
        var first = true
        var previousWasText = false
        for line in content {
            if line.isEmpty {
                emptyLines += 1
                continue
            }
            let moreIndented = line[0] == UInt8(ascii: " ") || line[0] == 0x09
            if first {
                text.append(contentsOf: repeatElement(0x0A, count: emptyLines))
            } else if previousWasText && !moreIndented {
                if emptyLines == 0 {
                    text.append(UInt8(ascii: " "))
                } else {
                    text.append(contentsOf: repeatElement(0x0A, count: emptyLines))
                }
            } else {
                text.append(contentsOf: repeatElement(0x0A, count: emptyLines + 1))
            }
            text.append(contentsOf: line)
            first = false
            emptyLines = 0
            previousWasText = !moreIndented
        }
    }
}
