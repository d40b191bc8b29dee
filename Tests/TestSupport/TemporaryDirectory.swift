import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Creates a fresh directory under `/tmp` (`mkdtemp`), passes its path to
/// `body`, and removes it with everything in it afterwards, also when `body`
/// throws.
/// - Parameter body: gets the directory's absolute path.
public func withTemporaryDirectory<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (String) async throws -> T
) async rethrows -> T {
    let path = makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

private func makeTemporaryDirectory() -> String {
    var template = Array("/tmp/gatehouse-test.XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!) }
    if made != nil {
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    // mkdtemp failing means /tmp is unusable; hand out a path anyway so the
    // test fails where it touches the directory, with the system's error.
    let fallback = "/tmp/gatehouse-test.\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: fallback, withIntermediateDirectories: true)
    return fallback
}
