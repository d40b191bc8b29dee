import Foundation
public import JSON

#if canImport(Glibc)
    import Glibc
#endif

/// PyJWT, a JWT library nobody on this project wrote, run from the test
/// virtual environment: it checks Gatehouse's tokens the way a third-party
/// API would (against the live JWKS, or the HS256 secret), and signs tokens
/// with keys Gatehouse never had.
///
/// It runs `Tests/Interop/verify_token.py` and `Tests/Interop/sign_token.py`
/// with `<repository>/.venv/bin/python` (made by `make venv`, which `make test`
/// runs), or with the interpreter `$GATEHOUSE_TEST_PYTHON` names. Without one
/// every call throws a `PyJWTError` that says how to make it: these tests never
/// skip. Each call starts one Python process (about 0.2 s), bounded by a
/// timeout, on a thread of its own (`blockingIO`), so a test may call it while
/// the server it tests answers on the cooperative pool.
public enum PyJWT {
    /// Where PyJWT takes the verification key from.
    public enum Key: Sendable, Equatable {
        /// A JWK Set (RFC 7517) URL: `PyJWKClient` fetches it once per call
        /// and picks the key by the token's `kid`; the key's `alg` (or, if it
        /// has none, the one its `kty`/`crv` imply) must be the token's `alg`.
        case jwks(url: String)
        /// An HMAC secret, as Gatehouse takes it (`Configuration.jwtSecret`:
        /// text, used as its UTF-8 bytes).
        case secret(String)
    }

    /// What PyJWT made of one token.
    public enum Verdict: Sendable, Equatable, CustomStringConvertible {
        /// Signature, `alg`, `iss`, `aud`, `exp`, `iat` all checked; the
        /// token's protected header and claims as PyJWT decoded them.
        case verified(header: JSONObject, claims: JSONObject)
        /// Refused: PyJWT's exception class (`ExpiredSignatureError`,
        /// `InvalidSignatureError`, `InvalidAudienceError`,
        /// `PyJWKClientError`, ...) and its message.
        case refused(errorType: String, message: String)

        /// Whether PyJWT accepted the token.
        public var isVerified: Bool {
            if case .verified = self { return true }
            return false
        }

        /// The claims of a verified token; nil if it was refused.
        public var claims: JSONObject? {
            if case .verified(_, let claims) = self { return claims }
            return nil
        }

        /// The protected header of a verified token; nil if it was refused.
        public var header: JSONObject? {
            if case .verified(let header, _) = self { return header }
            return nil
        }

        /// PyJWT's exception class for a refused token; nil if it verified.
        public var errorType: String? {
            if case .refused(let type, _) = self { return type }
            return nil
        }

        public var description: String {
            switch self {
            case .verified(let header, let claims):
                "verified: header \(JSONValue.object(header).serializedString), "
                    + "claims \(JSONValue.object(claims).serializedString)"
            case .refused(let type, let message): "refused: \(type): \(message)"
            }
        }
    }

    /// The claims PyJWT requires in every token (`options={"require": ...}`).
    public static let requiredClaims = ["exp", "iat", "iss", "sub"]

    /// Verifies each token with PyJWT (`jwt.decode` with `issuer`,
    /// `audience`, `leeway` and `options={"require": ["exp", "iat", "iss",
    /// "sub"]}`), all in one Python process.
    ///
    /// A refused token is a `Verdict`, not an error: errors are for when
    /// PyJWT could not be asked (no venv, a timeout, a crash).
    /// - Parameters:
    ///   - tokens: compact JWS tokens; at least one.
    ///   - key: the JWKS URL, or the HS256 secret.
    ///   - issuer: the `iss` every token must carry.
    ///   - audience: the `aud` to require; nil refuses any token that has an
    ///     `aud` (PyJWT's rule).
    ///   - algorithms: the `alg` values to accept, as JWS spells them
    ///     (`"HS256"`, `"RS256"`, `"ES256"`, `"EdDSA"`; `JWSAlgorithm.rawValue`).
    ///   - leeway: clock skew PyJWT allows on `exp`, `iat` and `nbf`, seconds;
    ///     0 by default, so "expired" means expired by the wall clock.
    ///   - timeout: seconds the whole call may take, JWKS fetch included.
    /// - Returns: one verdict per token, in order.
    /// - Throws: `PyJWTError`.
    public static func verify(
        tokens: [String], key: Key, issuer: String, audience: String? = nil, algorithms: [String],
        leeway: Int = 0, timeout: Double = 30
    ) async throws -> [Verdict] {
        guard !tokens.isEmpty, !algorithms.isEmpty else {
            throw PyJWTError("verify needs at least one token and one algorithm")
        }
        var arguments = [
            // Values as `--name=value`: a kid or secret may start with "-", which argparse
            // would otherwise take for an option (a thumbprint does, one time in 64).
            "--issuer=\(issuer)", "--algorithms=\(algorithms.joined(separator: ","))", "--leeway=\(leeway)",
            "--timeout", String(max(1, timeout / 2)),
        ]
        switch key {
        case .jwks(let url): arguments += ["--jwks-url", url]
        case .secret(let secret): arguments += ["--secret=\(secret)"]
        }
        if let audience { arguments += ["--audience=\(audience)"] }
        // Tokens go on standard input: no argument-length limit, none in `ps`.
        let run = try await runScript(
            "verify_token.py", arguments: arguments, input: tokens.joined(separator: "\n") + "\n", timeout: timeout)
        guard run.status == 0 || run.status == 1 else { throw run.failure("verify_token.py") }
        let lines = run.output.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count == tokens.count else {
            throw run.failure("verify_token.py", "printed \(lines.count) lines for \(tokens.count) tokens")
        }
        return try lines.map { line in
            guard let object = try? JSONValue.parse(String(line)).objectValue else {
                throw run.failure("verify_token.py", "printed a line that is not a JSON object: \(line)")
            }
            if let header = object["header"]?.objectValue, let claims = object["claims"]?.objectValue {
                return .verified(header: header, claims: claims)
            }
            guard let type = object["error_type"]?.stringValue, let message = object["error"]?.stringValue else {
                throw run.failure("verify_token.py", "printed neither claims nor an error: \(line)")
            }
            return .refused(errorType: type, message: message)
        }
    }

    /// Verifies each token against a live JWK Set; see
    /// `verify(tokens:key:issuer:audience:algorithms:leeway:timeout:)`.
    /// - Parameter jwksURL: the JWKS document, such as
    ///   `http://127.0.0.1:<port>/.well-known/jwks.json`.
    public static func verify(
        tokens: [String], jwksURL: String, issuer: String, audience: String? = nil, algorithms: [String],
        leeway: Int = 0, timeout: Double = 30
    ) async throws -> [Verdict] {
        try await verify(
            tokens: tokens, key: .jwks(url: jwksURL), issuer: issuer, audience: audience, algorithms: algorithms,
            leeway: leeway, timeout: timeout)
    }

    /// Verifies one token; see
    /// `verify(tokens:key:issuer:audience:algorithms:leeway:timeout:)`.
    public static func verify(
        _ token: String, key: Key, issuer: String, audience: String? = nil, algorithms: [String],
        leeway: Int = 0, timeout: Double = 30
    ) async throws -> Verdict {
        let verdicts = try await verify(
            tokens: [token], key: key, issuer: issuer, audience: audience, algorithms: algorithms, leeway: leeway,
            timeout: timeout)
        return verdicts[0]
    }

    /// Signs `claims` with PyJWT (`jwt.encode`) and a key made for this call
    /// alone (RS256: RSA 2048, ES256: P-256, EdDSA: Ed25519; HS256: `secret`,
    /// or 32 random bytes), so Gatehouse never had it: a forgery.
    /// - Parameters:
    ///   - claims: the payload.
    ///   - algorithm: `"HS256"`, `"RS256"`, `"ES256"` or `"EdDSA"`.
    ///   - kid: the header's `kid`; give a real Gatehouse key's to impersonate it.
    ///   - secret: HS256 only: the secret to sign with.
    ///   - timeout: seconds the call may take.
    /// - Returns: the compact token; its header is `{"alg", "kid", "typ": "JWT"}`.
    /// - Throws: `PyJWTError`.
    public static func sign(
        claims: JSONObject, algorithm: String, kid: String? = nil, secret: String? = nil, timeout: Double = 30
    ) async throws -> String {
        var arguments = ["--algorithm", algorithm]
        // `--name=value`: a kid or secret may start with "-" (see `verify`).
        if let kid { arguments += ["--kid=\(kid)"] }
        if let secret { arguments += ["--secret=\(secret)"] }
        let run = try await runScript(
            "sign_token.py", arguments: arguments, input: JSONValue.object(claims).serializedString, timeout: timeout)
        let token = run.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard run.status == 0, token.split(separator: ".", omittingEmptySubsequences: false).count == 3 else {
            throw run.failure("sign_token.py")
        }
        return token
    }

    // MARK: - Running Python

    /// The repository root, from this file's place in it (`Tests/TestSupport/`).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The interpreter the scripts run with: `$GATEHOUSE_TEST_PYTHON`, else
    /// `<repository>/.venv/bin/python`. It may not exist; calls then throw.
    public static var python: String {
        if let python = ProcessInfo.processInfo.environment["GATEHOUSE_TEST_PYTHON"], !python.isEmpty {
            return python
        }
        return repositoryRoot.appendingPathComponent(".venv/bin/python").path
    }

    /// What one script run left behind.
    struct Run {
        let status: Int32
        let output: String
        let errors: String

        /// The error for a run that did not do its job, with what it printed.
        func failure(_ script: String, _ reason: String? = nil) -> PyJWTError {
            let what = reason ?? "exited with status \(status)"
            var text = "\(script) \(what)"
            if status == 3 { text += " (PyJWT is missing from \(PyJWT.python): run `make venv`)" }
            if !errors.isEmpty { text += "\nstderr:\n\(errors)" }
            if !output.isEmpty, reason == nil { text += "\nstdout:\n\(output)" }
            return PyJWTError(text)
        }
    }

    /// Runs `Tests/Interop/<script>` with `input` on standard input, on a
    /// thread of its own; kills it (by its pid) after `timeout` seconds.
    static func runScript(_ script: String, arguments: [String], input: String, timeout: Double) async throws -> Run {
        let python = Self.python
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw PyJWTError(
                "no Python for the interop tests at \(python): run `make venv` (`make test` runs it) to create "
                    + ".venv from Tests/Interop/requirements.txt, or point GATEHOUSE_TEST_PYTHON at an interpreter "
                    + "that has those packages")
        }
        let scriptPath = repositoryRoot.appendingPathComponent("Tests/Interop").appendingPathComponent(script).path
        return try await blockingIO {
            try run(python: python, arguments: [scriptPath] + arguments, input: input, timeout: timeout)
        }
    }

    /// Runs the interpreter through `VenvTool` (files for the streams, a
    /// timeout, loopback kept off any proxy).
    private static func run(python: String, arguments: [String], input: String, timeout: Double) throws -> Run {
        do {
            let result = try VenvTool.withScratchDirectory { directory in
                try VenvTool.run(
                    python, arguments: arguments, input: input, workingDirectory: directory, timeout: timeout,
                    missingHint: "Python for the interop tests")
            }
            return Run(status: result.status, output: result.output, errors: result.errors)
        } catch let error as VenvToolError {
            throw PyJWTError(error.description)
        }
    }
}

/// PyJWT could not be asked: no interpreter, a timeout, a crash, output
/// that is not what the script prints. A token PyJWT refused is not an
/// error but a `PyJWT.Verdict`.
public struct PyJWTError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
