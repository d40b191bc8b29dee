import JSON
public import MicroHTTP

/// `GET /` and `GET /healthz`: what this is, and whether it is alive.
public struct ServiceController: Sendable {
    public init() {}

    public func addRoutes(to router: inout Router) {
        router.get("/", root)
        router.get("/healthz", health)
    }

    @Sendable public func root(_ request: Request) -> Response { .jsonBytes(Self.rootBody) }

    /// Liveness: the process answers HTTP. Never touches the store.
    @Sendable public func health(_ request: Request) -> Response { .jsonBytes(Self.healthBody) }

    private static let rootBody = JSONValue.object([
        "service": "gatehouse", "version": .string(Version.current),
    ]).serialized()
    private static let healthBody = JSONValue.object(["status": "ok"]).serialized()
}

/// The release this binary is.
public enum Version {
    public static let current = "0.1.0"
}
