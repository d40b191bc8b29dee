import Foundation
import JSON
import MicroHTTP

/// An error a handler throws that is not an HTTPResponseError: it must become
/// a 500 that reveals nothing of it.
struct SecretFailure: Error, CustomStringConvertible {
    var description: String { "database password is hunter2" }
}

/// The routes the live tests run against.
enum LiveRoutes {
    static var router: Router {
        var router = Router()
        router.get("/hello") { _ in .json(["hello": "world"]) }
        router.get("/echo") { request in
            var query = JSONObject()
            for item in request.query { query[item.name] = .string(item.value) }
            return .json([
                "path": .string(request.path),
                "all": request.queryValue("all").map(JSONValue.string) ?? nil,
                "query": .object(query),
                "remote": request.remoteAddress.map(JSONValue.string) ?? nil,
                "userAgent": request.header("user-agent").map(JSONValue.string) ?? nil,
            ])
        }
        router.post("/echo") { request in
            .json([
                "length": .int(request.body.count),
                "body": .string(String(decoding: request.body, as: UTF8.self)),
            ])
        }
        router.get("/rate-limited") { _ in throw SlowDown() }
        router.get("/broken") { _ in throw SecretFailure() }
        router.get("/unsendable-headers") { _ in
            var response = Response.json(["sent": true])
            response.headers.add("X-Empty", "")
            response.headers.add("X-Split", "a\r\nSet-Cookie: stolen=1")
            response.headers.add("X-Fine", "yes")
            return response
        }
        router.add(.get, "/deferred-rate-limited", on: pool) { _ in throw SlowDown() }
        router.add(.get, "/deferred-broken", on: pool) { _ in throw SecretFailure() }
        router.add(.post, "/slow", on: pool, slow(milliseconds: 300))
        return router
    }

    /// The worker pool the offloaded test routes run on, shared by the live tests.
    static let pool: WorkerPool = {
        do {
            return try WorkerPool(name: "test", workers: 8, queueLimit: 256)
        } catch {
            fatalError("cannot start the test worker pool: \(error)")
        }
    }()

    /// An offloaded handler that blocks its worker, then answers with what it got.
    static func slow(milliseconds: Int) -> @Sendable (Request) throws -> Response {
        { request in
            usleep(UInt32(milliseconds) * 1000)
            return .json(["slept": .int(milliseconds), "length": .int(request.body.count)])
        }
    }
}

extension HTTPServerConfiguration {
    /// `.ephemeral` with some settings changed.
    static func ephemeral(_ change: (inout Self) -> Void) -> Self {
        var configuration = Self.ephemeral
        change(&configuration)
        return configuration
    }
}
