@testable import AuthService
import Foundation
import MicroHTTP
import Testing

/// `JSONBody`'s cap on members and elements: enough for any real request, checked before the
/// parser runs so that a body of thousands of tiny members costs one linear pass.
@Suite struct JSONBodyTests {
    static func request(_ body: String) -> Request {
        Request(method: .post, path: "/register", headers: ["Content-Type": "application/json"], body: Array(body.utf8))
    }

    /// `{"username":"someone","password":"a good password","k2":0,...}` with `count` members.
    static func object(members count: Int) -> String {
        #"{"username":"someone","password":"a good password""# + (2..<max(2, count)).map { #","k\#($0)":0"# }.joined()
            + "}"
    }

    static func refusal(_ body: String) -> AuthError? {
        do {
            _ = try JSONBody(request(body))
            return nil
        } catch {
            return error
        }
    }

    @Test func anObjectOfTheMostMembersAllowedIsDecoded() throws {
        let body = try JSONBody(Self.request(Self.object(members: JSONBody.maxValues)))
        #expect(body.object.count == JSONBody.maxValues)
        #expect(try body.string("username") == "someone")
    }

    @Test func oneMemberMoreIsRefusedBeforeParsing() {
        let error = Self.refusal(Self.object(members: JSONBody.maxValues + 1))
        #expect(error?.status == 400)
        #expect(error?.errorCode == "invalid_request")
        #expect(error?.message.contains("more than \(JSONBody.maxValues) members") == true)
    }

    @Test func arrayElementsCountToo() {
        let elements = Array(repeating: "0", count: JSONBody.maxValues).joined(separator: ",")
        let error = Self.refusal(#"{"username":"someone","password":"a good password","x":[\#(elements)]}"#)
        #expect(error?.message.contains("members and array elements") == true)
    }

    /// The hostile body of the bad-input table: 6,000 members, under the 64 KiB body limit. Refused
    /// by the cap, not by a parse error or a credential rule, so the parser never saw it.
    @Test func thousandsOfTinyMembersAreRefusedByTheCap() {
        let error = Self.refusal(Self.object(members: 6_000))
        #expect(error?.errorCode == "invalid_request")
        #expect(error?.message.contains("members and array elements") == true)
    }

    /// Commas inside strings, escaped quotes included, are text, not separators.
    @Test func commasInsideStringsDoNotCount() throws {
        let commas = String(repeating: ",", count: 500)
        let body = try JSONBody(
            Self.request(#"{"username":"someone","password":"\"\#(commas)\\\"\#(commas)"}"#))
        #expect(try body.string("password") == "\"" + commas + "\\\"" + commas)
        #expect(JSONBody.separators(in: Array(#"{"a":"\",\\","b":[1,2]}"#.utf8), upTo: 64) == 2)
    }

    /// Malformed text is still the parser's to refuse, with its own message.
    @Test func malformedTextUnderTheCapIsLeftToTheParser() {
        #expect(Self.refusal(#"{"username":"someone","#)?.message.contains("not valid JSON") == true)
    }
}
