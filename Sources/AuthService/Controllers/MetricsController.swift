public import MicroHTTP

/// `GET /metrics`: every metric of `registry` in the Prometheus text
/// exposition format, version 0.0.4, read at the moment of the request.
public struct MetricsController: Sendable {
    let registry: MetricsRegistry

    public init(registry: MetricsRegistry) { self.registry = registry }

    public func addRoutes(to router: inout Router) {
        router.get("/metrics", metrics)
    }

    /// 200, `Content-Type: text/plain; version=0.0.4; charset=utf-8`. A
    /// scrape reads a few files in `/proc` and sums the counters: tens of
    /// microseconds, on the HTTP thread.
    @Sendable public func metrics(_ request: Request) -> Response {
        Response(
            status: 200,
            headers: ["Content-Type": MetricsRegistry.contentType, "Cache-Control": "no-store"],
            body: Array(registry.exposition().utf8))
    }
}
