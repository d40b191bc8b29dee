import Foundation
import JOSE

/// The HS256 secret generated on first start and kept in the data
/// directory, so tokens stay valid across restarts.
enum SecretFile {
    static let name = "jwt-secret"

    /// Reads `<directory>/jwt-secret`, creating it (mode 0600, 256 random bits
    /// as base64url text) when it does not exist. The text itself is the key,
    /// so `GATEHOUSE_JWT_SECRET=$(cat data/jwt-secret)` names the same key.
    static func loadOrCreate(in directory: String) throws(ConfigurationError) -> String {
        let path = (directory as NSString).appendingPathComponent(name)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            let secret = Base64URL.encode(SecureRandom.bytes(32))
            let bytes = Array((secret + "\n").utf8)
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            let synced = fsync(descriptor)
            close(descriptor)
            guard written == bytes.count, synced == 0 else {
                unlink(path)
                throw ConfigurationError("could not write \(path): \(String(cString: strerror(errno)))")
            }
            return secret
        }
        guard errno == EEXIST else {
            throw ConfigurationError("could not create \(path): \(String(cString: strerror(errno)))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("could not read \(path)")
        }
        let secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard secret.utf8.count >= 32 else {
            throw ConfigurationError(
                "\(path) holds a secret of \(secret.utf8.count) bytes; at least 32 are needed. "
                    + "Delete it to have a new one generated (every issued token becomes invalid).")
        }
        return secret
    }

    /// Creates the data directory (mode 0700) if needed.
    static func ensureDirectory(_ directory: String) throws(ConfigurationError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ConfigurationError("\(directory) is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConfigurationError("could not create the data directory \(directory): \(error.localizedDescription)")
        }
    }
}
