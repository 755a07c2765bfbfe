import TailDraft

/// A JSON value, written with stable key order so output is easy to diff and test.
enum JSON {
    case number(Double)
    case int(Int)
    case string(String)
    case bool(Bool)
    case array([JSON])
    /// Keys in insertion order.
    case object([(String, JSON)])

    func serialized() -> String {
        switch self {
        case let .number(value):
            return value.isFinite ? String(value) : "null"
        case let .int(value):
            return String(value)
        case let .string(value):
            return Self.quote(value)
        case let .bool(value):
            return value ? "true" : "false"
        case let .array(items):
            return "[" + items.map { $0.serialized() }.joined(separator: ", ") + "]"
        case let .object(entries):
            return "{" + entries.map { "\(Self.quote($0.0)): \($0.1.serialized())" }.joined(separator: ", ") + "}"
        }
    }

    /// Returns `text` as a JSON string literal, escaped by the library's JSON writer.
    static func quote(_ text: String) -> String {
        JSONValue.string(text).serialized()
    }

    static func ids(_ ids: [Int32]) -> JSON { .array(ids.map { .int(Int($0)) }) }
}

/// Formats `value` with `digits` decimals, e.g. `fixed(3.14159, 1)` is "3.1".
func fixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return String(value) }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    let whole = Int(rounded / scale)
    let fraction = Int(rounded - Double(whole) * scale)
    let sign = value < 0 && rounded > 0 ? "-" : ""
    guard digits > 0 else { return sign + String(whole) }
    let fractionText = String(fraction)
    return sign + String(whole) + "." + String(repeating: "0", count: digits - fractionText.count) + fractionText
}
