import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts `binary` with stdin from /dev/null, stdout and stderr appended to
/// `output`, and the environment `environment` (`NAME=value` strings).
///
/// `posix_spawn` rather than Foundation's `Process`: the child must start
/// with no signal blocked. A child inherits the spawning thread's signal
/// mask, and the test runner's threads block most signals (SIGQUIT among
/// them), so a server started by `Process` may never see the signal that
/// stops it gracefully.
/// - Returns: the child's process id; the caller reaps it (`waitpid`).
func spawnChild(
    _ binary: String, arguments: [String], output: String,
    environment: [String] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
) throws -> Int32 {
    var attributes = posix_spawnattr_t()
    var actions = posix_spawn_file_actions_t()
    guard posix_spawnattr_init(&attributes) == 0 else { throw HarnessError("posix_spawnattr_init failed") }
    defer { posix_spawnattr_destroy(&attributes) }
    guard posix_spawn_file_actions_init(&actions) == 0 else {
        throw HarnessError("posix_spawn_file_actions_init failed")
    }
    defer { posix_spawn_file_actions_destroy(&actions) }

    var none = sigset_t()
    sigemptyset(&none)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM] {
        sigaddset(&defaults, signal)
    }
    var rc = posix_spawnattr_setsigmask(&attributes, &none)
    if rc == 0 { rc = posix_spawnattr_setsigdefault(&attributes, &defaults) }
    if rc == 0 { rc = posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) }
    if rc == 0 { rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
    if rc == 0 {
        rc = posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    }
    if rc == 0 { rc = posix_spawn_file_actions_adddup2(&actions, 1, 2) }
    guard rc == 0 else { throw HarnessError("posix_spawn set-up failed: \(String(cString: strerror(rc)))") }

    let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
    defer { for pointer in argv + envp { free(pointer) } }
    var pid: pid_t = 0
    rc = posix_spawn(&pid, binary, &actions, &attributes, argv, envp)
    guard rc == 0 else { throw HarnessError("could not start \(binary): \(String(cString: strerror(rc)))") }
    return pid
}

/// Runs `binary` to completion (as `spawnChild` starts it) and returns its
/// exit status and everything it wrote; kills it (SIGKILL) and throws when
/// it takes longer than `timeout` seconds.
func runChild(
    _ binary: String, arguments: [String], output: String, timeout: Double,
    environment: [String] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
) throws -> (status: Int32, output: String) {
    let pid = try spawnChild(binary, arguments: arguments, output: output, environment: environment)
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    while true {
        let reaped = waitpid(pid, &status, WNOHANG)
        if reaped == pid { break }
        if reaped < 0, errno != EINTR {
            throw HarnessError("waitpid for \(binary): \(String(cString: strerror(errno)))")
        }
        if Date() >= deadline {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            let written = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            throw HarnessError("\(binary) \(arguments.joined(separator: " ")) took over \(timeout) s:\n\(written)")
        }
        usleep(5_000)
    }
    let written = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (exit, written)
}

/// Whether the child `pid` has not exited yet. Once it has, reaps it and keeps its wait status in
/// `exitStatus` (-1 if someone else reaped it); from then on answers false without asking again.
func childIsRunning(_ pid: pid_t, exitStatus: inout Int32?) -> Bool {
    guard exitStatus == nil else { return false }
    var status: Int32 = 0
    let reaped = waitpid(pid, &status, WNOHANG)
    if reaped == pid || (reaped < 0 && errno == ECHILD) {
        exitStatus = reaped == pid ? status : -1
        return false
    }
    return true
}
