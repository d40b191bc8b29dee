import Foundation
import JSON
import Testing

/// Loads the known-answer files in `Vectors/` (each names its source).
enum Vectors {
    struct Missing: Error, CustomStringConvertible {
        let name: String
        var description: String { "vector file \(name).json not found in the test bundle" }
    }

    static func load(_ name: String) throws -> JSONObject {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Vectors") else {
            throw Missing(name: name)
        }
        let data = try Data(contentsOf: url)
        let value = try JSONValue.parse([UInt8](data))
        return try #require(value.objectValue)
    }
}

extension JSONObject {
    func string(_ key: String) throws -> String {
        try #require(self[key]?.stringValue, "vector has no string \"\(key)\"")
    }
}

/// Bytes from lowercase or uppercase hex.
func bytes(hex: String) throws -> [UInt8] {
    let digits = Array(hex.utf8)
    try #require(digits.count % 2 == 0)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    for index in stride(from: 0, to: digits.count, by: 2) {
        let pair = String(decoding: digits[index..<index + 2], as: UTF8.self)
        bytes.append(try #require(UInt8(pair, radix: 16)))
    }
    return bytes
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}
