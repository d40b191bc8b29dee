import Foundation

/// Runs blocking work (a socket read, `HTTPServer.shutdown()`) on a thread of
/// its own and suspends until it is done.
///
/// The cooperative pool has one thread per core (two on CI). A test that
/// blocks one of them waiting for a deferred handler can starve the very
/// task that would answer it; a dedicated thread cannot.
/// - Parameter body: the blocking work; it may throw.
public func blockingIO<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, E>, Never>) in
        let thread = Thread {
            continuation.resume(returning: Result { () throws(E) -> T in try body() })
        }
        thread.name = "TestSupport.blockingIO"
        thread.start()
    }
    return try result.get()
}
