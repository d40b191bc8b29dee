import JOSE
import JSON
import Testing

@Suite("The verifier's cache of verified asymmetric signatures")
struct SignatureCacheTests {
    static let now = TokenForge.now

    static func claims(_ index: Int = 0, expiresAt: Double = now + 600) -> JSONObject {
        ["sub": .string("user-\(index)"), "exp": .number(expiresAt), "iss": "gatehouse"]
    }

    /// A ring with one key of `algorithm`, its signer, and a verifier with a cache of `capacity`.
    static func setUp(_ algorithm: JWSAlgorithm = .es256, capacity: Int, policy: VerificationPolicy = .init()) throws
        -> (JWTSigner, JWTVerifier)
    {
        let ring = KeyRing(signingKey: .asymmetric(try TestKeys.generated(algorithm)))
        return (
            JWTSigner(keyRing: ring), JWTVerifier(keyRing: ring, policy: policy, signatureCacheCapacity: capacity)
        )
    }

    @Test("the same token again is a hit, and still gives its claims", arguments: TestKeys.asymmetricAlgorithms)
    func hit(algorithm: JWSAlgorithm) throws {
        let (signer, verifier) = try Self.setUp(algorithm, capacity: 8)
        let token = signer.sign(Self.claims())
        #expect(
            verifier.signatureCacheStatistics == SignatureCacheStatistics(capacity: 8, entries: 0, hits: 0, misses: 0))
        #expect(try verifier.verify(token, now: Self.now).subject == "user-0")
        #expect(
            verifier.signatureCacheStatistics == SignatureCacheStatistics(capacity: 8, entries: 1, hits: 0, misses: 1))
        let again = try verifier.verify(token, now: Self.now)
        #expect(again.subject == "user-0")
        #expect(again.claims == Self.claims())
        #expect(
            verifier.signatureCacheStatistics == SignatureCacheStatistics(capacity: 8, entries: 1, hits: 1, misses: 1))
        // From bytes and from a Substring too.
        let bytes = Array(token.utf8)
        _ = try bytes.withUnsafeBufferPointer { (buffer) throws(JOSEError) in
            try verifier.verify(utf8: buffer, now: Self.now)
        }
        _ = try verifier.verify(("Bearer " + token).dropFirst(7), now: Self.now)
        #expect(verifier.signatureCacheStatistics?.hits == 3)
    }

    @Test(
        "a token one byte away from a cached one is not a hit, and is refused", arguments: TestKeys.asymmetricAlgorithms
    )
    func nearMiss(algorithm: JWSAlgorithm) throws {
        let (signer, verifier) = try Self.setUp(algorithm, capacity: 8)
        let token = signer.sign(Self.claims())
        _ = try verifier.verify(token, now: Self.now)
        var parts = token.split(separator: ".").map { Array($0.utf8) }
        // One character of the signature (not the last, which carries padding bits) ...
        var signature = parts[2]
        signature[3] = signature[3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        // ... and one of the payload.
        var payload = parts[1]
        payload[5] = payload[5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        for (index, part) in [(2, signature), (1, payload)] {
            let original = parts[index]
            parts[index] = part
            let forged = parts.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
            parts[index] = original
            let before = try #require(verifier.signatureCacheStatistics)
            do {
                _ = try verifier.verify(forged, now: Self.now)
                Issue.record("a token with part \(index) changed was accepted")
            } catch {
                #expect(error.code == .badSignature || error.code == .malformed, "\(error)")
            }
            let after = try #require(verifier.signatureCacheStatistics)
            #expect(after.hits == before.hits)
            #expect(after.entries == 1)
        }
        // The original still hits.
        _ = try verifier.verify(token, now: Self.now)
        #expect(verifier.signatureCacheStatistics?.hits == 1)
    }

    @Test("a hit skips only the signature: an expired token is refused, and so is a wrong issuer")
    func claimsStillChecked() throws {
        let (signer, verifier) = try Self.setUp(capacity: 8, policy: VerificationPolicy(issuer: "gatehouse"))
        let token = signer.sign(Self.claims(expiresAt: Self.now + 60))
        _ = try verifier.verify(token, now: Self.now)
        #expect(throws: JOSEError.expired()) { try verifier.verify(token, now: Self.now + 60 + 31) }
        #expect(verifier.signatureCacheStatistics?.hits == 1)
        // Another verifier (another policy) over the same ring has its own cache.
        let strict = JWTVerifier(
            keyRing: verifier.keyRing, policy: VerificationPolicy(issuer: "someone-else"), signatureCacheCapacity: 8)
        #expect(throws: JOSEError.wrongIssuer()) { try strict.verify(token, now: Self.now) }
        #expect(strict.signatureCacheStatistics?.entries == 0)
    }

    @Test("failed verifications are never cached")
    func failuresNotCached() throws {
        let (signer, verifier) = try Self.setUp(capacity: 8, policy: VerificationPolicy(issuer: "gatehouse"))
        let stranger = JWTSigner(keyRing: KeyRing(signingKey: .asymmetric(try TestKeys.rfc(.es256))))
        // A valid signature by another key; then a valid signature whose claims fail.
        let forged = stranger.sign(Self.claims())
        var wrongIssuer = Self.claims()
        wrongIssuer["iss"] = "evil"
        let refused = signer.sign(wrongIssuer)
        let expired = signer.sign(Self.claims(expiresAt: Self.now - 3_600))
        for _ in 0..<3 {
            #expect(throws: JOSEError.self) { try verifier.verify(forged, now: Self.now) }
            #expect(throws: JOSEError.wrongIssuer()) { try verifier.verify(refused, now: Self.now) }
            #expect(throws: JOSEError.expired()) { try verifier.verify(expired, now: Self.now) }
        }
        let statistics = try #require(verifier.signatureCacheStatistics)
        #expect(statistics.entries == 0)
        #expect(statistics.hits == 0)
    }

    @Test("never more than capacity entries; the oldest go first")
    func capacityBound() throws {
        let (signer, verifier) = try Self.setUp(.edDSA, capacity: 5)
        let tokens = (0..<40).map { signer.sign(Self.claims($0)) }
        for token in tokens {
            _ = try verifier.verify(token, now: Self.now)
            #expect((verifier.signatureCacheStatistics?.entries ?? .max) <= 5)
        }
        #expect(verifier.signatureCacheStatistics?.entries == 5)
        #expect(verifier.signatureCacheStatistics?.hits == 0)
        // Every token still verifies, cached or not.
        for token in tokens { _ = try verifier.verify(token, now: Self.now) }
        #expect(verifier.signatureCacheStatistics?.entries == 5)

        // A cache of one.
        let (_, single) = try Self.setUp(.edDSA, capacity: 1)
        for token in tokens.prefix(3) { _ = try single.verify(token, now: Self.now) }
        _ = try single.verify(tokens[2], now: Self.now)
        #expect(
            single.signatureCacheStatistics == SignatureCacheStatistics(capacity: 1, entries: 1, hits: 1, misses: 3))
    }

    @Test("HMAC tokens never touch the cache; no cache for an all-HMAC ring or capacity 0")
    func onlyAsymmetric() throws {
        let hmac = try SigningKey.hmac(secret: TokenForge.secret, kid: "hs")
        let ec = SigningKey.asymmetric(try TestKeys.generated(.es256), kid: "ec")
        let mixed = KeyRing(signingKey: hmac, additionalVerificationKeys: [ec])
        let verifier = JWTVerifier(keyRing: mixed, policy: VerificationPolicy(), signatureCacheCapacity: 16)
        let token = JWTSigner(keyRing: mixed).sign(Self.claims())
        for _ in 0..<3 { _ = try verifier.verify(token, now: Self.now) }
        #expect(
            verifier.signatureCacheStatistics == SignatureCacheStatistics(capacity: 16, entries: 0, hits: 0, misses: 0))

        let hmacOnly = JWTVerifier(keyRing: KeyRing(signingKey: hmac), policy: .init(), signatureCacheCapacity: 16)
        #expect(hmacOnly.signatureCacheStatistics == nil)
        let off = JWTVerifier(keyRing: mixed, policy: .init())
        #expect(off.signatureCacheStatistics == nil)
    }

    @Test("several tasks at once: every answer right, the bound held")
    func concurrentUse() async throws {
        let (signer, verifier) = try Self.setUp(.es256, capacity: 8)
        let valid = (0..<16).map { signer.sign(Self.claims($0)) }
        let expiring = signer.sign(Self.claims(99, expiresAt: Self.now + 10))
        let forged = try AsymmetricForge(.es256).resigned(valid[0]) { signature in
            var changed = signature
            changed[10] ^= 1
            return changed
        }
        let mistakes = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var wrong = 0
                    for round in 0..<80 {
                        let index = (round &* 5 &+ worker) % valid.count
                        if (try? verifier.verify(valid[index], now: Self.now))?.subject != "user-\(index)" {
                            wrong += 1
                        }
                        if (try? verifier.verify(forged, now: Self.now)) != nil { wrong += 1 }
                        // Alternately before and after its exp.
                        let late = round % 2 == 0
                        let result = try? verifier.verify(expiring, now: late ? Self.now + 100 : Self.now)
                        if (result == nil) != late { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mistakes == 0)
        let statistics = try #require(verifier.signatureCacheStatistics)
        #expect(statistics.entries <= 8)
        #expect(statistics.hits > 0)
    }
}
