public import MicroHTTP

extension HTTPServerConfiguration {
    /// For live tests: 127.0.0.1, a free port picked by the kernel, two
    /// threads, and a two-second shutdown grace period so a stuck test ends.
    public static var ephemeral: Self {
        var configuration = Self()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.threads = 2
        configuration.shutdownGracePeriod = 2
        return configuration
    }
}

/// Starts an `HTTPServer` for `router` on 127.0.0.1 and a free port, runs
/// `body` with the server and its port, and shuts the server down afterwards,
/// also when `body` throws.
///
/// The shutdown runs on a thread of its own (`blockingIO`): it waits for
/// requests in flight, and deferred handlers need the cooperative pool to finish.
/// - Parameters:
///   - router: the routes to serve.
///   - configuration: limits and threads; its host and port are used as given.
///   - cors: the CORS policy.
///   - filters: response filters (the security headers by default).
///   - logger: where the server logs; silent by default, pass one with a
///     `MemoryLogSink` to read what it logged.
///   - body: the test; gets the server and the bound port.
public func withHTTPServer<T>(
    router: Router,
    configuration: HTTPServerConfiguration = .ephemeral,
    cors: CORSPolicy = CORSPolicy(),
    filters: [any ResponseFilter] = [SecurityHeadersFilter()],
    logger: Logger = .silent,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (HTTPServer, UInt16) async throws -> T
) async throws -> T {
    let server = HTTPServer(
        configuration: configuration, router: router, cors: cors, filters: filters, logger: logger)
    let port = try server.start()
    do {
        let result = try await body(server, port)
        await blockingIO { server.shutdown() }
        return result
    } catch {
        await blockingIO { server.shutdown() }
        throw error
    }
}
