// JOSEBenchmark: HS256 sign and verify per second on one core (`make bench`
// pins it with taskset), against the ceiling: one raw HMAC-SHA256 over the
// same bytes with a libcrypto context keyed once and re-initialised per MAC;
// then sign and verify for each algorithm (jwt_sign_<alg>, jwt_verify_<alg>
// for hs256, rs256, es256, eddsa), and verify with the signature cache on
// (capacity 1024) for the same token again and again (jwt_verify_cached_<alg>
// for rs256, es256, eddsa).
//
// The token is shaped like the access tokens AuthService's TokenService
// issues: header {"alg":"HS256","typ":"JWT","kid":<thumbprint>}, claims iss,
// sub (a UUID), user, iat, exp, jti, sid, signed with a 43-character base64url
// secret like the one Gatehouse generates.
//
// Output, one line per measurement:
//   jose <name> ops_per_s=<n> ns_per_op=<n>
// then `jose verify_vs_raw_hmac ratio=<x>`. Lines starting with `#` are notes.
//
// Settings (environment): JOSE_BENCH_SECONDS, seconds per measurement
// (default 2); every measurement also stops after 50 million operations.
// JOSE_BENCH_ONLY=<name> skips every other measurement (for a profiler).

import CCrypto
import Glibc
import JOSE
import JSON

// MARK: - Timing

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func fail(_ message: String) -> Never {
    print("JOSEBenchmark: \(message)")
    exit(1)
}

let secondsPerMeasurement: Double = {
    guard let raw = getenv("JOSE_BENCH_SECONDS") else { return 2 }
    guard let value = Double(String(cString: raw)), value > 0, value <= 60 else {
        fail("JOSE_BENCH_SECONDS must be a number of seconds from 0 to 60")
    }
    return value
}()
let only: String? = getenv("JOSE_BENCH_ONLY").map { String(cString: $0) }
let maxOperations = 50_000_000
let batch = 1_000

/// Whatever each operation produced, folded together and printed at the end,
/// so the optimiser cannot drop the work.
var sink: UInt64 = 0

/// Runs `operation` in batches of `batch` until `secondsPerMeasurement` have
/// passed (or `maxOperations` ran), after a short warm-up; prints and returns
/// nanoseconds per operation.
@MainActor @discardableResult
func measure(_ name: String, batch: Int = batch, _ operation: (Int) -> UInt64) -> Double {
    if let only, only != name { return .nan }
    let warmUpEnd = monotonicNanoseconds() + 100_000_000
    while monotonicNanoseconds() < warmUpEnd { sink &+= operation(batch) }

    let budget = UInt64(secondsPerMeasurement * 1e9)
    let start = monotonicNanoseconds()
    var elapsed: UInt64 = 0
    var operations = 0
    while elapsed < budget, operations < maxOperations {
        sink &+= operation(batch)
        operations += batch
        elapsed = monotonicNanoseconds() - start
    }
    let nanosecondsPerOperation = Double(elapsed) / Double(operations)
    let perSecond = Int((1e9 / nanosecondsPerOperation).rounded())
    print("jose \(name) ops_per_s=\(perSecond) ns_per_op=\(formatted(nanosecondsPerOperation))")
    return nanosecondsPerOperation
}

func formatted(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

// MARK: - A Gatehouse-shaped token

/// A random (version 4) UUID in its usual text form, as Gatehouse's user ids.
func uuid() -> String {
    var bytes = SecureRandom.bytes(16)
    bytes[6] = (bytes[6] & 0x0F) | 0x40
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    let digits = Array("0123456789abcdef")
    var text = ""
    for (index, byte) in bytes.enumerated() {
        if [4, 6, 8, 10].contains(index) { text.append("-") }
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return text
}

// The generated secret's text is the key (SecretFile, Application.swift).
let secret = Array(Base64URL.encode(SecureRandom.bytes(32)).utf8)
let signingKey: SigningKey
do {
    signingKey = try SigningKey.hmac(secret: secret, algorithm: .hs256)
} catch {
    fail("could not make the key: \(error)")
}
let keyRing = KeyRing(signingKey: signingKey)
let signer = JWTSigner(keyRing: keyRing)
let verifier = JWTVerifier(keyRing: keyRing, policy: VerificationPolicy(issuer: "gatehouse", leeway: 30))

let now = Double(time(nil))
let claims: JSONObject = [
    "iss": "gatehouse",
    "sub": .string(uuid()),
    "user": "benchuser",
    "iat": .number(now),
    "exp": .number(now + 3600),
    "jti": .string(Base64URL.encode(SecureRandom.bytes(16))),
    "sid": .string(Base64URL.encode(SecureRandom.bytes(16))),
]
let token = signer.sign(claims)
// TokenService verifies the Substring that follows `Bearer `.
let tokenSlice = Substring(token)
guard let lastDot = token.utf8.lastIndex(of: UInt8(ascii: ".")) else { fail("signed token has no dot") }
let signingInput = Array(token.utf8[..<lastDot])

do {
    _ = try verifier.verify(tokenSlice, now: now)
} catch {
    fail("the benchmark token does not verify: \(error)")
}
print("# token_bytes=\(token.utf8.count) signing_input_bytes=\(signingInput.count) seconds=\(secondsPerMeasurement)")

// MARK: - The ceiling: a raw, reused EVP_MAC_CTX

/// HMAC-SHA256 with one `EVP_MAC_CTX`, keyed once and re-initialised with a
/// NULL key per MAC (no algorithm fetch, no key schedule, no pool, no lock).
final class RawHMAC {
    private let context: OpaquePointer

    init(key: [UInt8]) {
        guard let mac = EVP_MAC_fetch(nil, OSSL_MAC_NAME_HMAC, nil) else { fail("EVP_MAC_fetch(HMAC) failed") }
        defer { EVP_MAC_free(mac) }
        guard let context = EVP_MAC_CTX_new(mac) else { fail("EVP_MAC_CTX_new failed") }
        var params = [CCrypto_param_utf8(OSSL_MAC_PARAM_DIGEST, "SHA256"), CCrypto_param_end()]
        let rc = key.withUnsafeBufferPointer { key in
            params.withUnsafeMutableBufferPointer { params in
                EVP_MAC_init(context, key.baseAddress, key.count, params.baseAddress)
            }
        }
        guard rc == 1 else {
            EVP_MAC_CTX_free(context)
            fail("EVP_MAC_init with the key failed")
        }
        self.context = context
    }

    deinit { EVP_MAC_CTX_free(context) }

    /// The MAC of `input`, for the cross-check with `HMACKey`.
    func mac(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { output, initialized in
            var written = 0
            guard EVP_MAC_init(context, nil, 0, nil) == 1,
                EVP_MAC_update(context, input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count) == 1,
                EVP_MAC_final(context, output.baseAddress, &written, 32) == 1, written == 32
            else { fail("raw HMAC failed") }
            initialized = 32
        }
    }

    /// MACs `input` `count` times; returns the first byte of the last MAC.
    func run(_ input: UnsafeRawBufferPointer, count: Int) -> UInt64 {
        var output = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &output) { output in
            let bytes = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
            let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
            for _ in 0..<count {
                var written = 0
                guard EVP_MAC_init(context, nil, 0, nil) == 1,
                    EVP_MAC_update(context, bytes, input.count) == 1,
                    EVP_MAC_final(context, out, &written, 32) == 1, written == 32
                else { fail("raw HMAC failed") }
            }
            return UInt64(output[0])
        }
    }
}

let raw = RawHMAC(key: secret)
let hmacKey: HMACKey
do {
    hmacKey = try HMACKey(secret: secret, algorithm: .hs256)
} catch {
    fail("could not make the HMAC key: \(error)")
}
// Both paths must compute the same MAC, or the comparison means nothing.
signingInput.withUnsafeBytes { input in
    guard raw.mac(input) == hmacKey.authenticationCode(for: input) else {
        fail("the raw HMAC and HMACKey disagree")
    }
}

// MARK: - Measurements

let rawNanoseconds = signingInput.withUnsafeBytes { input in
    measure("raw_hmac_sha256") { count in raw.run(input, count: count) }
}

_ = signingInput.withUnsafeBytes { input in
    measure("hmackey_authentication_code") { count in
        var folded: UInt64 = 0
        for _ in 0..<count { folded &+= UInt64(hmacKey.authenticationCode(for: input)[0]) }
        return folded
    }
}

measure("jwt_sign") { count in
    var folded: UInt64 = 0
    for _ in 0..<count { folded &+= UInt64(signer.sign(claims).utf8.count) }
    return folded
}

let verifyNanoseconds = measure("jwt_verify") { count in
    var folded: UInt64 = 0
    for _ in 0..<count {
        do {
            folded &+= UInt64(try verifier.verify(tokenSlice, now: now).expiresAt)
        } catch {
            fail("verify failed: \(error)")
        }
    }
    return folded
}

if only == nil {
    let ratio = Int((verifyNanoseconds / rawNanoseconds * 100).rounded())
    print("jose verify_vs_raw_hmac ratio=\(ratio / 100).\(ratio % 100 < 10 ? "0" : "")\(ratio % 100)")
}

// MARK: - Per algorithm

/// Sign, verify, and (for the public-key algorithms) verify with the
/// signature cache on, for a ring whose signing key is `key`. Batches are
/// smaller for the slow operations (an RSA signature takes about a millisecond).
@MainActor
func measureAlgorithm(_ name: String, key: SigningKey, batch: Int) {
    let ring = KeyRing(signingKey: key)
    let signer = JWTSigner(keyRing: ring)
    let policy = VerificationPolicy(issuer: "gatehouse", leeway: 30)
    let verifier = JWTVerifier(keyRing: ring, policy: policy)
    let token = Substring(signer.sign(claims))
    do {
        _ = try verifier.verify(token, now: now)
    } catch {
        fail("the \(name) benchmark token does not verify: \(error)")
    }
    measure("jwt_sign_\(name)", batch: batch) { count in
        var folded: UInt64 = 0
        for _ in 0..<count { folded &+= UInt64(signer.sign(claims).utf8.count) }
        return folded
    }
    let verify = { (verifier: JWTVerifier, count: Int) -> UInt64 in
        var folded: UInt64 = 0
        for _ in 0..<count {
            do {
                folded &+= UInt64(try verifier.verify(token, now: now).expiresAt)
            } catch {
                fail("\(name) verify failed: \(error)")
            }
        }
        return folded
    }
    measure("jwt_verify_\(name)", batch: batch) { verify(verifier, $0) }
    if !key.isSymmetric {
        let cached = JWTVerifier(keyRing: ring, policy: policy, signatureCacheCapacity: 1024)
        measure("jwt_verify_cached_\(name)") { verify(cached, $0) }
    }
}

measureAlgorithm("hs256", key: signingKey, batch: batch)
for (name, algorithm, batch) in [("rs256", JWSAlgorithm.rs256, 20), ("es256", .es256, 100), ("eddsa", .edDSA, 100)] {
    do {
        measureAlgorithm(name, key: .asymmetric(try AsymmetricKey.generate(for: algorithm)), batch: batch)
    } catch {
        fail("could not make the \(name) key: \(error)")
    }
}
print("# sink=\(sink)")
