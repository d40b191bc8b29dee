#if canImport(Glibc)
import Glibc
#endif

/// Makes room for `connections` sockets under the process's open-file limit:
/// raises the soft limit (up to the hard one) when it is lower than the
/// connection limit plus a margin for the database, logs and listener.
/// Without this, a default soft limit of 1024 would refuse connections long
/// before `GATEHOUSE_MAX_CONNECTIONS` with a silent `accept` failure.
/// - Returns: the soft limit now in force, or nil if it could not be read.
@discardableResult
func ensureDescriptorLimit(for connections: Int, logger: Logger) -> Int? {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
    let wanted = rlim_t(connections + 64)
    guard limit.rlim_cur < wanted else { return Int(clamping: limit.rlim_cur) }
    var raised = limit
    raised.rlim_cur = min(wanted, limit.rlim_max)
    if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    if limit.rlim_cur < wanted {
        logger.warning(
            "the open-file limit is below the connection limit; connections will be refused sooner",
            ["open_files": String(limit.rlim_cur), "max_connections": String(connections)])
    }
    return Int(clamping: limit.rlim_cur)
}
