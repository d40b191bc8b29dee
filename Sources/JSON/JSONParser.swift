/// Why a JSON text was refused.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, for a person ("unexpected character 'x'").
    public let reason: String
    /// Byte offset in the input where the problem was found.
    public let offset: Int

    public var description: String { "\(reason) at byte \(offset)" }
}

extension JSONValue {
    /// Parses a complete JSON text (RFC 8259), strictly.
    ///
    /// Refused: trailing bytes other than whitespace, invalid UTF-8, lone
    /// surrogates, control characters inside strings, leading zeros, `NaN`
    /// and other non-JSON numbers, duplicate object member names (RFC 7515
    /// section 5.2 allows a JOSE parser only that or last-wins; last-wins is how
    /// confused-deputy bugs start), and nesting deeper than `maxDepth`.
    ///
    /// - Parameters:
    ///   - bytes: the UTF-8 text.
    ///   - maxDepth: the deepest nesting of arrays and objects allowed.
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 64) throws(JSONError) -> JSONValue {
        // Contiguous input (an Array, a buffer) is parsed in place; anything
        // else is copied once.
        let result =
            bytes.withContiguousStorageIfAvailable { parseCatching($0, maxDepth: maxDepth) }
            ?? Array(bytes).withUnsafeBufferPointer { parseCatching($0, maxDepth: maxDepth) }
        return try result.get()
    }

    /// Parses a complete JSON text held in a buffer, in place. The same rules
    /// as `parse(_:maxDepth:)` apply.
    /// - Parameters:
    ///   - bytes: the UTF-8 text.
    ///   - maxDepth: the deepest nesting of arrays and objects allowed.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int = 64) throws(JSONError) -> JSONValue {
        try JSONParser.with(bytes, maxDepth: maxDepth) { (parser) throws(JSONError) -> JSONValue in
            try parser.parseDocument()
        }
    }

    /// Parses a complete JSON text from a string.
    public static func parse(_ text: String, maxDepth: Int = 64) throws(JSONError) -> JSONValue {
        var text = text
        return try text.withUTF8 { parseCatching($0, maxDepth: maxDepth) }.get()
    }

    private static func parseCatching(
        _ bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int
    ) -> Result<JSONValue, JSONError> {
        Result { () throws(JSONError) -> JSONValue in try parse(bytes, maxDepth: maxDepth) }
    }
}

// MARK: - Reading an object without building it

/// How a string is written in the text.
package enum JSONStringShape: Sendable {
    /// No escape, every byte below 0x80: the bytes between the quotes are
    /// the string's UTF-8, and two such strings are equal exactly when their
    /// bytes are.
    case ascii
    /// No escape: the bytes between the quotes are the string's UTF-8 (valid).
    case unescaped
    /// At least one escape.
    case escaped
}

/// A string as it lies in a JSON text: the bytes between its quotes.
package struct JSONTextString: Sendable {
    package var start: Int
    package var end: Int
    package var shape: JSONStringShape
}

/// The kind of a JSON value.
package enum JSONKind: Sendable {
    case null, bool, number, string, array, object
}

/// One member of an object read by `JSONValue.scanObject`, located in the
/// text rather than built.
package struct JSONScannedMember: Sendable {
    /// The member name.
    package var name: JSONTextString
    /// For an `.ascii` name, its first eight bytes as a little-endian
    /// integer, zero past its end (an `.ascii` name has no zero byte, so a
    /// name of up to eight bytes is exactly this number); 0 for any other.
    package var nameWord: UInt64
    /// The kind of the value.
    package var kind: JSONKind
    /// The value when `kind == .number`; 1 or 0 for `.bool`; 0 otherwise.
    package var number: Double
    /// Where a `.string` value lies (meaningless for other kinds).
    package var string: JSONTextString
    /// Where the whole value lies in the text, for parsing it on demand.
    package var valueStart: Int
    package var valueEnd: Int
}

extension JSONValue {
    /// Checks `bytes` by exactly the rules of `parse(_:maxDepth:)`, requires
    /// the value to be an object, and calls `visit` with each of its members
    /// in order, located in the text rather than built: no string, array or
    /// object is made. Members are visited as they are read, so the caller
    /// must not trust what it saw unless this returns without throwing.
    package static func scanObject(
        _ bytes: UnsafeBufferPointer<UInt8>,
        maxDepth: Int = 64,
        _ visit: (JSONScannedMember) -> Void
    ) throws(JSONError) {
        try JSONParser.with(bytes, maxDepth: maxDepth) { (parser) throws(JSONError) in
            try parser.scanDocument(visit)
        }
    }

    /// The string `text` spells in `bytes` (which `scanObject` has checked).
    package static func string(_ text: JSONTextString, in bytes: UnsafeBufferPointer<UInt8>) -> String {
        var parser = JSONParser(bytes: bytes, maxDepth: 0, names: UnsafeMutableBufferPointer(start: nil, count: 0))
        return parser.makeString(text)
    }

    /// Whether the string `text` spells in `bytes` is `other` by `String`'s
    /// `==` (canonical equivalence), comparing bytes when both are ASCII.
    /// - Parameter otherIsASCII: whether every byte of `other` is below 0x80.
    package static func string(
        _ text: JSONTextString, in bytes: UnsafeBufferPointer<UInt8>, equals other: String, otherIsASCII: Bool
    ) -> Bool {
        if text.shape == .ascii, otherIsASCII {
            var other = other
            return other.withUTF8 { utf8 in
                guard utf8.count == text.end - text.start else { return false }
                for offset in 0..<utf8.count where utf8[offset] != bytes[text.start + offset] { return false }
                return true
            }
        }
        return string(text, in: bytes) == other
    }
}

// MARK: - The parser

private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0
    var depth = 0

    /// The member names of every object being read (the innermost last),
    /// for refusing duplicates: the first ones in a buffer on the stack,
    /// any more in `spilledNames`.
    let names: UnsafeMutableBufferPointer<JSONTextString>
    var nameCount = 0
    var spilledNames: [JSONTextString] = []
    /// The names among those that are not `.ascii`, decoded, with their place.
    var decodedNames: [(position: Int, name: String)] = []
    /// The decoded names of each object being read that has reached
    /// `nameSetThreshold` names (see `ObjectNames.nameSet`), the innermost last.
    var nameSets: [Set<String>] = []

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, names: UnsafeMutableBufferPointer<JSONTextString>) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.names = names
    }

    /// Runs `body` with a parser for `bytes` whose name buffer is on the stack.
    static func with<R>(
        _ bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, _ body: (inout JSONParser) throws(JSONError) -> R
    ) throws(JSONError) -> R {
        let result = withUnsafeTemporaryAllocation(of: JSONTextString.self, capacity: 32) { names in
            var parser = JSONParser(bytes: bytes, maxDepth: maxDepth, names: names)
            return Result { () throws(JSONError) -> R in try body(&parser) }
        }
        return try result.get()
    }

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        try finishDocument()
        return value
    }

    mutating func finishDocument() throws(JSONError) {
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected data after the JSON value") }
    }

    func fail(_ reason: String) -> JSONError { JSONError(reason: reason, offset: index) }

    @inline(__always)
    mutating func skipWhitespace() {
        // Compact JSON has none: one look at a byte above the space is enough.
        if index < bytes.count, bytes[index] > 0x20 { return }
        skipWhitespaceSlowly()
    }

    mutating func skipWhitespaceSlowly() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(JSONError) -> JSONValue {
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "\""): return .string(makeString(try scanString()))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        default: throw fail("unexpected character")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw fail("unexpected end of input") }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] {
            throw fail("invalid literal")
        }
        index += count
    }

    mutating func enter() throws(JSONError) {
        depth += 1
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
    }

    // MARK: Objects and arrays

    mutating func parseObject() throws(JSONError) -> JSONValue {
        try enter()
        index += 1  // {
        var object = JSONObject()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(object)
        }
        // Room for a typical request body or claims set at once, for the
        // top-level object only: there is one per document, so a text of
        // many small objects cannot make it reserve far more than it uses.
        if depth == 1 { object.reserveCapacity(8) }
        var names = ObjectNames(first: nameCount)
        while true {
            let (name, _) = try readMemberName(&names)
            let key = lastDecodedName(name) ?? makeString(name)
            let value = try parseValue()
            object.appendUnchecked(key, value)
            if try endOfMembers(names) { return .object(object) }
        }
    }

    mutating func parseArray() throws(JSONError) -> JSONValue {
        try enter()
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            if try endOfElements() { return .array(elements) }
        }
    }

    /// Reads `"name"` and the `:` after it (with the whitespace around
    /// them), refusing a name the object already has. Returns the name and,
    /// for an `.ascii` one, its first eight bytes (see `JSONScannedMember.nameWord`).
    @inline(__always)
    mutating func readMemberName(_ names: inout ObjectNames) throws(JSONError) -> (JSONTextString, UInt64) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            throw fail("expected a member name in quotes")
        }
        let name = try scanString()
        var word: UInt64 = 0
        if name.shape == .ascii {
            let length = name.end &- name.start
            if bytes.count &- name.start >= 8, let base = bytes.baseAddress {
                word = UnsafeRawPointer(base + name.start).loadUnaligned(as: UInt64.self).littleEndian
                if length < 8 { word &= (1 &<< (8 &* UInt64(truncatingIfNeeded: length))) &- 1 }
            } else {
                for offset in 0..<length { word |= UInt64(bytes[name.start &+ offset]) &<< (8 &* UInt64(offset)) }
            }
        }
        if names.nameSet >= 0 {
            try insertIntoNameSet(name, names: &names)
        } else {
            if name.shape == .ascii {
                // Equal ASCII names have equal hashes: a name whose bit is not in
                // the object's filter yet cannot equal one of its earlier ASCII
                // names; if the object has no other kind of name, it is new.
                let length = name.end &- name.start
                let mixed = (word ^ UInt64(truncatingIfNeeded: length) &* 0x9E37_79B9) &* 0x9E37_79B9_7F4A_7C15
                let bit: UInt64 = 1 &<< (mixed &>> 58)
                if names.filter & bit == 0, !names.hasDecodedNames {
                    names.filter |= bit
                    recordName(name)
                } else if let duplicate = insertName(name, bit: bit, into: &names) {
                    throw fail("duplicate member name \"\(duplicate)\"")
                }
            } else if let duplicate = insertName(name, bit: 0, into: &names) {
                throw fail("duplicate member name \"\(duplicate)\"")
            }
            if nameCount &- names.first >= Self.nameSetThreshold { startNameSet(&names) }
        }
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
        index &+= 1
        skipWhitespace()
        return (name, word)
    }

    /// After a member's value: `true` at the closing `}` (consumed, and the
    /// object left), `false` after a `,`.
    mutating func endOfMembers(_ names: ObjectNames) throws(JSONError) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of input") }
        if bytes[index] == UInt8(ascii: ",") {
            index += 1
            return false
        }
        guard bytes[index] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
        index += 1
        depth -= 1
        removeNames(from: names.first)
        // Objects nest, so this object's set, if it has one, is the last.
        if names.nameSet >= 0 { nameSets.removeLast() }
        return true
    }

    /// After an element: `true` at the closing `]` (consumed, and the array
    /// left), `false` after a `,`.
    mutating func endOfElements() throws(JSONError) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of input") }
        if bytes[index] == UInt8(ascii: ",") {
            index += 1
            return false
        }
        guard bytes[index] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
        index += 1
        depth -= 1
        return true
    }

    // MARK: Checking without building

    mutating func scanDocument(_ visit: (JSONScannedMember) -> Void) throws(JSONError) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else {
            // Not an object: report what is wrong with the text if anything is,
            // else that it is not an object.
            _ = try skipValue()
            try finishDocument()
            throw fail("expected an object")
        }
        try enter()
        index += 1  // {
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return try finishDocument()
        }
        var names = ObjectNames(first: nameCount)
        while true {
            let (name, nameWord) = try readMemberName(&names)
            let valueStart = index
            var member = JSONScannedMember(
                name: name, nameWord: nameWord, kind: .null, number: 0,
                string: JSONTextString(start: 0, end: 0, shape: .ascii),
                valueStart: valueStart, valueEnd: valueStart)
            guard index < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                member.kind = .string
                member.string = try scanString()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                member.kind = .number
                member.number = try parseNumber()
            default:
                member.kind = try skipValue()
                if member.kind == .bool { member.number = bytes[valueStart] == UInt8(ascii: "t") ? 1 : 0 }
            }
            member.valueEnd = index
            visit(member)
            if try endOfMembers(names) { return try finishDocument() }
        }
    }

    /// Checks one value, building nothing; returns its kind.
    mutating func skipValue() throws(JSONError) -> JSONKind {
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            _ = try scanString()
            return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try parseNumber()
            return .number
        case UInt8(ascii: "{"):
            try enter()
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                depth -= 1
                return .object
            }
            var names = ObjectNames(first: nameCount)
            while true {
                _ = try readMemberName(&names)
                _ = try skipValue()
                if try endOfMembers(names) { return .object }
            }
        case UInt8(ascii: "["):
            try enter()
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                depth -= 1
                return .array
            }
            while true {
                skipWhitespace()
                _ = try skipValue()
                if try endOfElements() { return .array }
            }
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        default: throw fail("unexpected character")
        }
    }

    // MARK: Numbers

    /// Exact powers of ten for the fast path (10^22 is the largest a Double holds exactly).
    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// Reads a number, checking the RFC 8259 grammar byte by byte.
    ///
    /// While checking, the digits are gathered into an integer. When all of
    /// them fit (at most 19) the result is computed exactly: an integer is
    /// converted directly (the conversion from `UInt64` rounds correctly), and
    /// a mantissa up to 2^53 scaled by up to 10^22 takes one correctly rounded
    /// multiplication or division (Clinger's fast path). Anything else goes
    /// to `Double(String)` (the C library's `strtod`), as before.
    @inline(__always)
    mutating func parseNumber() throws(JSONError) -> Double {
        // Fast path: an integer of 1 to 19 digits (not starting with a zero
        // unless it is one), not followed by a fraction or an exponent.
        let count = bytes.count
        var position = index
        let negative = bytes[position] == UInt8(ascii: "-")
        if negative { position &+= 1 }
        let first = position
        var mantissa: UInt64 = 0
        while position < count {
            let digit = bytes[position] &- UInt8(ascii: "0")
            guard digit < 10 else { break }
            mantissa = mantissa &* 10 &+ UInt64(digit)
            position &+= 1
        }
        let digits = position &- first
        if digits > 0, digits <= 19, digits == 1 || bytes[first] != UInt8(ascii: "0") {
            if position == count
                || (bytes[position] != UInt8(ascii: ".") && bytes[position] | 0x20 != UInt8(ascii: "e"))
            {
                index = position
                let value = Double(mantissa)
                return negative ? -value : value
            }
        }
        return try parseAnyNumber()
    }

    /// The general case of `parseNumber`.
    mutating func parseAnyNumber() throws(JSONError) -> Double {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
        var mantissa: UInt64 = 0
        var digits = 0  // digits gathered into `mantissa`
        var exact = true  // `mantissa` holds every digit
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw fail("leading zero in number") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(bytes[index] &- UInt8(ascii: "0"))
                    digits += 1
                } else {
                    exact = false
                }
                index += 1
            }
        }
        var scale = 0  // the value is mantissa * 10^scale
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(bytes[index] &- UInt8(ascii: "0"))
                    digits += 1
                    scale -= 1
                } else {
                    exact = false
                }
                index += 1
            }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            var exponentNegative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            var exponent = 0
            while index < bytes.count, isDigit(bytes[index]) {
                // Far beyond the fast path's reach; stop growing so that it cannot overflow.
                if exponent < 1_000_000 { exponent = exponent * 10 + Int(bytes[index] &- UInt8(ascii: "0")) }
                index += 1
            }
            scale += exponentNegative ? -exponent : exponent
        }

        if exact {
            var value: Double?
            if scale == 0 {
                value = Double(mantissa)
            } else if mantissa == 0 {
                value = 0
            } else if mantissa <= 1 << 53, scale >= -22, scale <= 22 {
                let magnitude = Double(mantissa)
                value = scale < 0 ? magnitude / Self.powersOfTen[-scale] : magnitude * Self.powersOfTen[scale]
            }
            if let value { return negative ? -value : value }
        }

        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            index = start
            throw fail("number out of range")
        }
        return value
    }

    func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    // MARK: Strings

    /// The string `text` spells; it has been checked by `scanString`.
    mutating func makeString(_ text: JSONTextString) -> String {
        guard text.shape == .escaped else {
            // Checked UTF-8: String has nothing to repair.
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[text.start..<text.end]), as: UTF8.self)
        }
        let saved = index
        defer { index = saved }
        index = text.start
        var utf8: [UInt8] = []
        utf8.reserveCapacity(text.end - text.start)
        // Cannot fail: the same bytes were accepted before.
        guard (try? unescape(into: &utf8)) != nil else { return "" }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// Checks a string from its opening quote (at `index`) to its closing
    /// one, building nothing; leaves `index` past the closing quote.
    @inline(__always)
    mutating func scanString() throws(JSONError) -> JSONTextString {
        // Fast path: ASCII without escapes, found eight bytes at a time.
        let start = index &+ 1  // past the opening quote
        let count = bytes.count
        var position = start
        if let base = bytes.baseAddress {
            while count &- position >= 8 {
                let mask = Self.specialBytes(UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                if mask != 0 {
                    position &+= mask.littleEndian.trailingZeroBitCount &>> 3
                    if base[position] == UInt8(ascii: "\"") {
                        index = position &+ 1
                        return JSONTextString(start: start, end: position, shape: .ascii)
                    }
                    break
                }
                position &+= 8
            }
        }
        return try scanString(from: start, at: position, multibyte: false)
    }

    /// The general case of `scanString`: the string begins at `start`, and
    /// the bytes before `position` are ASCII without escapes (or above 0x7F,
    /// checked, if `multibyte`).
    mutating func scanString(from start: Int, at position: Int, multibyte: Bool) throws(JSONError) -> JSONTextString {
        let count = bytes.count
        var position = position
        var multibyte = multibyte  // whether any byte was above 0x7F
        // Bytes above 0x7F are checked as UTF-8 here, so a String made from
        // these bytes never needs repairing.
        while true {
            // Find the next byte that needs a look, eight at a time.
            var mask: UInt64 = 0
            if let base = bytes.baseAddress {
                while count - position >= 8 {
                    mask = Self.specialBytes(UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                    if mask != 0 { break }
                    position += 8
                }
                if mask == 0, position < count {
                    // Fewer than eight bytes left: pad with zero bytes, which
                    // count as special (control characters) and lie past the end.
                    var word: UInt64 = 0
                    withUnsafeMutableBytes(of: &word) { word in
                        word.copyMemory(from: UnsafeRawBufferPointer(start: base + position, count: count - position))
                    }
                    mask = Self.specialBytes(word)
                }
            }
            // Little-endian: the lowest set bit marks the first special byte.
            position += mask.littleEndian.trailingZeroBitCount >> 3
            guard position < count else { break }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                index = position + 1
                return JSONTextString(start: start, end: position, shape: multibyte ? .unescaped : .ascii)
            }
            if byte == UInt8(ascii: "\\") {
                // The slow path: check every escape (and the rest), then find the end.
                index = position
                var discarded: [UInt8] = []
                try unescape(into: &discarded)
                return JSONTextString(start: start, end: index - 1, shape: .escaped)
            }
            guard byte >= 0x80 else {
                index = position
                throw fail("control character in string")
            }
            multibyte = true
            index = position
            try skipMultibyteScalar()
            position = index
        }
        index = count
        throw fail("unterminated string")
    }

    /// The high bit of each byte of `word` that is a quote, a backslash, a
    /// control character or above 0x7F, exactly (SWAR: no carry crosses
    /// from one byte into the next).
    @inline(__always)
    static func specialBytes(_ word: UInt64) -> UInt64 {
        let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        let highs: UInt64 = 0x8080_8080_8080_8080
        // High bit set where a byte of x is zero: (x & 0x7F) + 0x7F carries
        // into the high bit unless the low seven bits are zero.
        func zeroBytes(_ x: UInt64) -> UInt64 { ~(((x & low7) &+ low7) | x) & highs }
        let quotes = zeroBytes(word ^ 0x2222_2222_2222_2222)
        let backslashes = zeroBytes(word ^ 0x5C5C_5C5C_5C5C_5C5C)
        // (b & 0x7F) + 0x60 reaches 0x80 unless b & 0x7F is below 0x20.
        let controls = ~((word & low7) &+ 0x6060_6060_6060_6060) & highs
        return (quotes | backslashes | controls | word) & highs
    }

    /// Appends the UTF-8 of the rest of a string, from `index` up to its
    /// closing quote, to `utf8`, decoding escapes and checking everything;
    /// leaves `index` past the closing quote.
    mutating func unescape(into utf8: inout [UInt8]) throws(JSONError) {
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw fail("unterminated string") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    let scalar = try parseUnicodeEscape()
                    UTF8.encode(scalar) { utf8.append($0) }
                default:
                    index -= 1
                    throw fail("invalid escape")
                }
            default:
                guard byte >= 0x20 else { throw fail("control character in string") }
                if byte < 0x80 {
                    utf8.append(byte)
                    index += 1
                } else {
                    let scalarStart = index
                    try skipMultibyteScalar()
                    utf8.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[scalarStart..<index]))
                }
            }
        }
        throw fail("unterminated string")
    }

    /// Steps over one well-formed UTF-8 sequence of two to four bytes
    /// starting at `index` (Unicode 15, table 3-7: no overlong forms, no
    /// surrogates, nothing above U+10FFFF), or throws with `index` at its
    /// first byte.
    mutating func skipMultibyteScalar() throws(JSONError) {
        let lead = bytes[index]
        let length: Int
        var low: UInt8 = 0x80  // the range allowed for the second byte
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: throw fail("invalid UTF-8 in string")
        }
        guard bytes.count - index >= length else { throw fail("invalid UTF-8 in string") }
        let second = bytes[index + 1]
        guard second >= low, second <= high else { throw fail("invalid UTF-8 in string") }
        var offset = 2
        while offset < length {
            guard bytes[index + offset] & 0xC0 == 0x80 else { throw fail("invalid UTF-8 in string") }
            offset += 1
        }
        index += length
    }

    mutating func parseHex4() throws(JSONError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw fail("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    mutating func parseUnicodeEscape() throws(JSONError) -> Unicode.Scalar {
        let first = try parseHex4()
        switch first {
        case 0xD800...0xDBFF:
            guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { throw fail("lone surrogate in \\u escape") }
            index += 2
            let second = try parseHex4()
            guard (0xDC00...0xDFFF).contains(second) else { throw fail("lone surrogate in \\u escape") }
            let combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            guard let scalar = Unicode.Scalar(combined) else { throw fail("invalid \\u escape") }
            return scalar
        case 0xDC00...0xDFFF:
            throw fail("lone surrogate in \\u escape")
        default:
            guard let scalar = Unicode.Scalar(first) else { throw fail("invalid \\u escape") }
            return scalar
        }
    }
}

// MARK: - Duplicate member names

/// Refusing duplicate member names.
///
/// `String`'s `==` is canonical equivalence, and `JSONObject` looks members
/// up with it, so that is what "the same name" must mean here too. Two ASCII
/// names without escapes are equal exactly when their bytes are, which is
/// far cheaper to check and is what almost every name is; any other name is
/// decoded and compared as a `String`.
///
/// That check compares a new name with every earlier name of its object
/// whose hash bit it shares, and a 64-bit filter is full after a few dozen
/// names: an object of n names costs O(n^2) comparisons. A JWT header of
/// 850 tiny members (it fits in an 8 KiB token, and the header is parsed
/// before the signature is checked) took about 1 ms, a thousand times the
/// cost of a whole verification. So an object that reaches
/// `nameSetThreshold` names moves to a `Set<String>` of its decoded names;
/// `String` hashes canonically equivalent strings alike, so the set finds
/// exactly the names `==` calls equal. Objects below the threshold (every
/// claims set and request body) never build one.
///
/// The names of the object being read: where in the parser's list its
/// first one is, and a filter of the ASCII ones' hashes.
private struct ObjectNames {
    let first: Int
    var filter: UInt64 = 0
    /// Whether any of its names is not `.ascii` (and so in `decodedNames`).
    var hasDecodedNames = false
    /// Where in the parser's `nameSets` this object's set is, once it has
    /// `nameSetThreshold` names; -1 before.
    var nameSet = -1
}

extension JSONParser {
    func name(at position: Int) -> JSONTextString {
        position < names.count ? names[position] : spilledNames[position - names.count]
    }

    /// Records `name` as the next one of the object `names`; returns it
    /// decoded if that object already has a member so named. `bit` is an
    /// `.ascii` name's hash bit (see `readMemberName`).
    mutating func insertName(_ name: JSONTextString, bit: UInt64, into names: inout ObjectNames) -> String? {
        let firstName = names.first
        if name.shape == .ascii {
            if names.filter & bit != 0 {
                let length = name.end - name.start
                for position in firstName..<nameCount {
                    let earlier = self.name(at: position)
                    if earlier.shape == .ascii, earlier.end - earlier.start == length,
                        sameBytes(earlier.start, name.start, count: length)
                    {
                        return makeString(name)
                    }
                }
            }
            names.filter |= bit
            if names.hasDecodedNames {
                let decoded = makeString(name)
                for earlier in decodedNames.reversed() {
                    guard earlier.position >= firstName else { break }
                    if earlier.name == decoded { return decoded }
                }
            }
        } else {
            let decoded = makeString(name)
            for position in firstName..<nameCount {
                let earlier = self.name(at: position)
                if earlier.shape == .ascii, makeString(earlier) == decoded { return decoded }
            }
            for earlier in decodedNames.reversed() {
                guard earlier.position >= firstName else { break }
                if earlier.name == decoded { return decoded }
            }
            decodedNames.append((nameCount, decoded))
            names.hasDecodedNames = true
        }
        recordName(name)
        return nil
    }

    /// How many names an object may have before they move to a set.
    static let nameSetThreshold = 32

    /// Puts the names of the object `names` (it has reached
    /// `nameSetThreshold` of them, all different) in a new set.
    @inline(never)
    mutating func startNameSet(_ names: inout ObjectNames) {
        var set = Set<String>(minimumCapacity: 4 * Self.nameSetThreshold)
        for position in names.first..<nameCount { set.insert(makeString(name(at: position))) }
        names.nameSet = nameSets.count
        nameSets.append(set)
    }

    /// Records `name` as the next one of the object `names`, which has a
    /// set; throws if the set already holds it.
    @inline(never)
    mutating func insertIntoNameSet(_ name: JSONTextString, names: inout ObjectNames) throws(JSONError) {
        let decoded = makeString(name)
        guard nameSets[names.nameSet].insert(decoded).inserted else {
            throw fail("duplicate member name \"\(decoded)\"")
        }
        // Kept as for a small object, so `lastDecodedName` finds it.
        if name.shape != .ascii {
            decodedNames.append((nameCount, decoded))
            names.hasDecodedNames = true
        }
        recordName(name)
    }

    /// Appends `name` to the list of names.
    @inline(__always)
    mutating func recordName(_ name: JSONTextString) {
        if nameCount < self.names.count, let base = self.names.baseAddress {
            (base + nameCount).initialize(to: name)
        } else {
            spilledNames.append(name)
        }
        nameCount &+= 1
    }

    /// Forgets the names from `firstName` on (an object has been read).
    mutating func removeNames(from firstName: Int) {
        if nameCount > names.count {
            spilledNames.removeLast(nameCount - max(firstName, names.count))
        }
        while let last = decodedNames.last, last.position >= firstName { decodedNames.removeLast() }
        nameCount = firstName
    }

    /// `name` decoded, if it is the last name inserted and was decoded then.
    func lastDecodedName(_ name: JSONTextString) -> String? {
        guard name.shape != .ascii, let last = decodedNames.last, last.position == nameCount - 1 else { return nil }
        return last.name
    }
}

extension JSONParser {
    func sameBytes(_ a: Int, _ b: Int, count: Int) -> Bool {
        var offset = 0
        while offset < count {
            guard bytes[a + offset] == bytes[b + offset] else { return false }
            offset += 1
        }
        return true
    }
}
