import JOSE
import JSON
import Testing

@Suite("HMAC, digest, comparison, randomness")
struct PrimitiveTests {
    static let hmacAlgorithms = JWSAlgorithm.allCases.filter(\.isSymmetric)

    @Test("HMAC-SHA-2 known answers, RFC 4231", arguments: hmacAlgorithms)
    func rfc4231(algorithm: JWSAlgorithm) throws {
        let vectors = try Vectors.load("rfc4231-hmac-sha2")
        #expect(try vectors.string("source").hasPrefix("RFC 4231"))
        let cases = try #require(vectors["cases"]?.arrayValue)
        #expect(cases.count == 3)
        for entry in cases {
            let object = try #require(entry.objectValue)
            let key = try HMACKey(secret: try bytes(hex: object.string("keyHex")), algorithm: algorithm)
            let data = try bytes(hex: object.string("dataHex"))
            let expected = try object.string(algorithm.rawValue)
            let name = try object.string("name")
            // Several times: a reused, re-initialised context must give the same answer.
            for _ in 0..<3 {
                #expect(hex(key.authenticationCode(for: data)) == expected, "\(name)")
                let viaRaw = data.withUnsafeBytes { key.authenticationCode(for: $0) }
                #expect(hex(viaRaw) == expected)
            }
        }
    }

    @Test("MAC length matches the algorithm", arguments: hmacAlgorithms)
    func macLength(algorithm: JWSAlgorithm) throws {
        let key = try HMACKey(secret: [1, 2, 3], algorithm: algorithm)
        #expect(key.authenticationCode(for: []).count == algorithm.macLength)
        #expect(key.algorithm == algorithm)
    }

    @Test("an empty secret is refused")
    func emptySecret() {
        #expect(throws: JOSEError.self) { try HMACKey(secret: [], algorithm: .hs256) }
        do {
            _ = try SigningKey.hmac(secret: [])
            Issue.record("empty secret accepted")
        } catch {
            #expect(error.code == .weakKey)
        }
    }

    @Test("an HMAC key cannot be made for a public-key algorithm", arguments: [JWSAlgorithm.rs256, .es256, .edDSA])
    func hmacKeyForAsymmetricAlgorithm(algorithm: JWSAlgorithm) {
        #expect(!algorithm.isSymmetric)
        #expect(throws: JOSEError.self) { try HMACKey(secret: Array("secret".utf8), algorithm: algorithm) }
        do {
            _ = try SigningKey.hmac(secret: Array("secret".utf8), algorithm: algorithm)
            Issue.record("an HMAC SigningKey was made for \(algorithm)")
        } catch {
            #expect(error.code == .invalidKey)
        }
    }

    @Test("one key used from many tasks at once gives the right MAC every time")
    func concurrentUse() async throws {
        let key = try HMACKey(secret: Array("concurrency".utf8), algorithm: .hs256)
        let inputs = (0..<64).map { Array("message \($0)".utf8) }
        let expected = inputs.map { key.authenticationCode(for: $0) }
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var bad = 0
                    for round in 0..<2_000 {
                        let index = (round &* 7 &+ worker) % inputs.count
                        if key.authenticationCode(for: inputs[index]) != expected[index] { bad += 1 }
                    }
                    return bad
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test("SHA-256 known answers (FIPS 180-2 examples)")
    func sha256() {
        #expect(
            hex(Digest.sha256(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            hex(Digest.sha256([UInt8]()))
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("constant-time comparison")
    func comparison() {
        #expect(constantTimeEquals([], []))
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(!constantTimeEquals([], [0]))
    }

    @Test("secure random bytes")
    func randomness() {
        #expect(SecureRandom.bytes(0).isEmpty)
        let first = SecureRandom.bytes(32)
        let second = SecureRandom.bytes(32)
        #expect(first.count == 32)
        #expect(first != second)
    }

    @Test("errors describe themselves")
    func errorDescription() {
        #expect(JOSEError.expired().description == "expired: token has expired")
        let failure = JOSEError.cryptoFailure(operation: "EVP_MAC_init", opensslCode: 0x1C8_0000, reason: "x")
        #expect(failure.code == .cryptoFailure)
        #expect(failure.message.contains("0x1c80000"))
    }
}
