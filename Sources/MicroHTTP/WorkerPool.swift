import Dispatch
import Foundation
import Glibc

/// Why a ``WorkerPool`` refused a job.
public struct WorkerPoolError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: String, Sendable, Equatable {
        case overloaded
        case shutDown
        case cannotStartWorker
    }

    private let kind: Kind
    /// The `pthread_create` error for ``cannotStartWorker(code:)``, else `nil`.
    public let systemErrorCode: Int32?

    private init(_ kind: Kind, systemErrorCode: Int32? = nil) {
        self.kind = kind
        self.systemErrorCode = systemErrorCode
    }

    /// The queue already holds `queueLimit` waiting jobs: answer 503 with `Retry-After`.
    public static let overloaded = WorkerPoolError(.overloaded)
    /// ``WorkerPool/shutdown()`` was called.
    public static let shutDown = WorkerPoolError(.shutDown)
    /// A worker thread could not be started (`pthread_create` failed with `code`).
    public static func cannotStartWorker(code: Int32) -> WorkerPoolError {
        WorkerPoolError(.cannotStartWorker, systemErrorCode: code)
    }

    public var description: String {
        if let systemErrorCode {
            return "WorkerPoolError.\(kind.rawValue) (\(String(cString: strerror(systemErrorCode))))"
        }
        return "WorkerPoolError.\(kind.rawValue)"
    }
}

/// Dedicated worker threads for slow, blocking work (a password hash takes tens of milliseconds),
/// with a bounded queue. `Handler.offloaded` routes run here with their connection suspended.
///
/// The workers are plain threads, not Swift's cooperative pool, so blocking them never starves
/// async tasks, and not libmicrohttpd's threads, so slow requests never delay fast ones. A job that
/// would have to wait behind `queueLimit` others is refused at once with
/// ``WorkerPoolError/overloaded`` instead of queuing without bound.
public final class WorkerPool: Sendable {
    /// The number of worker threads.
    public let workers: Int
    /// How many jobs may wait for a busy worker before new ones are refused.
    public let queueLimit: Int

    private let core: Core

    /// The name its threads carry (`<name>-<n>`).
    public let name: String

    /// Starts the worker threads, named `<name>-<n>`.
    /// - Parameters:
    ///   - name: a short name for the threads (Linux keeps 15 bytes of a thread name).
    ///   - niceness: added to the threads' scheduling niceness (Linux nice values are per
    ///     thread). A positive value lets the HTTP threads preempt this pool's work when they
    ///     share a core: token checks do not queue behind password hashes.
    ///   - workers: number of threads (at least 1 is started).
    ///   - queueLimit: how many jobs may wait for a busy worker (negative counts as 0: a job is
    ///     accepted only when a worker is idle).
    /// - Throws: ``WorkerPoolError/cannotStartWorker(code:)`` if a thread cannot be created; the
    ///   threads already started are stopped first.
    public init(name: String = "worker", workers: Int, queueLimit: Int, niceness: Int32 = 0)
        throws(WorkerPoolError)
    {
        self.name = name
        self.workers = max(1, workers)
        self.queueLimit = max(0, queueLimit)
        core = Core(workers: self.workers, queueLimit: self.queueLimit)
        for index in 0..<self.workers {
            let worker = WorkerContext(core: core, name: "\(name)-\(index)", niceness: niceness)
            let context = Unmanaged.passRetained(worker).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, workerPoolThreadMain, context)
            guard rc == 0 else {
                Unmanaged<WorkerContext>.fromOpaque(context).release()
                core.stop()
                throw .cannotStartWorker(code: rc)
            }
            core.state.withLock { $0.threads.append(thread) }
        }
    }

    deinit {
        core.stop()
    }

    /// Queues `job` to run on a worker thread (the server suspends a connection, and `job`
    /// resumes it with the answer).
    /// - Parameter job: the work; it runs exactly once if this call does not throw.
    /// - Throws: ``WorkerPoolError/overloaded`` at once if `queueLimit` jobs are already waiting,
    ///   ``WorkerPoolError/shutDown`` after ``shutdown()``.
    public func submit(_ job: @escaping @Sendable () -> Void) throws(WorkerPoolError) {
        try core.submit(job)
    }

    /// Jobs waiting for a worker (not counting running ones), for metrics.
    public var queueDepth: Int {
        core.state.withLock { core.waiting($0) }
    }

    /// Refuses new jobs, lets the queued ones finish, and joins the worker threads. Returns when
    /// they have exited (a worker calling it is not waited for). Later calls do nothing.
    public func shutdown() {
        core.stop()
    }

    /// Worker threads that have not exited yet (for tests).
    var liveWorkers: Int {
        core.state.withLock { $0.liveWorkers }
    }
}

// MARK: - Implementation

/// What the pool and its threads share. Threads keep it alive, not the pool, so the pool's deinit
/// can stop them.
private final class Core: Sendable {
    struct State {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        /// Jobs a worker has taken and not finished.
        var running = 0
        var liveWorkers = 0
        var isShutDown = false
        var threads: [pthread_t] = []

        var queued: Int { jobs.count - head }
    }

    let workers: Int
    let queueLimit: Int
    let state = LockedValue(State())
    /// One signal per queued job, plus one per worker at shutdown.
    let wakeups = DispatchSemaphore(value: 0)

    init(workers: Int, queueLimit: Int) {
        self.workers = workers
        self.queueLimit = queueLimit
    }

    /// Queued jobs that no free worker is about to take.
    func waiting(_ state: State) -> Int { max(0, state.queued - max(0, workers - state.running)) }

    func submit(_ job: @escaping @Sendable () -> Void) throws(WorkerPoolError) {
        try state.withLock { (state) throws(WorkerPoolError) in
            guard !state.isShutDown else { throw .shutDown }
            // Counted by jobs, not by idle threads, so a worker that is between
            // two jobs (or still starting) never makes the pool look full.
            guard state.queued + state.running < workers + queueLimit else { throw .overloaded }
            state.jobs.append(job)
        }
        wakeups.signal()
    }

    func workLoop() {
        while true {
            wakeups.wait()
            let job = state.withLock { state -> (@Sendable () -> Void)? in
                // Jobs are queued before their signal, so an empty queue means a stop signal.
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                state.running += 1
                if state.head == state.jobs.count {
                    state.jobs.removeAll(keepingCapacity: true)
                    state.head = 0
                } else if state.head >= 64, state.head * 2 >= state.jobs.count {
                    state.jobs.removeFirst(state.head)
                    state.head = 0
                }
                return job
            }
            guard let job else { break }
            job()
            state.withLock { $0.running -= 1 }
        }
        state.withLock { $0.liveWorkers -= 1 }
    }

    func stop() {
        let threads = state.withLock { state -> [pthread_t] in
            guard !state.isShutDown else { return [] }
            state.isShutDown = true
            let threads = state.threads
            state.threads = []
            return threads
        }
        // Each worker drains the queue, then exits on an empty one.
        for _ in threads {
            wakeups.signal()
        }
        let current = pthread_self()
        for thread in threads {
            if pthread_equal(thread, current) != 0 {
                // Called from a job: the worker exits after it; nobody is left to join it.
                _ = pthread_detach(thread)
            } else {
                // Fails only for a thread that is not joinable, which these always are.
                let rc = pthread_join(thread, nil)
                assert(rc == 0, "pthread_join failed: \(rc)")
            }
        }
    }
}

private final class WorkerContext {
    let core: Core
    let name: String
    let niceness: Int32

    init(core: Core, name: String, niceness: Int32) {
        self.core = core
        self.name = name
        self.niceness = niceness
    }
}

/// Thread entry point; the argument is a retained ``WorkerContext``.
private func workerPoolThreadMain(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let argument else { return nil }
    let context = Unmanaged<WorkerContext>.fromOpaque(argument).takeRetainedValue()
    // Names show in top -H, perf and gdb (Foundation sets the kernel's name; Linux keeps 15 bytes).
    Thread.current.name = context.name
    if context.niceness != 0 {
        // Relative to the creating thread's; on Linux/NPTL nice(2) changes only the calling
        // thread. Failure only leaves the inherited value.
        _ = nice(context.niceness)
    }
    context.core.state.withLock { $0.liveWorkers += 1 }
    context.core.workLoop()
    return nil
}
