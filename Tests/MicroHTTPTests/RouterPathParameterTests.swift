import JSON
import MicroHTTP
import Testing

/// A handler that answers with its name and the path parameters it was given.
private func echoing(_ name: String) -> @Sendable (Request) throws -> Response {
    { request in
        var parameters = JSONObject()
        for (key, value) in request.pathParameters.sorted(by: { $0.key < $1.key }) { parameters[key] = .string(value) }
        return .json(["handler": .string(name), "parameters": .object(parameters)])
    }
}

/// Runs what a match found against `request`, immediate or offloaded (admission first).
private func run(_ match: Router.Match, _ request: Request) throws -> Response? {
    switch match {
    case .handler(.immediate(let handler)):
        return try handler(request)
    case .handler(.offloaded(_, let handler, let admission)):
        try admission?(request)
        return try handler(request)
    default:
        return nil
    }
}

@Suite("Router path parameters")
struct RouterPathParameterTests {
    static var router: Router {
        var router = Router()
        router.get("/users", echoing("list"))
        router.get("/users/me", echoing("me"))
        router.get("/users/{id}", echoing("show"))
        router.add(.patch, "/users/{id}", .immediate(echoing("patch")))
        router.post("/users/{id}/logout", echoing("logout"))
        router.get("/orgs/{org}/members/{member}", echoing("member"))
        router.add(.delete, "/users/{id}", on: LiveRoutes.pool) { request in
            .json(["handler": "delete", "id": .string(request.pathParameter("id") ?? "-")])
        }
        return router
    }

    @Test(
        "a template matches one whole non-empty segment per parameter and fills it in",
        arguments: [
            (HTTPMethod.get, "/users/42", "show", ["id": "42"]),
            (.patch, "/users/4f1c-9a", "patch", ["id": "4f1c-9a"]),
            (.post, "/users/a.b/logout", "logout", ["id": "a.b"]),
            (.get, "/orgs/acme/members/bob", "member", ["org": "acme", "member": "bob"]),
            (.get, "/users", "list", [:]),
        ])
    func templateMatch(_ method: HTTPMethod, _ path: String, _ expected: String, _ parameters: [String: String])
        throws
    {
        let response = try #require(try run(Self.router.match(method, path), Request(method: method, path: path)))
        var object = JSONObject()
        for (key, value) in parameters.sorted(by: { $0.key < $1.key }) { object[key] = .string(value) }
        #expect(try response.jsonBody() == ["handler": .string(expected), "parameters": .object(object)])
    }

    @Test("an exact path wins over a template that also fits")
    func exactWins() throws {
        let response = try #require(
            try run(Self.router.match(.get, "/users/me"), Request(method: .get, path: "/users/me")))
        #expect(try response.jsonBody() == ["handler": "me", "parameters": .object([:])])
    }

    @Test(
        "paths that do not fit a template are not found",
        arguments: [
            "/users/", "/users//logout", "/users/42/", "/users/42/logout/", "/users/42/other", "/Users/42",
            "/orgs/acme/members", "/orgs//members/bob", "/users/42/logout/x",
        ])
    func notFound(_ path: String) {
        // GET: /users/{id}/logout has only POST, so only a real miss is notFound.
        guard case .notFound = Self.router.match(.put, path) else {
            Issue.record("expected notFound for \(path)")
            return
        }
    }

    @Test("a template path with another method lists the template's methods")
    func methodNotAllowed() {
        guard case .methodNotAllowed(let allowed) = Self.router.match(.put, "/users/42") else {
            Issue.record("expected methodNotAllowed")
            return
        }
        #expect(allowed == [.delete, .get, .head, .options, .patch])
        #expect(Self.router.allowedMethods(for: "/users/42") == allowed)
        #expect(Self.router.allowedMethods(for: "/users/{id}") == allowed)
    }

    @Test("offloaded template routes get their parameters too")
    func offloaded() throws {
        let match = Self.router.match(.delete, "/users/7")
        guard case .handler(.offloaded(let pool, _, _)) = match else {
            Issue.record("expected an offloaded handler")
            return
        }
        #expect(pool === LiveRoutes.pool)
        let response = try #require(try run(match, Request(method: .delete, path: "/users/7")))
        #expect(try response.jsonBody() == ["handler": "delete", "id": "7"])
    }

    @Test("templates are listed as written, and are the metrics' route labels")
    func listing() {
        let router = Self.router
        #expect(router.paths.contains("/users/{id}"))
        #expect(router.paths.contains("/users/{id}/logout"))
        #expect(!router.routePaths.contains("/users/42"))
    }
}
