import Foundation
import Testing

@testable import AuthService

/// Cheap parameters so the round-trip tests stay fast; the costs themselves are tested separately.
private let fast = Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)

@Suite("PasswordHasher")
struct PasswordHasherTests {
    @Test("the defaults are the OWASP minimum for Argon2id: m=19 MiB, t=2, p=1")
    func defaults() {
        #expect(Argon2Parameters() == Argon2Parameters(memoryKiB: 19456, iterations: 2, parallelism: 1))
    }

    @Test(
        "a hash verifies with its password",
        arguments: ["correct horse battery staple", "", "pässwörd ✓ 密码", "a\u{0}b"])
    func roundTrip(password: String) throws {
        let hasher = try PasswordHasher(parameters: fast)
        let encoded = try hasher.hash(password)
        #expect(hasher.verify(password, against: encoded))
    }

    @Test("a wrong password does not verify")
    func wrongPassword() throws {
        let hasher = try PasswordHasher(parameters: fast)
        let encoded = try hasher.hash("correct horse battery staple")
        #expect(!hasher.verify("correct horse battery stapl", against: encoded))
        #expect(!hasher.verify("Correct horse battery staple", against: encoded))
        #expect(!hasher.verify("", against: encoded))
        // Bytes after a NUL count.
        #expect(!hasher.verify("a\u{0}c", against: try hasher.hash("a\u{0}b")))
    }

    @Test("the PHC string names Argon2id v19, the parameters, a 16-byte salt and a 32-byte hash")
    func phcFormat() throws {
        let parameters = Argon2Parameters(memoryKiB: 2048, iterations: 3, parallelism: 2)
        let encoded = try PasswordHasher(parameters: parameters).hash("secret")
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        #expect(fields.count == 6)
        #expect(fields[0] == "")
        #expect(fields[1] == "argon2id")
        #expect(fields[2] == "v=19")
        #expect(fields[3] == "m=2048,t=3,p=2")
        // Unpadded base64: 16 bytes -> 22 characters, 32 bytes -> 43 characters.
        #expect(fields[4].count == 22)
        #expect(fields[5].count == 43)
    }

    @Test("the same password hashes differently each time (random salt)")
    func randomSalt() throws {
        let hasher = try PasswordHasher(parameters: fast)
        let first = try hasher.hash("secret")
        let second = try hasher.hash("secret")
        #expect(first != second)
        #expect(first.split(separator: "$")[3] != second.split(separator: "$")[3])
    }

    @Test("verification uses the parameters stored in the hash, not the hasher's")
    func otherParameters() throws {
        let old = try PasswordHasher(parameters: Argon2Parameters(memoryKiB: 2048, iterations: 2, parallelism: 1))
        let new = try PasswordHasher(parameters: fast)
        let encoded = try old.hash("secret")
        #expect(new.verify("secret", against: encoded))
        #expect(!new.verify("other", against: encoded))
    }

    @Test(
        "a malformed or foreign encoded string never verifies",
        arguments: [
            "",
            "secret",
            "$argon2id$",
            "$argon2id$v=19$m=1024,t=1,p=1$",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$",
            "$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHRzYWx0c2E$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=1024,t=0,p=1$c2FsdHNhbHRzYWx0c2E$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=1024,t=1,p=1$!!!!$aGFzaA",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ]
    )
    func malformed(encoded: String) throws {
        let hasher = try PasswordHasher(parameters: fast)
        #expect(!hasher.verify("secret", against: encoded))
    }

    @Test("a tampered, truncated or re-typed real hash does not verify")
    func tampered() throws {
        let hasher = try PasswordHasher(parameters: fast)
        let encoded = try hasher.hash("secret")
        var tag = Array(encoded)
        tag[tag.count - 2] = tag[tag.count - 2] == "A" ? "B" : "A"
        #expect(!hasher.verify("secret", against: String(tag)))
        #expect(!hasher.verify("secret", against: String(encoded.dropLast(5))))
        #expect(!hasher.verify("secret", against: encoded.replacingOccurrences(of: "$argon2id$", with: "$argon2i$")))
        #expect(!hasher.verify("secret", against: encoded + "\u{0}"))
        #expect(!hasher.verify("secret", against: " " + encoded))
    }

    @Test(
        "parameters libargon2 refuses are reported at init",
        arguments: [
            Argon2Parameters(memoryKiB: 1024, iterations: 0, parallelism: 1),
            Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 0),
            Argon2Parameters(memoryKiB: 7, iterations: 1, parallelism: 1),
        ])
    func refusedParameters(parameters: Argon2Parameters) {
        let error = #expect(throws: PasswordHasherError.self) { try PasswordHasher(parameters: parameters) }
        #expect(error?.argon2Code != nil)
    }

    @Test("the dummy hash never matches and costs about as much as a real verification")
    func dummyHash() throws {
        // Real costs (the defaults), so the comparison measures Argon2 and not noise.
        let hasher = try PasswordHasher()
        #expect(hasher.dummyHash.hasPrefix("$argon2id$v=19$m=19456,t=2,p=1$"))
        let real = try hasher.hash("correct horse battery staple")
        let clock = ContinuousClock()

        func fastest(_ body: () -> Bool) -> Duration {
            (0..<3).map { _ in clock.measure { #expect(!body()) } }.min() ?? .zero
        }
        let wrongPassword = fastest { hasher.verify("wrong password", against: real) }
        let unknownUser = fastest { hasher.verify("wrong password", against: hasher.dummyHash) }
        #expect(unknownUser > wrongPassword * 0.2, "dummy \(unknownUser) vs real \(wrongPassword)")
        #expect(unknownUser > .milliseconds(1), "the dummy verification must run Argon2")
    }
}
