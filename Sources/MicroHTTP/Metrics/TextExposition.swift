/// Writes the Prometheus text exposition format, version 0.0.4: per metric
/// family a `# HELP` and a `# TYPE` line, then its samples,
/// `name{label="value",...} value`, one per line.
///
/// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
struct TextExposition {
    /// The media type of the format, for `Content-Type`.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private(set) var text = ""

    init() { text.reserveCapacity(16 * 1024) }

    /// The `# HELP` and `# TYPE` lines that start a family.
    mutating func family(_ name: String, help: String, type: MetricType) {
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type.rawValue)\n"
    }

    /// One sample line without labels.
    mutating func sample(_ name: String, _ value: Double) {
        sample(name, [], formatted: Self.format(value))
    }

    /// One sample line.
    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        sample(name, labels, formatted: Self.format(value))
    }

    /// One sample line with an integer value (counters, bucket counts).
    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: UInt64) {
        sample(name, labels, formatted: String(value))
    }

    private mutating func sample(_ name: String, _ labels: [(String, String)], formatted value: String) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (index, label) in labels.enumerated() {
                if index > 0 { text += "," }
                text += label.0 + "=\"" + Self.escapeLabelValue(label.1) + "\""
            }
            text += "}"
        }
        text += " " + value + "\n"
    }

    /// A float as the format writes it: `NaN`, `+Inf`, `-Inf`, a whole
    /// number without a fraction, else Swift's shortest exact form (`0.00025`, `1e-05`).
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// A label value: `\`, `"` and line feeds escaped.
    static func escapeLabelValue(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == 0x0A })
        else { return value }
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// A help text: `\` and line feeds escaped.
    static func escapeHelp(_ help: String) -> String {
        guard help.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == 0x0A }) else { return help }
        var escaped = ""
        for character in help.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// Whether `name` may name a metric: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    static func isValidMetricName(_ name: String) -> Bool {
        isName(name, colons: true)
    }

    /// Whether `name` may name a label: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting
    /// with `__` (reserved for Prometheus itself).
    static func isValidLabelName(_ name: String) -> Bool {
        isName(name, colons: false) && !name.hasPrefix("__")
    }

    private static func isName(_ name: String, colons: Bool) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                true
            case UInt8(ascii: ":"): colons
            default: false
            }
        }
    }
}

/// The `# TYPE` of a metric family.
enum MetricType: String, Sendable {
    case counter, gauge, histogram
}
