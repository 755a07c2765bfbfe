import Foundation

/// Returns the 0.999 quantile of chi-square with `df` degrees of freedom, by the
/// Wilson-Hilferty approximation, so a statistic above it has p < 0.001.
func chiSquareLimit(df: Int) -> Double {
    let k = Double(df), z = 3.09
    let term = 1 - 2 / (9 * k) + z * (2 / (9 * k)).squareRoot()
    return k * term * term * term
}

/// Two-sample chi-square over token counts of two samples of the same size. Tokens counted
/// fewer than 10 times in both samples together are merged into one bin, so every other
/// bin's expected count per sample is at least 5.
func chiSquare(_ a: [Int32: Int], _ b: [Int32: Int]) -> (statistic: Double, df: Int) {
    let sizes = (a.values.reduce(0, +), b.values.reduce(0, +))
    // With equal sizes, each sample's expected count in a bin is half the bin's total.
    precondition(sizes.0 == sizes.1, "the two samples must have the same size, got \(sizes.0) and \(sizes.1)")
    var bins: [(Int, Int)] = []
    var rest = (0, 0)
    for token in Set(a.keys).union(b.keys) {
        let pair = (a[token] ?? 0, b[token] ?? 0)
        if pair.0 + pair.1 < 10 { rest = (rest.0 + pair.0, rest.1 + pair.1) } else { bins.append(pair) }
    }
    if rest.0 + rest.1 > 0 { bins.append(rest) }
    let statistic = bins.reduce(0.0) { $0 + pow(Double($1.0 - $1.1), 2) / Double($1.0 + $1.1) }
    return (statistic, max(1, bins.count - 1))
}

/// Token counts per response position, for comparing two ways of sampling position by position.
struct PositionCounts {
    private(set) var counts: [[Int32: Int]]

    init(positions: Int) {
        counts = Array(repeating: [:], count: positions)
    }

    /// Counts the first `counts.count` tokens of one response.
    /// - Precondition: the response has at least that many tokens.
    mutating func add(_ tokens: [Int32]) {
        precondition(tokens.count >= counts.count, "a response of \(tokens.count) tokens cannot fill \(counts.count) positions")
        for position in counts.indices { counts[position][tokens[position], default: 0] += 1 }
    }
}
