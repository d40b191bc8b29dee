internal import CCrypto

extension JOSEError {
    /// A `cryptoFailure` for `operation`, carrying the oldest code on this
    /// thread's OpenSSL error queue; the queue is then cleared so that a later
    /// failure does not report a stale reason.
    static func openSSL(_ operation: String) -> JOSEError {
        let (code, reason) = takeOpenSSLError()
        return .cryptoFailure(operation: operation, opensslCode: code, reason: reason)
    }

    /// An `invalidKey` error for a key libcrypto refused to read or use:
    /// `message`, then the oldest OpenSSL code and its text, if any; the
    /// queue is then cleared.
    static func invalidKeyFromOpenSSL(_ message: String) -> JOSEError {
        let (code, reason) = takeOpenSSLError()
        guard code != 0 else { return .invalidKey(message) }
        let detail = reason.isEmpty ? "" : ": \(reason)"
        return .invalidKey("\(message) (OpenSSL error 0x\(String(code, radix: 16))\(detail))")
    }

    /// The oldest code on this thread's OpenSSL error queue (0 if empty) and
    /// its text; clears the queue.
    private static func takeOpenSSLError() -> (code: UInt, reason: String) {
        let code = ERR_get_error()
        var reason = ""
        if code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            reason = String(decoding: text, as: UTF8.self)
        }
        ERR_clear_error()
        return (code, reason)
    }
}
