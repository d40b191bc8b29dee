import JSON
import MicroHTTP
import Testing

/// A handler that answers with its own name, so a test can tell which one ran.
private func named(_ name: String) -> @Sendable (Request) throws -> Response {
    { _ in .json(["handler": .string(name)]) }
}

/// Runs what a match found against `request`; nil unless it is an immediate handler.
private func run(_ match: Router.Match, _ request: Request) throws -> Response? {
    guard case .handler(.immediate(let handler)) = match else { return nil }
    return try handler(request)
}

@Suite("Router")
struct RouterTests {
    static var router: Router {
        var router = Router()
        router.get("/items", named("get items"))
        router.post("/items", named("post items"))
        router.add(.delete, "/items/one", .immediate(named("delete one")))
        router.post("/submit", named("submit"))
        router.add(.post, "/slow", on: LiveRoutes.pool) { _ in .json(["handler": "slow"]) }
        return router
    }

    @Test(
        "exact path and method pick the handler",
        arguments: [
            (HTTPMethod.get, "/items", "get items"),
            (.post, "/items", "post items"),
            (.delete, "/items/one", "delete one"),
            (.post, "/submit", "submit"),
        ])
    func exactMatch(_ method: HTTPMethod, _ path: String, _ expected: String) throws {
        let response = try #require(try run(Self.router.match(method, path), Request(method: method, path: path)))
        #expect(try response.jsonBody() == ["handler": .string(expected)])
    }

    @Test(
        "unknown paths are not found, with no prefix, suffix or case matching",
        arguments: ["/", "/nope", "/items/", "/Items", "/items/two", "/item", "items", "/items?x=1", "/items/one/"])
    func notFound(_ path: String) {
        guard case .notFound = Self.router.match(.get, path) else {
            Issue.record("expected notFound for \(path)")
            return
        }
    }

    @Test("a known path with another method lists what is allowed, HEAD and OPTIONS included")
    func methodNotAllowed() {
        guard case .methodNotAllowed(let allowed) = Self.router.match(.delete, "/items") else {
            Issue.record("expected methodNotAllowed")
            return
        }
        #expect(allowed == [.get, .head, .options, .post])
    }

    @Test("a path without GET does not allow HEAD")
    func noHeadWithoutGet() {
        guard case .methodNotAllowed(let allowed) = Self.router.match(.head, "/submit") else {
            Issue.record("expected methodNotAllowed")
            return
        }
        #expect(allowed == [.options, .post])
        #expect(Self.router.allowedMethods(for: "/submit") == [.options, .post])
    }

    @Test("HEAD falls back to the GET handler")
    func headFallsBackToGet() throws {
        let response = try #require(try run(Self.router.match(.head, "/items"), Request(method: .head, path: "/items")))
        #expect(try response.jsonBody() == ["handler": "get items"])
    }

    @Test("methods are case-sensitive: 'get' is not GET")
    func methodCase() {
        guard case .methodNotAllowed = Self.router.match(HTTPMethod(rawValue: "get"), "/items") else {
            Issue.record("expected methodNotAllowed")
            return
        }
    }

    @Test("an offloaded route is returned with its pool")
    func offloaded() throws {
        guard case .handler(.offloaded(let pool, let handler, _)) = Self.router.match(.post, "/slow") else {
            Issue.record("expected an offloaded handler")
            return
        }
        #expect(pool === LiveRoutes.pool)
        #expect(try handler(Request(method: .post, path: "/slow")).jsonBody() == ["handler": "slow"])
    }

    @Test("allowed methods for an unknown path are empty; paths are listed sorted")
    func listing() {
        #expect(Self.router.allowedMethods(for: "/nope") == [])
        #expect(Self.router.paths == ["/items", "/items/one", "/slow", "/submit"])
    }

    @Test("adding the same method and path again replaces the handler")
    func replace() throws {
        var router = Router()
        router.get("/x", named("first"))
        router.get("/x", named("second"))
        let response = try #require(try run(router.match(.get, "/x"), Request(method: .get, path: "/x")))
        #expect(try response.jsonBody() == ["handler": "second"])
    }
}
