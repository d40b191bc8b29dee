import JOSE
import JSON
import Testing

/// One crafted token per verification rule. Each token is built by
/// base64url-encoding handwritten JSON and MACing it with the test key, so
/// that only the rule in its name is broken.
struct TokenCase: Sendable, CustomTestStringConvertible {
    let name: String
    /// The refusal expected, or `nil` for a token that must pass.
    let expected: JOSEError.Code?
    var policy = VerificationPolicy()
    let make: @Sendable (TokenForge) throws -> String

    var testDescription: String { name }

    init(
        _ name: String, _ expected: JOSEError.Code?, policy: VerificationPolicy = VerificationPolicy(),
        _ make: @escaping @Sendable (TokenForge) throws -> String
    ) {
        self.name = name
        self.expected = expected
        self.policy = policy
        self.make = make
    }
}

/// Claims text valid at `TokenForge.now` plus or minus what a row changes.
private func claims(_ members: String) -> String { "{" + members + "}" }
private let exp = #""exp":1700000600"#
private let standardHeader = #"{"alg":"HS256","typ":"JWT","kid":"test-key"}"#

struct ForgeFailure: Error, CustomStringConvertible {
    let description: String
}

extension TokenForge {
    func replacingPart(_ index: Int, of token: String, with part: String) -> String {
        var parts = self.parts(of: token)
        parts[index] = part
        return parts.joined(separator: ".")
    }

    /// `part` with the `=` padding standard base64 would add; throws if it needs none.
    func padded(_ part: String) throws -> String {
        let missing = (4 - part.utf8.count % 4) % 4
        guard missing > 0 else { throw ForgeFailure(description: "\(part) needs no padding") }
        return part + String(repeating: "=", count: missing)
    }

    /// header.payload with a MAC of `macLength` bytes (a truncated or extended real MAC).
    func token(withMACLength macLength: Int) throws -> String {
        let good = try token()
        let parts = self.parts(of: good)
        let signingInput = parts[0] + "." + parts[1]
        let mac = try HMACKey(secret: Self.secret, algorithm: .hs512).authenticationCode(for: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(mac.prefix(macLength))
    }
}

@Suite("Refused tokens")
struct RefusedTokenTests {
    static let refusals: [TokenCase] = [
        // Size
        TokenCase("longer than 8 KiB", .tokenTooLarge) { forge in
            try forge.token(payload: claims(exp + #","pad":""# + String(repeating: "x", count: 8_192) + "\""))
        },
        TokenCase("longer than a configured limit", .tokenTooLarge, policy: VerificationPolicy(maxTokenBytes: 64)) {
            try $0.token()
        },
        TokenCase("too large is checked before shape", .tokenTooLarge) { _ in String(repeating: "!", count: 9_000) },

        // Shape
        TokenCase("two parts", .malformed) { forge in
            let parts = forge.parts(of: try forge.token())
            return parts[0] + "." + parts[1]
        },
        TokenCase("one part", .malformed) { forge in forge.parts(of: try forge.token())[0] },
        TokenCase("four parts", .malformed) { try $0.token() + ".AAAA" },
        TokenCase("four parts, the last empty", .malformed) { try $0.token() + "." },
        TokenCase("empty signature", .malformed) { forge in forge.replacingPart(2, of: try forge.token(), with: "") },
        TokenCase("unsigned alg none (empty signature)", .malformed) { forge in
            forge.replacingPart(2, of: try forge.token(header: #"{"alg":"none"}"#), with: "")
        },
        TokenCase("empty header", .malformed) { forge in forge.replacingPart(0, of: try forge.token(), with: "") },
        TokenCase("empty payload", .malformed) { forge in forge.replacingPart(1, of: try forge.token(), with: "") },
        TokenCase("padded base64 signature", .malformed) { forge in
            let token = try forge.token()
            return forge.replacingPart(2, of: token, with: try forge.padded(forge.parts(of: token)[2]))
        },
        TokenCase("padded base64 payload", .malformed) { forge in
            // 25 bytes of JSON: 34 characters, which standard base64 pads to 36.
            let token = try forge.token(payload: claims(exp + #","ab":1"#))
            return forge.replacingPart(1, of: token, with: try forge.padded(forge.parts(of: token)[1]))
        },
        TokenCase("'+' (standard base64) in the signature", .malformed) { forge in
            let token = try forge.token()
            return forge.replacingPart(2, of: token, with: "+" + forge.parts(of: token)[2].dropFirst())
        },
        TokenCase("'/' (standard base64) in the header", .malformed) { forge in
            let token = try forge.token()
            return forge.replacingPart(0, of: token, with: "/" + forge.parts(of: token)[0].dropFirst())
        },
        TokenCase("space inside the payload", .malformed) { forge in
            let token = try forge.token()
            let payload = forge.parts(of: token)[1]
            return forge.replacingPart(1, of: token, with: payload.prefix(4) + " " + payload.dropFirst(4))
        },
        TokenCase("trailing newline", .malformed) { try $0.token() + "\n" },
        TokenCase("non-canonical trailing bits in the signature", .malformed) { forge in
            let token = try forge.token()
            // 32 bytes -> 43 characters; the last one carries 2 unused bits.
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
            var signature = Array(forge.parts(of: token)[2].utf8)
            let value = try #require(alphabet.firstIndex(of: signature[signature.count - 1]))
            signature[signature.count - 1] = alphabet[value | 1]
            return forge.replacingPart(2, of: token, with: String(decoding: signature, as: UTF8.self))
        },
        TokenCase("signature length % 4 == 1", .malformed) { forge in
            let token = try forge.token()
            return forge.replacingPart(2, of: token, with: forge.parts(of: token)[2] + "AA")
        },

        // Header
        TokenCase("header is an array", .malformed) { try $0.token(header: #"["HS256"]"#) },
        TokenCase("header is not JSON", .malformed) { try $0.token(header: "alg=HS256") },
        TokenCase("header has a duplicate alg", .malformed) {
            try $0.token(header: #"{"alg":"HS256","alg":"HS256","kid":"test-key"}"#)
        },
        TokenCase("header over 1 KiB (hundreds of members, parsed before the signature)", .malformed) { forge in
            let members = (0..<200).map { #""x\#($0)":0"# }.joined(separator: ",")
            return try forge.token(header: #"{"alg":"HS256","kid":"test-key","# + members + "}")
        },
        TokenCase("header without alg", .malformed) { try $0.token(header: #"{"typ":"JWT","kid":"test-key"}"#) },
        TokenCase("alg is not a string", .malformed) { try $0.token(header: #"{"alg":256,"kid":"test-key"}"#) },
        TokenCase("typ is not a string", .malformed) { try $0.token(header: #"{"alg":"HS256","typ":1}"#) },
        TokenCase("crit header", .criticalHeader) {
            try $0.token(header: #"{"alg":"HS256","kid":"test-key","crit":["exp"],"exp":1}"#)
        },
        TokenCase("empty crit header", .criticalHeader) { try $0.token(header: #"{"alg":"HS256","crit":[]}"#) },

        // Key and algorithm
        TokenCase("alg none (MACed anyway)", .algorithmMismatch) {
            try $0.token(header: #"{"alg":"none","typ":"JWT"}"#)
        },
        TokenCase("alg None", .algorithmMismatch) { try $0.token(header: #"{"alg":"None","typ":"JWT"}"#) },
        TokenCase("alg hs256 in lower case", .algorithmMismatch) { try $0.token(header: #"{"alg":"hs256"}"#) },
        TokenCase("HS512 token against an HS256 key", .algorithmMismatch) {
            try $0.token(header: #"{"alg":"HS512","typ":"JWT","kid":"test-key"}"#, algorithm: .hs512)
        },
        TokenCase("unknown kid", .unknownKey) { try $0.token(header: #"{"alg":"HS256","kid":"other-key"}"#) },
        TokenCase("kid is not a string", .malformed) { try $0.token(header: #"{"alg":"HS256","kid":7}"#) },
        TokenCase("unknown kid is reported before alg none", .unknownKey) {
            try $0.token(header: #"{"alg":"none","kid":"other-key"}"#)
        },

        // Signature
        TokenCase("MAC from another secret", .badSignature) { try $0.token(secret: TokenForge.otherSecret) },
        TokenCase("signature too short (31 bytes)", .badSignature) { try $0.token(withMACLength: 31) },
        TokenCase("signature too long (HS512 length for HS256)", .badSignature) { try $0.token(withMACLength: 64) },
        TokenCase("signature of one byte", .badSignature) { try $0.token(withMACLength: 1) },
        TokenCase("bad signature is reported before claims", .badSignature) {
            try $0.token(payload: claims(#""exp":1"#), secret: TokenForge.otherSecret)
        },
        TokenCase("bad signature is reported before the payload is parsed", .badSignature) {
            try $0.token(payload: "not json", secret: TokenForge.otherSecret)
        },

        // Payload
        TokenCase("payload is an array", .malformed) { try $0.token(payload: "[" + claims(exp) + "]") },
        TokenCase("payload is a string", .malformed) { try $0.token(payload: #""hello""#) },
        TokenCase("payload is not JSON", .malformed) { try $0.token(payload: "exp=1700000600") },
        TokenCase("payload has duplicate keys", .malformed) {
            try $0.token(payload: claims(exp + #","sub":"a","sub":"b""#))
        },

        // Claims
        TokenCase("missing exp", .missingClaim) { try $0.token(payload: claims(#""sub":"user-1""#)) },
        TokenCase("exp is a string", .invalidClaim) { try $0.token(payload: claims(#""exp":"1700000600""#)) },
        TokenCase("exp is null", .invalidClaim) { try $0.token(payload: claims(#""exp":null"#)) },
        TokenCase("nbf is a string", .invalidClaim) { try $0.token(payload: claims(exp + #","nbf":"1699999000""#)) },
        TokenCase("iat is a string", .invalidClaim) { try $0.token(payload: claims(exp + #","iat":"1700000000""#)) },
        TokenCase("expired beyond the 30 s leeway", .expired) { try $0.token(payload: claims(#""exp":1699999969"#)) },
        TokenCase("expired, no leeway", .expired, policy: VerificationPolicy(leeway: 0)) {
            try $0.token(payload: claims(#""exp":1699999999"#))
        },
        TokenCase("nbf in the future beyond the leeway", .notYetValid) {
            try $0.token(payload: claims(exp + #","nbf":1700000031"#))
        },
        TokenCase("iat in the future beyond the leeway", .issuedInFuture) {
            try $0.token(payload: claims(exp + #","iat":1700000031"#))
        },
        TokenCase("wrong iss", .wrongIssuer, policy: VerificationPolicy(issuer: "gatehouse")) {
            try $0.token(payload: claims(exp + #","iss":"evil""#))
        },
        TokenCase(
            "missing iss when an issuer is required", .wrongIssuer, policy: VerificationPolicy(issuer: "gatehouse")
        ) {
            try $0.token(payload: claims(exp))
        },
        TokenCase("iss is not a string", .wrongIssuer, policy: VerificationPolicy(issuer: "gatehouse")) {
            try $0.token(payload: claims(exp + #","iss":["gatehouse"]"#))
        },
        TokenCase("wrong aud", .wrongAudience, policy: VerificationPolicy(audience: "api")) {
            try $0.token(payload: claims(exp + #","aud":"web""#))
        },
        TokenCase("aud array without the audience", .wrongAudience, policy: VerificationPolicy(audience: "api")) {
            try $0.token(payload: claims(exp + #","aud":["web","admin"]"#))
        },
        TokenCase(
            "missing aud when an audience is required", .wrongAudience, policy: VerificationPolicy(audience: "api")
        ) {
            try $0.token(payload: claims(exp))
        },
        TokenCase("aud is a number", .invalidClaim, policy: VerificationPolicy(audience: "api")) {
            try $0.token(payload: claims(exp + #","aud":1"#))
        },
        TokenCase("aud array holds a non-string", .invalidClaim, policy: VerificationPolicy(audience: "api")) {
            try $0.token(payload: claims(exp + #","aud":["api",1]"#))
        },
    ]

    static let acceptances: [TokenCase] = [
        TokenCase("the standard header and claims", nil) { try $0.token() },
        TokenCase("exp 20 s in the past (within the leeway)", nil) {
            try $0.token(payload: claims(#""exp":1699999980"#))
        },
        TokenCase("exp exactly 30 s in the past (the leeway's edge)", nil) {
            try $0.token(payload: claims(#""exp":1699999970"#))
        },
        TokenCase("nbf 20 s in the future (within the leeway)", nil) {
            try $0.token(payload: claims(exp + #","nbf":1700000020"#))
        },
        TokenCase("iat 20 s in the future (within the leeway)", nil) {
            try $0.token(payload: claims(exp + #","iat":1700000020"#))
        },
        TokenCase("exp and nbf with fractions", nil) {
            try $0.token(payload: claims(#""exp":1700000000.5,"nbf":1.5e9"#))
        },
        TokenCase("no kid: the signing key", nil) { try $0.token(header: #"{"alg":"HS256"}"#) },
        TokenCase("any typ string", nil) { try $0.token(header: #"{"typ":"at+jwt","alg":"HS256","kid":"test-key"}"#) },
        TokenCase("header with whitespace and escapes", nil) {
            try $0.token(header: "{ \"alg\" : \"HS\\u0032\\u00356\",\r\n \"kid\":\"test-key\" }")
        },
        TokenCase("matching iss", nil, policy: VerificationPolicy(issuer: "gatehouse")) {
            try $0.token(payload: claims(exp + #","iss":"gatehouse""#))
        },
        TokenCase("aud string", nil, policy: VerificationPolicy(audience: "api")) {
            try $0.token(payload: claims(exp + #","aud":"api""#))
        },
        TokenCase("aud array containing the audience", nil, policy: VerificationPolicy(audience: "api")) {
            try $0.token(payload: claims(exp + #","aud":["web","api"]"#))
        },
        TokenCase("aud ignored when no audience is required", nil) {
            try $0.token(payload: claims(exp + #","aud":7"#))
        },
        TokenCase("unknown header members are ignored", nil) {
            try $0.token(header: #"{"alg":"HS256","kid":"test-key","x5u":"https://evil.example/"}"#)
        },
    ]

    @Test(arguments: refusals)
    func refused(_ row: TokenCase) throws {
        let forge = try TokenForge()
        let token = try row.make(forge)
        let verifier = JWTVerifier(keyRing: forge.ring, policy: row.policy)
        do {
            let verified = try verifier.verify(token, now: TokenForge.now)
            Issue.record("accepted, claims \(verified.claims)")
        } catch {
            #expect(error.code == row.expected, "\(error)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test(arguments: acceptances)
    func accepted(_ row: TokenCase) throws {
        let forge = try TokenForge()
        let token = try row.make(forge)
        let verifier = JWTVerifier(keyRing: forge.ring, policy: row.policy)
        let verified = try verifier.verify(token, now: TokenForge.now)
        #expect(verified.expiresAt > 0)
    }

    @Test("a token exactly maxTokenBytes long passes, one byte more does not")
    func sizeBoundary() throws {
        let forge = try TokenForge()
        let token = try forge.token()
        let exact = JWTVerifier(keyRing: forge.ring, policy: VerificationPolicy(maxTokenBytes: token.utf8.count))
        #expect(try exact.verify(token, now: TokenForge.now).subject == "user-1")
        let under = JWTVerifier(keyRing: forge.ring, policy: VerificationPolicy(maxTokenBytes: token.utf8.count - 1))
        #expect(throws: JOSEError.tokenTooLarge(limit: token.utf8.count - 1)) {
            try under.verify(token, now: TokenForge.now)
        }
    }

    @Test("every refusal code but the key-loading ones and cryptoFailure has a row")
    func coverage() {
        let covered = Set(Self.refusals.compactMap(\.expected))
        let all = Set(JOSEError.Code.allCases).subtracting([.weakKey, .invalidKey, .cryptoFailure])
        #expect(covered == all)
    }
}
