import Foundation
import Kernels

/// SplitMix64: a small seeded generator, so every random test input can be reproduced from
/// the seed its failure messages print.
struct SplitMix64: RandomNumberGenerator {
    let seed: UInt64
    private var state: UInt64

    init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Draws a float uniformly from `range`.
    mutating func uniform(_ range: ClosedRange<Float>) -> Float {
        Float.random(in: range, using: &self)
    }

    /// Draws `count` floats uniformly from `-scale...scale`.
    mutating func floats(_ count: Int, scale: Float) -> [Float] {
        (0..<count).map { _ in Float.random(in: -scale...scale, using: &self) }
    }
}

/// Serializes every test that runs OpenMP kernels or selects an ISA path.
///
/// The active ISA path is process-wide state in the kernels, and concurrent OpenMP regions
/// from parallel tests would oversubscribe the two cores, so each such test holds this lock
/// for its whole body. Test bodies that take it must be synchronous, so the holder never
/// waits for a thread of the pool it blocks.
enum KernelGate {
    private static let lock = NSLock()

    /// The ISA paths this CPU supports, scalar first.
    static var isaPaths: [Int32] { Array(Int32(TD_ISA_SCALAR.rawValue)...td_isa_best()) }

    /// Runs `body` with the kernels to itself, on `isa` when given, and restores the path
    /// that was active before (the best one, or the one TAILDRAFT_ISA selects).
    static func run<T>(isa: Int32? = nil, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        let previous = td_isa_active()
        defer {
            td_isa_set(previous)
            lock.unlock()
        }
        if let isa { select(isa) }
        return try body()
    }

    /// Selects `isa` inside a `run` body.
    static func select(_ isa: Int32) {
        let status = td_isa_set(isa)
        precondition(status == TD_OK, "td_isa_set(\(isa)) failed with status \(status)")
    }

    static func name(_ isa: Int32) -> String { String(cString: td_isa_name(isa)) }
}

/// Creates a fresh directory under the system temporary directory, passes it to `body` and
/// removes it with everything in it afterwards.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("taildraft-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// The repository root, found from this file's path (Tests/TailDraftTests/Support/...).
let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()

/// The real SmolLM2-135M-Instruct model that the invariance and truncation tests load.
let smolLM2Path: String = repositoryRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

/// Largest |a[i] - b[i]| over two equally long arrays.
func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "length mismatch: \(a.count) vs \(b.count)")
    var result = 0.0
    for i in a.indices { result = max(result, abs(a[i] - b[i])) }
    return result
}

func maxAbs(_ a: [Double]) -> Double {
    a.reduce(0) { max($0, abs($1)) }
}

/// max |a - b| / max |b|: the relative error measure the forward-pass tests use.
func relativeMaxError(_ a: [Double], reference b: [Double]) -> Double {
    maxAbsDifference(a, b) / max(maxAbs(b), .leastNormalMagnitude)
}

/// Describes how two float arrays differ, or returns nil when they have the same length and
/// every element is `==` and has the same bit pattern. Tests assert on this summary rather
/// than on `a == b`, because a failed array comparison makes the test library compute a diff
/// that takes minutes for vocabulary-sized arrays.
func bitwiseDifference(_ a: [Float], _ b: [Float]) -> String? {
    guard a.count == b.count else { return "lengths differ: \(a.count) vs \(b.count)" }
    var first: Int? = nil
    var count = 0
    for i in a.indices where !(a[i] == b[i]) || a[i].bitPattern != b[i].bitPattern {
        if first == nil { first = i }
        count += 1
    }
    guard let first else { return nil }
    return "\(count) of \(a.count) elements differ, first at \(first): \(a[first]) vs \(b[first])"
}

/// `bitwiseDifference` row by row, for lists of logit rows.
func bitwiseDifference(_ a: [[Float]], _ b: [[Float]]) -> String? {
    guard a.count == b.count else { return "row counts differ: \(a.count) vs \(b.count)" }
    for row in a.indices {
        if let difference = bitwiseDifference(a[row], b[row]) { return "row \(row): \(difference)" }
    }
    return nil
}
