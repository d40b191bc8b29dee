import MicroHTTP
import Testing

@Suite("HTTP headers and requests")
struct HTTPHeadersTests {
    static let headers: HTTPHeaders = [
        "Content-Type": "application/json",
        "X-Request-ID": "abc",
        "Accept": "text/html",
        "accept": "application/json",
    ]

    @Test(
        "lookup ignores ASCII case",
        arguments: ["Content-Type", "content-type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
    func caseInsensitive(_ name: String) {
        #expect(Self.headers[name] == "application/json")
        #expect(Self.headers.contains(name))
    }

    @Test(
        "names that differ in more than case do not match",
        arguments: ["Content-Typ", "Content-Type ", "Content_Type", "ContentType", "Content-Typé", ""])
    func otherNames(_ name: String) {
        #expect(Self.headers[name] == nil)
    }

    @Test("letters fold, other bytes that differ by 0x20 do not ('@' is not '`', '[' is not '{')")
    func onlyLettersFold() {
        let headers: HTTPHeaders = ["X@Y": "1", "A[B": "2"]
        #expect(headers["X`Y"] == nil)
        #expect(headers["x@y"] == "1")
        #expect(headers["A{B"] == nil)
        #expect(headers["a[b"] == "2")
    }

    @Test("repeated fields keep their order; the subscript gives the first")
    func repeated() {
        #expect(Self.headers["ACCEPT"] == "text/html")
        #expect(Self.headers.values(for: "Accept") == ["text/html", "application/json"])
    }

    @Test("set replaces every spelling; remove removes every spelling; names keep their spelling")
    func setAndRemove() {
        var headers = Self.headers
        headers.set("ACCEPT", "*/*")
        #expect(headers.values(for: "accept") == ["*/*"])
        #expect(headers.fields.last?.name == "ACCEPT")
        headers.add("x-request-id", "def")
        #expect(headers.values(for: "X-Request-Id") == ["abc", "def"])
        headers.remove("X-REQUEST-ID")
        #expect(!headers.contains("x-request-id"))
        #expect(headers.count == 2)
        #expect(headers.fields.map(\.name) == ["Content-Type", "ACCEPT"])
    }

    @Test("query values: the first of a name, exact name match")
    func queryValue() {
        let request = Request(method: .get, path: "/x", query: [("all", "true"), ("x", "1"), ("all", "false")])
        #expect(request.queryValue("all") == "true")
        #expect(request.queryValue("x") == "1")
        #expect(request.queryValue("ALL") == nil)
        #expect(request.queryValue("missing") == nil)
    }

    @Test(
        "media type drops parameters and case",
        arguments: [
            ("application/json", "application/json"),
            ("Application/JSON; charset=utf-8", "application/json"),
            ("  text/plain ;q=1", "text/plain"),
            ("", ""),
        ])
    func mediaType(_ header: String, _ expected: String) {
        let request = Request(method: .post, path: "/", headers: ["content-type": header])
        #expect(request.mediaType == expected)
        #expect(request.header("CONTENT-TYPE") == header)
    }

    @Test("no Content-Type, no media type")
    func noMediaType() {
        #expect(Request(method: .post, path: "/").mediaType == nil)
    }
}
