import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension PostgresServer {
    /// Stops every process of the server (the postmaster and all its children) with `SIGSTOP`: a
    /// server that stops answering without closing anything, as a paused VM, a hung disk or a
    /// network that drops packets looks to a client. The kernel still accepts connections and
    /// acknowledges data for it. ``thaw()`` resumes it.
    /// - Returns: the processes stopped (empty if the server is not running).
    @discardableResult
    public func freeze() -> [Int32] {
        let processes = serverProcesses()
        for process in processes { kill(process, SIGSTOP) }
        return processes
    }

    /// Resumes what ``freeze()`` stopped (`SIGCONT` to every process of the server), and `runuser`
    /// above it, which stops itself when its child stops (as `su` does, for job control).
    public func thaw() {
        for process in serverProcesses() { kill(process, SIGCONT) }
        kill(pid, SIGCONT)
    }

    /// The postmaster (from `postmaster.pid`) and every process whose parent it is (`/proc`).
    private func serverProcesses() -> [Int32] {
        let text = (try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8)) ?? ""
        let firstLine = text.split(separator: "\n").first?.trimmingCharacters(in: .whitespaces)
        guard let postmaster = firstLine.flatMap({ Int32($0) }) else { return [] }
        var processes = [postmaster]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let process = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // pid (comm) state ppid ...: the command may hold spaces and parentheses, so after the last ')'.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == postmaster { processes.append(process) }
        }
        return processes
    }
}
