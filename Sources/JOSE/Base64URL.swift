/// Base64url without padding (RFC 7515 section 2, RFC 4648 section 5), the
/// encoding of every part of a compact JWS.
///
/// Decoding is strict, so that each byte string has exactly one accepted
/// spelling: only `A-Z a-z 0-9 - _` are allowed (no `=`, `+`, `/` or
/// whitespace), a length that leaves one character over (`count % 4 == 1`) is
/// refused, and so are unused trailing bits that are not zero.
public enum Base64URL {
    /// The unpadded base64url text of `bytes`.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        if let text = bytes.withContiguousStorageIfAvailable({ encodeToString($0) }) {
            return text
        }
        return Array(bytes).withUnsafeBufferPointer { encodeToString($0) }
    }

    /// The bytes that `text` encodes, or `nil` if `text` is not canonical,
    /// unpadded base64url.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = text.utf8
        if let bytes = utf8.withContiguousStorageIfAvailable({ decode($0) }) {
            return bytes
        }
        return Array(utf8).withUnsafeBufferPointer { decode($0) }
    }
}

// MARK: - Encoding

extension Base64URL {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    /// The number of characters that encode `byteCount` bytes without padding.
    static func encodedLength(of byteCount: Int) -> Int {
        let tail = byteCount % 3
        return byteCount / 3 * 4 + (tail == 0 ? 0 : tail + 1)
    }

    private static func encodeToString(_ input: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: encodedLength(of: input.count)) { output in
            encode(input, into: output)
        }
    }

    /// Appends the encoding of `input` to `output`.
    static func append(_ input: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
        let length = encodedLength(of: input.count)
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: length))
        output.withUnsafeMutableBufferPointer { buffer in
            _ = encode(input, into: UnsafeMutableBufferPointer(rebasing: buffer[start...]))
        }
    }

    /// Appends the encoding of `input` to `output`.
    static func append(_ input: [UInt8], to output: inout [UInt8]) {
        input.withUnsafeBufferPointer { append($0, to: &output) }
    }

    /// Writes the encoding of `input` to the start of `output`, which must
    /// hold `encodedLength(of: input.count)` bytes; returns that length.
    @discardableResult
    static func encode(_ input: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let length = encodedLength(of: input.count)
        precondition(output.count >= length, "base64url output buffer too small")
        let table = alphabet.utf8Start
        var read = 0
        var write = 0
        let whole = input.count / 3 * 3
        while read < whole {
            let value = UInt32(input[read]) << 16 | UInt32(input[read + 1]) << 8 | UInt32(input[read + 2])
            output[write] = table[Int(value >> 18)]
            output[write + 1] = table[Int(value >> 12 & 0x3F)]
            output[write + 2] = table[Int(value >> 6 & 0x3F)]
            output[write + 3] = table[Int(value & 0x3F)]
            read += 3
            write += 4
        }
        switch input.count - whole {
        case 1:
            let value = UInt32(input[read]) << 16
            output[write] = table[Int(value >> 18)]
            output[write + 1] = table[Int(value >> 12 & 0x3F)]
        case 2:
            let value = UInt32(input[read]) << 16 | UInt32(input[read + 1]) << 8
            output[write] = table[Int(value >> 18)]
            output[write + 1] = table[Int(value >> 12 & 0x3F)]
            output[write + 2] = table[Int(value >> 6 & 0x3F)]
        default:
            break
        }
        return length
    }
}

// MARK: - Decoding

extension Base64URL {
    /// Maps a byte to its 6-bit value; 0xFF for anything outside the alphabet.
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        var index: UInt8 = 0
        for byte in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8 {
            table[Int(byte)] = index
            index += 1
        }
        return table
    }()

    /// The number of bytes that `characterCount` characters decode to, or
    /// `nil` if no unpadded encoding has that length.
    static func decodedLength(of characterCount: Int) -> Int? {
        switch characterCount % 4 {
        case 0: characterCount / 4 * 3
        case 2: characterCount / 4 * 3 + 1
        case 3: characterCount / 4 * 3 + 2
        default: nil
        }
    }

    /// Decodes the sixteen characters at `input` into the twelve bytes at
    /// `output`, which must have room for fourteen (the last two are
    /// overwritten with garbage). A character outside the alphabet leaves a
    /// lane with its top bits set in `invalid`.
    ///
    /// SSE2-level vector operations only (the baseline of x86-64): classify
    /// each character by range, add the range's offset, then merge the 6-bit
    /// values pairwise into 12 and 24 bits per lane.
    @inline(__always)
    private static func decode16(
        _ input: UnsafePointer<UInt8>, into output: UnsafeMutablePointer<UInt8>, invalid: inout SIMD16<UInt8>
    ) {
        typealias Bytes = SIMD16<UInt8>
        // (Comparisons take a vector on both sides: the vector-with-scalar
        // forms compile to a loop over the lanes.)
        let characters = UnsafeRawPointer(input).loadUnaligned(as: Bytes.self)
        // A-Z -> 0-25, a-z -> 26-51, 0-9 -> 52-61, '-' -> 62, '_' -> 63; anything else 0xFF.
        var values = Bytes(repeating: 0xFF)
        let upper = characters &- Bytes(repeating: 65)
        values.replace(with: upper, where: upper .< Bytes(repeating: 26))
        let lower = characters &- Bytes(repeating: 97)
        values.replace(with: lower &+ Bytes(repeating: 26), where: lower .< Bytes(repeating: 26))
        let digit = characters &- Bytes(repeating: 48)
        values.replace(with: digit &+ Bytes(repeating: 52), where: digit .< Bytes(repeating: 10))
        values.replace(with: Bytes(repeating: 62), where: characters .== Bytes(repeating: 45))
        values.replace(with: Bytes(repeating: 63), where: characters .== Bytes(repeating: 95))
        invalid |= values
        // Pairs of 6-bit values (first in the low byte) into 12 bits ...
        let pairs = unsafeBitCast(values, to: SIMD8<UInt16>.self)
        let twelve = ((pairs & SIMD8(repeating: 0x3F)) &<< SIMD8(repeating: 6)) | (pairs &>> SIMD8(repeating: 8))
        // ... and pairs of those into 24 bits, the first character highest.
        let quads = unsafeBitCast(twelve, to: SIMD4<UInt32>.self)
        let groups = ((quads & SIMD4(repeating: 0xFFF)) &<< SIMD4(repeating: 12)) | (quads &>> SIMD4(repeating: 16))
        // ... and pairs of those into 48 bits.
        let halves = unsafeBitCast(groups, to: SIMD2<UInt64>.self)
        let sixes =
            ((halves & SIMD2(repeating: 0xFF_FFFF)) &<< SIMD2(repeating: 24)) | (halves &>> SIMD2(repeating: 32))
        // Each half's six bytes, big-endian, then two that the next store overwrites.
        let raw = UnsafeMutableRawPointer(output)
        raw.storeBytes(of: (sixes[0] &<< 16).bigEndian, as: UInt64.self)
        (raw + 6).storeBytes(of: (sixes[1] &<< 16).bigEndian, as: UInt64.self)
    }

    /// Whether `input` is strict base64url, without decoding it.
    static func isValid(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
        guard decodedLength(of: input.count) != nil else { return false }
        return decodeTable.withUnsafeBufferPointer { table in
            var invalid: UInt8 = 0
            for byte in input { invalid |= table[Int(byte)] }
            switch input.count % 4 {
            case 2: if table[Int(input[input.count - 1])] & 0x0F != 0 { return false }
            case 3: if table[Int(input[input.count - 1])] & 0x03 != 0 { return false }
            default: break
            }
            return invalid & 0xC0 == 0
        }
    }

    /// The bytes `input` encodes, or `nil` if it is not strict base64url.
    static func decode(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let length = decodedLength(of: input.count) else { return nil }
        var valid = false
        let bytes = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            valid = decode(input, into: buffer)
            initialized = valid ? length : 0
        }
        return valid ? bytes : nil
    }

    /// Decodes `input` into the start of `output`, which must hold
    /// `decodedLength(of: input.count)` bytes. Returns `false` if `input` is
    /// not strict base64url (the output is then garbage).
    static func decode(_ input: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        guard let length = decodedLength(of: input.count) else { return false }
        precondition(output.count >= length, "base64url output buffer too small")
        return decodeTable.withUnsafeBufferPointer { table in
            // Any character outside the alphabet maps to 0xFF; OR-ing every
            // value together and checking the top bits once keeps the loop
            // free of branches.
            var invalid: UInt8 = 0
            var read = 0
            var write = 0
            let whole = input.count / 4 * 4
            if let source = input.baseAddress, let target = output.baseAddress {
                // Sixteen characters at a time into twelve bytes, while the
                // output has room for the four-byte stores (see `decode16`).
                var invalidLanes = SIMD16<UInt8>()
                while whole - read >= 16, output.count - write >= 16 {
                    decode16(source + read, into: target + write, invalid: &invalidLanes)
                    read += 16
                    write += 12
                }
                if invalidLanes.max() & 0xC0 != 0 { invalid = 0xFF }
            }
            while read < whole {
                let a = table[Int(input[read])]
                let b = table[Int(input[read + 1])]
                let c = table[Int(input[read + 2])]
                let d = table[Int(input[read + 3])]
                invalid |= a | b | c | d
                let value = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                output[write] = UInt8(truncatingIfNeeded: value >> 16)
                output[write + 1] = UInt8(truncatingIfNeeded: value >> 8)
                output[write + 2] = UInt8(truncatingIfNeeded: value)
                read += 4
                write += 3
            }
            switch input.count - whole {
            case 2:
                let a = table[Int(input[read])]
                let b = table[Int(input[read + 1])]
                invalid |= a | b
                // The last character carries 4 unused bits; they must be zero.
                if b & 0x0F != 0 { invalid |= 0xFF }
                output[write] = a << 2 | b >> 4
            case 3:
                let a = table[Int(input[read])]
                let b = table[Int(input[read + 1])]
                let c = table[Int(input[read + 2])]
                invalid |= a | b | c
                // The last character carries 2 unused bits; they must be zero.
                if c & 0x03 != 0 { invalid |= 0xFF }
                output[write] = a << 2 | b >> 4
                output[write + 1] = b << 4 | c >> 2
            default:
                break
            }
            return invalid & 0xC0 == 0
        }
    }
}
