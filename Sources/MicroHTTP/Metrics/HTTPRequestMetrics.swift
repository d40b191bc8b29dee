/// What the server records for every request it answers, by route:
/// `<prefix>_requests_total{route,method,status}` (a counter) and
/// `<prefix>_request_duration_seconds{route}` (a histogram of the time from
/// the request's header section arriving to its response being sent).
///
/// The label sets are bounded: `route` is a registered path, or `unmatched`
/// for every other one; `method` is one of `HTTPMethod.known`, or `other`;
/// `status` is the status sent, or `0` when none was (the client went away,
/// or its connection was cut, before the answer). Every cell is made up front
/// (route x method x common status, per HTTP thread), so recording is index
/// arithmetic and three relaxed atomic adds: no lookup, no lock. Statuses
/// outside the common set are counted in a locked table, off the usual path.
final class HTTPRequestMetrics: MetricFamily {
    /// The `route` label of requests for a path no route is registered for.
    static let unmatchedRoute = "unmatched"
    /// The `method` label of a method outside `methods`.
    static let otherMethod = "other"

    /// The methods with a label of their own (`HTTPMethod.known`), in slot order.
    static let methods: [HTTPMethod] = [
        .get, .head, .post, .put, .patch, .delete, .options, HTTPMethod(rawValue: "CONNECT"),
        HTTPMethod(rawValue: "TRACE"),
    ]

    /// The statuses counted without a lock: those a server commonly sends,
    /// and 0 for none.
    static let commonStatuses: [Int] = [
        0, 100, 101, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 307, 308,
        400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423,
        424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 507, 511,
    ]

    /// Status code to its slot in `commonStatuses`, -1 for the others.
    private static let statusSlots: [Int8] = {
        var slots = [Int8](repeating: -1, count: 600)
        for (slot, status) in commonStatuses.enumerated() { slots[status] = Int8(slot) }
        return slots
    }()

    private let prefix: String
    /// Route labels by route id; the last is `unmatched`.
    let routes: [String]
    let buckets: HistogramBuckets
    private let methodSlots: Int
    private let statusSlots: Int
    /// Requests by [route][method][status slot], then per route the bucket
    /// counts (the last is +Inf) and the duration sum in nanoseconds.
    private let cells: CounterCells
    private let histogramBase: Int
    private let histogramStride: Int
    /// Requests whose status is not in `commonStatuses`.
    private let rare = LockedValue<[RareKey: UInt64]>([:])

    private struct RareKey: Hashable {
        let route: Int
        let method: Int
        let status: Int
    }

    /// - Parameters:
    ///   - prefix: the start of the metric names (`gatehouse_http`).
    ///   - routes: the registered paths in route-id order (`Router.routePaths`).
    ///   - buckets: the duration histogram's bounds.
    ///   - shards: the threads that record (the HTTP threads), each with its
    ///     own cache lines.
    init(prefix: String, routes: [String], buckets: HistogramBuckets = .requestDurations, shards: Int) {
        self.prefix = prefix
        self.routes = routes + [Self.unmatchedRoute]
        self.buckets = buckets
        methodSlots = Self.methods.count + 1
        statusSlots = Self.commonStatuses.count
        histogramBase = self.routes.count * methodSlots * statusSlots
        histogramStride = buckets.bounds.count + 2
        cells = CounterCells(count: histogramBase + self.routes.count * histogramStride, shards: shards)
    }

    /// The route id of requests no route matched.
    var unmatched: Int { routes.count - 1 }

    var names: [String] { [prefix + "_requests_total", prefix + "_request_duration_seconds"] }

    /// The slot of a method: its place in `methods`, or the last for any other.
    @inline(__always)
    static func methodSlot(_ method: HTTPMethod) -> Int {
        switch method.rawValue {
        case "GET": 0
        case "HEAD": 1
        case "POST": 2
        case "PUT": 3
        case "PATCH": 4
        case "DELETE": 5
        case "OPTIONS": 6
        case "CONNECT": 7
        case "TRACE": 8
        default: 9
        }
    }

    /// Counts one request.
    /// - Parameters:
    ///   - route: its route id, or `unmatched`.
    ///   - method: its method slot (`methodSlot(_:)`).
    ///   - status: the status sent, 0 for none.
    ///   - nanoseconds: from its header section to the end of its response.
    @inline(__always)
    func record(route: Int, method: Int, status: Int, nanoseconds: UInt64) {
        let route = route >= 0 && route < routes.count ? route : unmatched
        let slot = status >= 0 && status < 600 ? Int(Self.statusSlots[status]) : -1
        if slot >= 0 {
            cells.add((route &* methodSlots &+ method) &* statusSlots &+ slot)
        } else {
            rare.withLock { $0[RareKey(route: route, method: method, status: status), default: 0] += 1 }
        }
        let histogram = histogramBase &+ route &* histogramStride
        cells.add(histogram &+ buckets.index(nanoseconds: nanoseconds))
        cells.add(histogram &+ histogramStride &- 1, nanoseconds)
    }

    /// Requests counted for a route, method slot and status so far.
    func requests(route: Int, method: Int, status: Int) -> UInt64 {
        let slot = status >= 0 && status < 600 ? Int(Self.statusSlots[status]) : -1
        guard slot >= 0 else { return rare.withLock { $0[RareKey(route: route, method: method, status: status)] ?? 0 } }
        return cells.value((route * methodSlots + method) * statusSlots + slot)
    }

    private func methodLabel(_ slot: Int) -> String {
        slot < Self.methods.count ? Self.methods[slot].rawValue : Self.otherMethod
    }

    /// Only the series that have counted something: a route, method and
    /// status never seen has no line (and no zero).
    func write(to exposition: inout TextExposition) {
        let requestsName = prefix + "_requests_total"
        exposition.family(
            requestsName, help: "HTTP requests answered, by route, method and status (0: no response was sent).",
            type: .counter)
        var rows: [(route: Int, method: Int, status: Int, count: UInt64)] = []
        for route in routes.indices {
            for method in 0..<methodSlots {
                for (slot, status) in Self.commonStatuses.enumerated() {
                    let count = cells.value((route * methodSlots + method) * statusSlots + slot)
                    if count > 0 { rows.append((route, method, status, count)) }
                }
            }
        }
        for (key, count) in rare.withLock({ $0 }) { rows.append((key.route, key.method, key.status, count)) }
        rows.sort { ($0.route, $0.method, $0.status) < ($1.route, $1.method, $1.status) }
        for row in rows {
            exposition.sample(
                requestsName,
                [("route", routes[row.route]), ("method", methodLabel(row.method)), ("status", String(row.status))],
                row.count)
        }

        let durationName = prefix + "_request_duration_seconds"
        exposition.family(
            durationName, help: "Time from a request's header section to the end of its response, by route.",
            type: .histogram)
        for route in routes.indices {
            let base = histogramBase + route * histogramStride
            let counts = (0...buckets.bounds.count).map { cells.value(base + $0) }
            guard counts.contains(where: { $0 > 0 }) else { continue }
            buckets.write(
                durationName, labels: [("route", routes[route])], counts: counts,
                sumNanoseconds: cells.value(base + histogramStride - 1), to: &exposition)
        }
    }
}

extension MetricsRegistry {
    /// Registers the per-route request metrics of a server.
    func register(_ metrics: HTTPRequestMetrics) { add(metrics) }
}
