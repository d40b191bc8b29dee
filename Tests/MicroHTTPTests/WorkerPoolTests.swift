import Dispatch
import Foundation
import Synchronization
import Testing

@testable import MicroHTTP

extension WorkerPool {
    /// Runs `work` on a worker thread and returns its result: `submit` for async tests.
    fileprivate func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws(WorkerPoolError) -> T {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<T, WorkerPoolError>, Never>) in
            do throws(WorkerPoolError) {
                try submit { continuation.resume(returning: .success(work())) }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }
}

/// The kernel's name of the calling thread.
private func currentThreadName() -> String {
    let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
    return comm.trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite("WorkerPool")
struct WorkerPoolTests {
    @Test("work runs on the pool's own named threads and its result comes back")
    func dedicatedThreads() async throws {
        let pool = try WorkerPool(workers: 2, queueLimit: 8)
        defer { pool.shutdown() }
        let callerThread = currentThreadName()
        let workerThread = try await pool.run { currentThreadName() }
        #expect(workerThread.hasPrefix("worker-"))
        #expect(workerThread != callerThread)
        #expect(try await pool.run { 6 * 7 } == 42)
    }

    @Test("many concurrent jobs all complete with their own results")
    func manyJobs() async throws {
        let pool = try WorkerPool(workers: 2, queueLimit: 100)
        defer { pool.shutdown() }
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for index in 0..<50 {
                group.addTask { (index, try await pool.run { index * index }) }
            }
            return try await group.reduce(into: [Int: Int]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == 50)
        #expect(results.allSatisfy { $0.value == $0.key * $0.key })
    }

    @Test("with one worker and a queue of two, ten long jobs at once: the excess is refused at once")
    func overload() async throws {
        let pool = try WorkerPool(workers: 1, queueLimit: 2)
        defer { pool.shutdown() }
        let clock = ContinuousClock()
        let outcomes = await withTaskGroup(of: (Result<Void, WorkerPoolError>, Duration).self) { group in
            for _ in 0..<10 {
                group.addTask {
                    let start = clock.now
                    do throws(WorkerPoolError) {
                        try await pool.run { _ = usleep(300_000) }
                        return (.success(()), clock.now - start)
                    } catch {
                        return (.failure(error), clock.now - start)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let accepted = outcomes.count { if case .success = $0.0 { true } else { false } }
        let refused = outcomes.filter { if case .failure(.overloaded) = $0.0 { true } else { false } }
        #expect(accepted >= 2 && accepted <= 3, "one running, at most two waiting")
        #expect(refused.count == 10 - accepted)
        // Refusal does not wait for the running job.
        #expect(refused.allSatisfy { $0.1 < .milliseconds(250) })
    }

    @Test("queueDepth counts jobs waiting for a busy worker")
    func queueDepth() async throws {
        let pool = try WorkerPool(workers: 1, queueLimit: 10)
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        #expect(pool.queueDepth == 0)
        done.enter()
        try pool.submit {
            started.signal()
            release.wait()
            done.leave()
        }
        started.wait()
        for _ in 0..<3 {
            done.enter()
            try pool.submit { done.leave() }
        }
        #expect(pool.queueDepth == 3)
        release.signal()
        done.wait()
        #expect(pool.queueDepth == 0)
        pool.shutdown()
    }

    @Test("shutdown finishes queued jobs, joins the threads, and refuses later jobs")
    func shutdown() async throws {
        let pool = try WorkerPool(workers: 2, queueLimit: 10)
        // Let both workers start.
        _ = try await pool.run { 0 }
        _ = try await pool.run { 0 }
        let completed = LockedValue(0)
        for _ in 0..<6 {
            try pool.submit {
                usleep(50_000)
                completed.withLock { $0 += 1 }
            }
        }
        pool.shutdown()
        #expect(completed.withLock { $0 } == 6)
        #expect(pool.liveWorkers == 0)
        await #expect(throws: WorkerPoolError.shutDown) { try await pool.run { 1 } }
        #expect(throws: WorkerPoolError.shutDown) { try pool.submit {} }
        pool.shutdown()
    }
}

@Suite("WorkerPool niceness")
struct WorkerPoolNicenessTests {
    @Test("a pool's threads run at the niceness it was given; the caller's is untouched")
    func niceness() async throws {
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        let callerBefore = getpriority(which, 0)
        let pool = try WorkerPool(name: "nice", workers: 1, queueLimit: 1, niceness: 5)
        defer { pool.shutdown() }
        let workerNice = try await pool.run { getpriority(which, 0) }
        #expect(workerNice == min(19, callerBefore + 5))
        #expect(getpriority(which, 0) == callerBefore)
    }
}
