import Foundation
import JOSE
import JSON
import Testing

/// Asymmetric keys shared by the tests: the RFC example keys, read from the
/// vector files, and one generated key per algorithm, made once per run
/// (making an RSA key takes a while).
enum TestKeys {
    static let asymmetricAlgorithms: [JWSAlgorithm] = [.rs256, .es256, .edDSA]

    struct Unsupported: Error, CustomStringConvertible {
        let algorithm: JWSAlgorithm
        var description: String { "no test key for \(algorithm.rawValue)" }
    }

    /// The private JWK of the RFC example key for `algorithm`: RFC 7515
    /// appendix A.2 (RS256), A.3 (ES256), RFC 8037 appendix A.1 (EdDSA).
    static func rfcJWK(_ algorithm: JWSAlgorithm) throws -> JSONObject {
        switch algorithm {
        case .rs256: try #require(Vectors.load("rfc7515-a2-rs256")["jwk"]?.objectValue)
        case .es256: try #require(Vectors.load("rfc7515-a3-es256")["jwk"]?.objectValue)
        case .edDSA: try #require(Vectors.load("rfc8037-ed25519")["privateJWK"]?.objectValue)
        default: throw Unsupported(algorithm: algorithm)
        }
    }

    /// The RFC example key for `algorithm`, with its private half.
    static func rfc(_ algorithm: JWSAlgorithm) throws -> AsymmetricKey {
        try AsymmetricKey(jwk: rfcJWK(algorithm), algorithm: algorithm)
    }

    /// Made once. Keys and errors in separate dictionaries: a `Result`
    /// holding a class keeps its case in the pointer's spare bits, where
    /// LeakSanitizer (`make sanitize`) cannot see the pointer (Fuzz/README.md).
    private static let generatedKeys: (keys: [JWSAlgorithm: AsymmetricKey], errors: [JWSAlgorithm: JOSEError]) = {
        var keys: [JWSAlgorithm: AsymmetricKey] = [:]
        var errors: [JWSAlgorithm: JOSEError] = [:]
        for algorithm in asymmetricAlgorithms {
            do throws(JOSEError) {
                keys[algorithm] = try AsymmetricKey.generate(for: algorithm)
            } catch {
                errors[algorithm] = error
            }
        }
        return (keys, errors)
    }()

    /// A generated key for `algorithm` (the same one for the whole run).
    static func generated(_ algorithm: JWSAlgorithm) throws -> AsymmetricKey {
        if let error = generatedKeys.errors[algorithm] { throw error }
        guard let key = generatedKeys.keys[algorithm] else { throw Unsupported(algorithm: algorithm) }
        return key
    }

    /// A public-only copy of `key`.
    static func publicOnly(_ key: AsymmetricKey) throws -> AsymmetricKey {
        try AsymmetricKey(pem: key.publicKeyPEM(), algorithm: key.algorithm)
    }

    /// The PEM text `name` of `Vectors/pem-fixtures.json`.
    static func pem(_ name: String) throws -> String {
        try Vectors.load("pem-fixtures").string(name)
    }

    /// The DER bytes of a PEM block (its base64 body).
    static func der(ofPEM pem: String) throws -> [UInt8] {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return [UInt8](try #require(Data(base64Encoded: body)))
    }
}

/// The DER `ECDSA-Sig-Value` (RFC 3279 section 2.2.3) of the first 64 bytes
/// of `raw` read as R || S: what libcrypto and most other libraries produce,
/// and what a JWS must not carry.
func derECDSASignature(_ raw: [UInt8]) -> [UInt8] {
    func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var value = Array(bytes.drop { $0 == 0 })
        if value.isEmpty { value = [0] }
        if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
        return [0x02, UInt8(value.count)] + value
    }
    let body = integer(raw[0..<32]) + integer(raw[32..<64])
    return [0x30, UInt8(body.count)] + body
}
