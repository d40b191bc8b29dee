// BareHandler: the ceiling that `make bench` compares Gatehouse with. A
// libmicrohttpd server in Swift that does as little as a server can: every
// request gets the same 19-byte JSON body, with nothing parsed, routed or
// allocated in Swift.
//
// It starts libmicrohttpd exactly as Sources/MicroHTTP/Daemon.swift does (the
// same flags, the same options and defaults, through the same CMicroHTTPD
// shim), so the difference between the two is the work Gatehouse does per
// request, not a different HTTP configuration.
//
// Settings (environment):
//   BARE_HOST     IPv4 address to listen on (default 127.0.0.1)
//   BARE_PORT     port (default 0: a free one, printed as `listening port=N` on stderr)
//   BARE_THREADS  libmicrohttpd thread-pool size (default 1)
// SIGTERM or SIGINT stops it (exit 0).

internal import CMicroHTTPD
import Glibc

// Block the stop signals before libmicrohttpd starts its threads, so every
// thread inherits the mask and `sigwait` below is where they arrive.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
sigaddset(&stopSignals, SIGTERM)
sigaddset(&stopSignals, SIGINT)
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

/// Writes a line to standard error (the C `stderr` global is mutable state,
/// which strict concurrency does not let Swift touch).
func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}

func fail(_ message: String) -> Never {
    printError("BareHandler: \(message)")
    exit(2)
}

func setting(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}

let host = setting("BARE_HOST") ?? "127.0.0.1"
guard let port = UInt16(setting("BARE_PORT") ?? "0") else { fail("BARE_PORT must be a port number") }
guard let threads = Int(setting("BARE_THREADS") ?? "1"), (1...256).contains(threads) else {
    fail("BARE_THREADS must be a whole number from 1 to 256")
}

/// The body of every response; static memory, so libmicrohttpd may point at
/// it (`RESPMEM_PERSISTENT`) instead of copying it.
let helloBody: StaticString = #"{"message":"hello"}"#

/// Answers every request with `helloBody`. The first call for a request only
/// marks it (`*con_cls`) and returns YES; the response is queued on the next
/// call, because queueing on the first makes libmicrohttpd 0.9.75 close the
/// connection after every response (NOTES.md: keep-alive).
private func bareAccessHandler(
    _ cls: UnsafeMutableRawPointer?,
    _ connection: OpaquePointer?,
    _ url: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?,
    _ version: UnsafePointer<CChar>?,
    _ uploadData: UnsafePointer<CChar>?,
    _ uploadDataSize: UnsafeMutablePointer<Int>?,
    _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let connection, let conCls, let uploadDataSize else { return .NO }
    guard conCls.pointee != nil else {
        // Any non-NULL marker will do: there is no per-request state to free.
        conCls.pointee = UnsafeMutableRawPointer(bitPattern: 1)
        return .YES
    }
    if uploadDataSize.pointee > 0 {
        // A body is discarded, piece by piece.
        uploadDataSize.pointee = 0
        return .YES
    }
    let response = MHD_create_response_from_buffer(
        helloBody.utf8CodeUnitCount, UnsafeMutableRawPointer(mutating: helloBody.utf8Start), .RESPMEM_PERSISTENT)
    guard let response else { return .NO }
    defer { MHD_destroy_response(response) }
    guard MHD_add_response_header(response, "Content-Type", "application/json") == .YES else { return .NO }
    return MHD_queue_response(connection, 200, response)
}

var address = sockaddr_in()
address.sin_family = sa_family_t(AF_INET)
address.sin_port = port.bigEndian
guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { fail("BARE_HOST must be an IPv4 address") }

// Daemon.swift's flags and options, with HTTPServerConfiguration's defaults.
let flags = MHD_USE_EPOLL_INTERNAL_THREAD.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue
let daemon: OpaquePointer? = withUnsafeMutablePointer(to: &address) { pointer in
    var options: [MHD_OptionItem] = [
        CMicroHTTPD_option(.SOCK_ADDR, 0, UnsafeMutableRawPointer(pointer)),
        CMicroHTTPD_option(.CONNECTION_LIMIT, 4096, nil),
        CMicroHTTPD_option(.CONNECTION_TIMEOUT, 30, nil),
        CMicroHTTPD_option(.CONNECTION_MEMORY_LIMIT, 32 * 1024, nil),
        CMicroHTTPD_option(.LISTEN_BACKLOG_SIZE, 511, nil),
    ]
    if threads > 1 {
        options.append(CMicroHTTPD_option(.THREAD_POOL_SIZE, threads, nil))
    }
    options.append(CMicroHTTPD_option(.END, 0, nil))
    return options.withUnsafeMutableBufferPointer { buffer in
        CMicroHTTPD_start(flags, port, nil, nil, bareAccessHandler, nil, buffer.baseAddress)
    }
}
guard let daemon else { fail("could not listen on \(host):\(port): \(String(cString: strerror(errno)))") }

printError("listening port=\(CMicroHTTPD_bound_port(daemon)) threads=\(threads)")

var received: Int32 = 0
sigwait(&stopSignals, &received)
MHD_stop_daemon(daemon)
exit(0)
