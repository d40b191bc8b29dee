#if canImport(Glibc)
    import Glibc
#endif

/// The standard process metrics of Prometheus' client libraries, read from
/// `/proc` and `getrlimit` when scraped (Linux):
/// `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
/// `process_start_time_seconds`.
struct ProcessMetrics: MetricFamily {
    /// Seconds since 1970 when the process started, worked out once.
    private let startTime: Double?

    init() {
        startTime = Self.readStartTime()
    }

    var names: [String] {
        [
            "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
            "process_open_fds", "process_max_fds", "process_start_time_seconds",
        ]
    }

    func write(to exposition: inout TextExposition) {
        let stat = Self.readStat()
        if let stat {
            exposition.family(
                "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", type: .counter)
            exposition.sample("process_cpu_seconds_total", Double(stat.userTicks + stat.systemTicks) / Self.ticks)
            exposition.family(
                "process_resident_memory_bytes", help: "Resident memory size in bytes.", type: .gauge)
            exposition.sample("process_resident_memory_bytes", Double(stat.residentPages) * Self.pageSize)
            exposition.family(
                "process_virtual_memory_bytes", help: "Virtual memory size in bytes.", type: .gauge)
            exposition.sample("process_virtual_memory_bytes", Double(stat.virtualBytes))
        }
        if let open = Self.openDescriptors() {
            exposition.family("process_open_fds", help: "Number of open file descriptors.", type: .gauge)
            exposition.sample("process_open_fds", Double(open))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            exposition.family("process_max_fds", help: "Maximum number of open file descriptors.", type: .gauge)
            exposition.sample(
                "process_max_fds", limit.rlim_cur == rlim_t.max ? Double.infinity : Double(limit.rlim_cur))
        }
        if let startTime {
            exposition.family(
                "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.",
                type: .gauge)
            exposition.sample("process_start_time_seconds", startTime)
        }
    }

    // MARK: - /proc

    private static let ticks = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
    private static let pageSize = Double(max(1, sysconf(Int32(_SC_PAGESIZE))))

    struct Stat {
        var userTicks: UInt64
        var systemTicks: UInt64
        var startTicks: UInt64
        var virtualBytes: UInt64
        var residentPages: UInt64
    }

    /// `/proc/self/stat` (proc(5)): the fields after the command name, which
    /// is in parentheses and may itself hold spaces and parentheses.
    static func readStat() -> Stat? {
        guard let bytes = readFile("/proc/self/stat"), let close = bytes.lastIndex(of: UInt8(ascii: ")")) else {
            return nil
        }
        // Field 3 (state) is the first after ") ".
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " ")).map {
            String(decoding: $0, as: UTF8.self)
        }
        func field(_ number: Int) -> UInt64? {
            let index = number - 3
            return index < fields.count ? UInt64(fields[index].trimmingNewline()) : nil
        }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23),
            let resident = field(24)
        else { return nil }
        return Stat(
            userTicks: user, systemTicks: system, startTicks: start, virtualBytes: virtual, residentPages: resident)
    }

    /// The boot time (`btime` of `/proc/stat`) plus the process' start, in
    /// clock ticks after boot.
    static func readStartTime() -> Double? {
        guard let stat = readStat(), let bytes = readFile("/proc/stat") else { return nil }
        for line in bytes.split(separator: 0x0A) where line.starts(with: Array("btime ".utf8)) {
            guard let boot = Double(String(decoding: line.dropFirst(6), as: UTF8.self)) else { return nil }
            return boot + Double(stat.startTicks) / ticks
        }
        return nil
    }

    /// Entries of `/proc/self/fd` (the descriptor that lists them included,
    /// as the other client libraries count).
    static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { count += 1 }
        }
        return count
    }

    /// A whole (small) file; `/proc` files report size 0, so read to the end.
    static func readFile(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > 1 << 20 { return nil }
        }
    }
}

extension String {
    fileprivate func trimmingNewline() -> Substring {
        var slice = self[...]
        while slice.last == "\n" { slice.removeLast() }
        return slice
    }
}

extension MetricsRegistry {
    /// Adds the standard process metrics (`process_cpu_seconds_total`,
    /// `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
    /// `process_open_fds`, `process_max_fds`, `process_start_time_seconds`),
    /// read from `/proc` when scraped.
    public func registerProcessMetrics() {
        add(ProcessMetrics())
    }
}
