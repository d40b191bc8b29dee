internal import CCrypto

extension JOSEError {
    /// A `cryptoFailure` for `operation`, carrying the oldest code on this
    /// thread's OpenSSL error queue; the queue is then cleared so that a later
    /// failure does not report a stale reason.
    static func openSSL(_ operation: String) -> JOSEError {
        let code = ERR_get_error()
        var reason = ""
        if code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            reason = String(decoding: text, as: UTF8.self)
        }
        ERR_clear_error()
        return .cryptoFailure(operation: operation, opensslCode: code, reason: reason)
    }
}
