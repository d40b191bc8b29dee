import JOSE
import Testing

@Suite("Base64URL")
struct Base64URLTests {
    /// RFC 4648 section 10 vectors, in the URL-safe alphabet without padding.
    @Test(arguments: [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ])
    func rfc4648Vectors(text: String, encoded: String) {
        #expect(Base64URL.encode(Array(text.utf8)) == encoded)
        #expect(Base64URL.decode(encoded) == Array(text.utf8))
    }

    @Test("uses - and _ where standard base64 has + and /")
    func urlSafeAlphabet() {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.encode([0x03, 0xEF, 0xFF]) == "A-__")
    }

    @Test("round trips every length and every byte value")
    func roundTrips() {
        for length in 0...67 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ length) }
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("="))
            #expect(Base64URL.decode(encoded) == bytes, "length \(length)")
        }
        let all = (0...255).map { UInt8($0) }
        #expect(Base64URL.decode(Base64URL.encode(all)) == all)
        let random = SecureRandom.bytes(1000)
        #expect(Base64URL.decode(Base64URL.encode(random)) == random)
    }

    @Test("decodes substrings and non-contiguous collections")
    func genericInputs() {
        let text = "xxZm9vYmFyxx"
        let inner = text.dropFirst(2).dropLast(2)
        #expect(Base64URL.decode(inner) == Array("foobar".utf8))
        #expect(Base64URL.encode(Array("foobar".utf8).reversed().reversed()) == "Zm9vYmFy")
        #expect(Base64URL.encode("foobar".utf8) == "Zm9vYmFy")
    }

    @Test(
        "refuses anything but canonical, unpadded base64url",
        arguments: [
            ("Zg==", "padding"),
            ("Zg=", "padding"),
            ("Zm8=", "padding"),
            ("=", "padding alone"),
            ("+_8", "'+' from standard base64"),
            ("-/8", "'/' from standard base64"),
            ("Zm9v Yg", "space"),
            ("Zm9v\nYg", "newline"),
            (" Zm9v", "leading space"),
            ("Zm9v\t", "trailing tab"),
            ("Z", "length % 4 == 1"),
            ("Zm9vY", "length % 4 == 1"),
            ("Zh", "non-zero unused bits (canonical: Zg)"),
            ("Zm9", "non-zero unused bits (canonical: Zm8)"),
            ("AB", "non-zero unused bits (canonical: AA)"),
            ("Zm9v.", "'.'"),
            ("Zm9vé", "non-ASCII"),
            ("Zm9v\u{0}", "NUL"),
        ])
    func refusals(text: String, why: String) {
        #expect(Base64URL.decode(text) == nil, "\(why)")
    }
}
