import Foundation
import JSON

/// A Prometheus text exposition as `prometheus_client`'s parser (PyPI, the
/// one Python scrapers use) read it: `Tests/Interop/parse_metrics.py`, run
/// with the test venv's Python like `PyJWT` (`make venv`; no venv is an
/// error that says so, never a skip).
public struct PrometheusExposition: Sendable {
    /// One sample line.
    public struct Sample: Sendable, CustomStringConvertible {
        /// As written (`gatehouse_logins_total`, `..._bucket`).
        public let name: String
        public let labels: [String: String]
        public let value: Double

        public var description: String {
            let labelText = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }
            return "\(name){\(labelText.joined(separator: ","))} \(value)"
        }
    }

    /// One family: its `# TYPE`, `# HELP` and samples.
    public struct Family: Sendable {
        /// As the parser names it: a counter without its `_total`.
        public let name: String
        /// `counter`, `gauge`, `histogram`, ...
        public let type: String
        public let help: String
        public let samples: [Sample]
    }

    public let families: [Family]

    /// Parses `text`; throws if the parser refuses it (or finds a sample
    /// outside its family, a family twice, no HELP, a broken histogram).
    public static func parse(_ text: String, timeout: Double = 30) async throws -> PrometheusExposition {
        let run = try await PyJWT.runScript("parse_metrics.py", arguments: [], input: text, timeout: timeout)
        guard run.status == 0 else {
            if run.status == 3 {
                throw PyJWTError("prometheus_client is missing from \(PyJWT.python): run `make venv`\n\(run.errors)")
            }
            throw PyJWTError("parse_metrics.py refused the exposition (status \(run.status)): \(run.errors)")
        }
        guard let object = try? JSONValue.parse(run.output).objectValue,
            let families = object["families"]?.arrayValue
        else { throw PyJWTError("parse_metrics.py printed something else than its JSON: \(run.output)") }
        return PrometheusExposition(
            families: try families.map { family in
                guard let name = family["name"]?.stringValue, let type = family["type"]?.stringValue,
                    let help = family["help"]?.stringValue, let samples = family["samples"]?.arrayValue
                else { throw PyJWTError("parse_metrics.py: a family without name, type, help or samples") }
                return Family(
                    name: name, type: type, help: help,
                    samples: try samples.map { sample in
                        guard let sampleName = sample["name"]?.stringValue,
                            let labels = sample["labels"]?.objectValue, let value = sample["value"]
                        else { throw PyJWTError("parse_metrics.py: a sample without name, labels or value") }
                        let number: Double
                        switch value {
                        case .number(let parsed): number = parsed
                        case .string("+Inf"): number = .infinity
                        case .string("-Inf"): number = -.infinity
                        default: number = .nan
                        }
                        var labelValues: [String: String] = [:]
                        for member in labels.members { labelValues[member.key] = member.value.stringValue ?? "" }
                        return Sample(name: sampleName, labels: labelValues, value: number)
                    })
            })
    }

    /// The family one of whose samples is named `sampleName` exactly, or the
    /// family named so (a counter's family is named without `_total`).
    public func family(of sampleName: String) -> Family? {
        families.first { family in family.samples.contains { $0.name == sampleName } }
            ?? families.first { $0.name == sampleName || $0.name + "_total" == sampleName }
    }

    /// Every sample named `name` whose labels include `labels`.
    public func samples(_ name: String, _ labels: [String: String] = [:]) -> [Sample] {
        families.flatMap(\.samples).filter { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }
    }

    /// The value of the one sample named `name` with exactly `labels`; nil if there is none.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        families.flatMap(\.samples).first { $0.name == name && $0.labels == labels }?.value
    }
}

extension JSONValue {
    fileprivate subscript(key: String) -> JSONValue? { objectValue?[key] }
}
