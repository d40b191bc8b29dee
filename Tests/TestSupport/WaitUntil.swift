/// Polls `condition` every `interval` until it holds or `timeout` seconds
/// pass, without blocking a thread.
/// - Returns: whether the condition held in time.
public func waitUntil(
    timeout: Double, interval: Duration = .milliseconds(5), _ condition: () -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
    while !condition() {
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: interval)
    }
    return true
}
