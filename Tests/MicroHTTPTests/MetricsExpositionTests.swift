import Foundation
import Testing

@testable import MicroHTTP

/// Label values for the tests: raw values in `allCases` order, as required.
enum Flavour: Int, MetricLabelValue {
    case plain, quoted, newline

    var labelValue: String {
        switch self {
        case .plain: "plain"
        case .quoted: #"say "hi" \ bye"#
        case .newline: "two\nlines"
        }
    }
}

@Suite("Metrics: text exposition 0.0.4")
struct MetricsExpositionTests {
    @Test func countersGaugesAndHistogramsAreWrittenWithHelpTypeAndSamples() {
        let registry = MetricsRegistry()
        let counter = Counter()
        counter.increment()
        counter.increment(by: 4)
        registry.register(counter, name: "test_events_total", help: "Events seen.")
        registry.gauge("test_depth", help: "Jobs waiting.") { 3 }
        registry.gauge("test_keys", help: "Keys by state.", label: "state") { [("active", 1), ("pending", 0)] }
        let histogram = Histogram(buckets: [0.001, 0.01])
        histogram.observe(nanoseconds: 1_000_000)  // exactly on a bound: counted in it (le)
        histogram.observe(seconds: 0.005)
        histogram.observe(seconds: 2)
        registry.register(histogram, name: "test_duration_seconds", help: "How long.")
        #expect(
            registry.exposition() == """
                # HELP test_events_total Events seen.
                # TYPE test_events_total counter
                test_events_total 5
                # HELP test_depth Jobs waiting.
                # TYPE test_depth gauge
                test_depth 3
                # HELP test_keys Keys by state.
                # TYPE test_keys gauge
                test_keys{state="active"} 1
                test_keys{state="pending"} 0
                # HELP test_duration_seconds How long.
                # TYPE test_duration_seconds histogram
                test_duration_seconds_bucket{le="0.001"} 1
                test_duration_seconds_bucket{le="0.01"} 2
                test_duration_seconds_bucket{le="+Inf"} 3
                test_duration_seconds_sum 2.006
                test_duration_seconds_count 3

                """)
        #expect(histogram.count == 3)
        #expect(abs(histogram.sum - 2.006) < 1e-9)
        #expect(registry.names == ["test_events_total", "test_depth", "test_keys", "test_duration_seconds"])
    }

    @Test func labelledCountersExportEveryValueFromZeroAndEscapeLabelValues() {
        let registry = MetricsRegistry()
        let counters = LabelledCounters<Flavour>()
        counters.increment(.quoted)
        counters.increment(.newline, by: 2)
        registry.register(
            counters, name: "test_flavours_total", help: "Flavours, with \\ and\nlines.", label: "flavour")
        #expect(
            registry.exposition() == #"""
                # HELP test_flavours_total Flavours, with \\ and\nlines.
                # TYPE test_flavours_total counter
                test_flavours_total{flavour="plain"} 0
                test_flavours_total{flavour="say \"hi\" \\ bye"} 1
                test_flavours_total{flavour="two\nlines"} 2

                """#)
        #expect(counters.value(.newline) == 2)
    }

    @Test(
        "numbers are written as the format reads them",
        arguments: [
            (0.0, "0"), (3.0, "3"), (-2.0, "-2"), (0.25, "0.25"), (0.0001, "0.0001"), (1e-05, "1e-05"),
            (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"), (Double.nan, "NaN"), (1e20, "1e+20"),
        ])
    func numbers(_ value: Double, _ text: String) {
        #expect(TextExposition.format(value) == text)
    }

    @Test(
        "metric and label names follow the format's rules",
        arguments: [
            ("gatehouse_http_requests_total", true, true), ("a:b", true, false), ("_x", true, true),
            ("9lives", false, false), ("", false, false), ("has-dash", false, false), ("__reserved", true, false),
            ("sp ace", false, false),
        ])
    func names(_ name: String, _ validMetric: Bool, _ validLabel: Bool) {
        #expect(TextExposition.isValidMetricName(name) == validMetric)
        #expect(TextExposition.isValidLabelName(name) == validLabel)
    }

    @Test func bucketsFollowLeInclusively() {
        let buckets = HistogramBuckets.requestDurations
        #expect(buckets.bounds.first == 0.0001)
        #expect(buckets.bounds.last == 10)
        #expect(buckets.index(nanoseconds: 0) == 0)
        #expect(buckets.index(nanoseconds: 100_000) == 0)
        #expect(buckets.index(nanoseconds: 100_001) == 1)
        #expect(buckets.index(nanoseconds: 10_000_000_000) == buckets.bounds.count - 1)
        #expect(buckets.index(nanoseconds: 10_000_000_001) == buckets.bounds.count)
    }

    /// Eight threads add a million each, to one counter and to a labelled
    /// set: nothing is lost (and ThreadSanitizer sees only atomics).
    @Test func concurrentAddsAreNeverLost() async {
        let counter = Counter()
        let counters = LabelledCounters<Flavour>()
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<8 {
                group.addTask {
                    await blockingThread {
                        for _ in 0..<125_000 {
                            counter.increment()
                            counters.increment(Flavour(rawValue: thread % 3) ?? .plain)
                        }
                    }
                }
            }
        }
        #expect(counter.value == 1_000_000)
        #expect(Flavour.allCases.map(counters.value).reduce(0, +) == 1_000_000)
        #expect(counters.value(.plain) == 3 * 125_000)
    }

    @Test func requestMetricsCountByRouteMethodAndStatusWithBoundedLabels() {
        let metrics = HTTPRequestMetrics(prefix: "t_http", routes: ["/a", "/b"], shards: 2)
        let get = HTTPRequestMetrics.methodSlot(.get)
        metrics.record(route: 0, method: get, status: 200, nanoseconds: 50_000)
        metrics.record(route: 0, method: get, status: 200, nanoseconds: 3_000_000)
        metrics.record(route: 1, method: HTTPRequestMetrics.methodSlot(.post), status: 0, nanoseconds: 1)
        let brew = HTTPRequestMetrics.methodSlot(HTTPMethod(rawValue: "BREW"))
        metrics.record(route: -1, method: brew, status: 501, nanoseconds: 1)
        metrics.record(route: 7, method: get, status: 599, nanoseconds: 1)  // unknown route id, rare status
        var exposition = TextExposition()
        metrics.write(to: &exposition)
        let lines = exposition.text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"t_http_requests_total{route="/a",method="GET",status="200"} 2"#))
        #expect(lines.contains(#"t_http_requests_total{route="/b",method="POST",status="0"} 1"#))
        #expect(lines.contains(#"t_http_requests_total{route="unmatched",method="other",status="501"} 1"#))
        #expect(lines.contains(#"t_http_requests_total{route="unmatched",method="GET",status="599"} 1"#))
        #expect(lines.filter { $0.hasPrefix("t_http_requests_total{") }.count == 4)
        #expect(lines.contains(#"t_http_request_duration_seconds_bucket{route="/a",le="0.0001"} 1"#))
        #expect(lines.contains(#"t_http_request_duration_seconds_bucket{route="/a",le="0.0025"} 1"#))
        #expect(lines.contains(#"t_http_request_duration_seconds_bucket{route="/a",le="0.005"} 2"#))
        #expect(lines.contains(#"t_http_request_duration_seconds_count{route="/a"} 2"#))
        #expect(lines.contains(#"t_http_request_duration_seconds_sum{route="/a"} 0.00305"#))
        #expect(lines.contains(#"t_http_request_duration_seconds_count{route="unmatched"} 2"#))
        #expect(metrics.requests(route: 0, method: get, status: 200) == 2)
    }

    @Test func processMetricsArePlausible() throws {
        let registry = MetricsRegistry()
        registry.registerProcessMetrics()
        let text = registry.exposition()
        func value(_ name: String) throws -> Double {
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(name + " ") })
            return try #require(Double(line.split(separator: " ")[1]))
        }
        #expect(try value("process_resident_memory_bytes") > 1_000_000)
        #expect(try value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"))
        #expect(try value("process_open_fds") >= 3)
        #expect(try value("process_max_fds") >= value("process_open_fds"))
        #expect(try value("process_cpu_seconds_total") > 0)
        let start = try value("process_start_time_seconds")
        let now = Date().timeIntervalSince1970
        #expect(start <= now + 1 && start > now - 86_400)
    }
}

/// Runs `body` on a thread of its own (so eight of them really run at once).
func blockingThread(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        Thread {
            body()
            continuation.resume()
        }.start()
    }
}
