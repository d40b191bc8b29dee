// The only file of the password code that speaks C: libargon2, and the kernel's random source for salts.
internal import CArgon2
import Glibc

/// Thin wrappers over libargon2's Argon2id functions.
enum Argon2 {
    /// Hashes `password` with Argon2id (version 0x13) and returns the PHC string
    /// `$argon2id$v=19$m=...,t=...,p=...$<salt>$<tag>`.
    /// - Parameters:
    ///   - password: the password; its UTF-8 bytes are hashed.
    ///   - salt: the salt (libargon2 requires at least 8 bytes).
    ///   - tagLength: length of the hash output in bytes.
    ///   - parameters: cost parameters.
    static func hashEncoded(
        password: String,
        salt: [UInt8],
        tagLength: Int,
        parameters: Argon2Parameters
    ) throws(PasswordHasherError) -> String {
        guard let saltLength = UInt32(exactly: salt.count), let outputLength = UInt32(exactly: tagLength) else {
            throw PasswordHasherError(message: "salt or tag length out of range")
        }
        let encodedLength = argon2_encodedlen(
            parameters.iterations, parameters.memoryKiB, parameters.parallelism, saltLength, outputLength, Argon2_id
        )
        // argon2_encodedlen counts the terminating NUL.
        var encoded = [CChar](repeating: 0, count: encodedLength)
        var password = password
        let rc = password.withUTF8 { passwordBytes in
            salt.withUnsafeBytes { saltBytes in
                encoded.withUnsafeMutableBufferPointer { output in
                    argon2id_hash_encoded(
                        parameters.iterations, parameters.memoryKiB, parameters.parallelism,
                        passwordBytes.baseAddress, passwordBytes.count,
                        saltBytes.baseAddress, saltBytes.count,
                        Int(outputLength),
                        output.baseAddress, output.count
                    )
                }
            }
        }
        guard rc == ARGON2_OK.rawValue else {
            throw PasswordHasherError(argon2Code: Int(rc), message: "argon2id_hash_encoded: \(errorMessage(rc))")
        }
        let end = encoded.firstIndex(of: 0) ?? encoded.endIndex
        return String(decoding: encoded[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Checks `password` against a PHC string with the parameters and salt that string names,
    /// comparing in constant time. Any failure (malformed string, other variant, refused parameters,
    /// out of memory) is a mismatch.
    static func verify(password: String, encoded: String) -> Bool {
        // A NUL would make libargon2 read a shorter string than the one stored.
        guard !encoded.utf8.contains(0) else { return false }
        var password = password
        let rc = password.withUTF8 { passwordBytes in
            encoded.withCString { encodedString in
                argon2id_verify(encodedString, passwordBytes.baseAddress, passwordBytes.count)
            }
        }
        return rc == ARGON2_OK.rawValue
    }

    /// `count` bytes from the kernel's CSPRNG, through `getentropy(3)` (the `getrandom(2)` system
    /// call; it blocks only until the pool is first initialized at boot).
    static func randomBytes(_ count: Int) throws(PasswordHasherError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            // getentropy serves at most 256 bytes per call; it fills the whole request or fails.
            let chunk = min(256, count - filled)
            let rc = bytes.withUnsafeMutableBytes { buffer -> Int32 in
                guard let base = buffer.baseAddress else { return 0 }
                return getentropy(base + filled, chunk)
            }
            guard rc == 0 else {
                let code = errno
                throw PasswordHasherError(
                    message: "getentropy failed: \(String(cString: strerror(code))) (errno \(code))")
            }
            filled += chunk
        }
        return bytes
    }

    private static func errorMessage(_ rc: Int32) -> String {
        argon2_error_message(rc).map { String(cString: $0) } ?? "error \(rc)"
    }
}
