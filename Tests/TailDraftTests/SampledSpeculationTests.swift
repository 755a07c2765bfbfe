import Foundation
import Testing
@testable import TailDraft

/// Sampled speculative decoding must leave the output distribution unchanged. On a tiny model
/// (fast enough for thousands of runs) the first generated tokens are counted over many
/// seeds with speculation off and on, and compared with a two-sample chi-square test.
@Suite(.serialized) struct SampledSpeculationTests {
    static let seeds = 2_000
    static let positions = 3

    /// Returns the 0.999 quantile of chi-square with `df` degrees of freedom (Wilson-Hilferty).
    static func chiSquareLimit(df: Int) -> Double {
        let k = Double(df), z = 3.09
        let term = 1 - 2 / (9 * k) + z * (2 / (9 * k)).squareRoot()
        return k * term * term * term
    }

    /// Two-sample chi-square over token counts; bins with fewer than 10 samples in all are
    /// merged, so every expected count is at least 5.
    static func chiSquare(_ a: [Int32: Int], _ b: [Int32: Int]) -> (statistic: Double, df: Int) {
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

    @Test func speculationKeepsSampledDistribution() throws {
        var spec = TinyModelSpec()
        spec.seed = 0x5_0011
        let model = TinyModel(spec: spec)
        try withTemporaryDirectory { directory in
            let path = try model.write(in: directory)
            let engine = try Engine(modelPath: path, threads: 1, contextLength: 64)
            let prompt: [Int32] = [72, 101, 108, 108, 111, 44, 32, 72, 101, 108]
            let sampling = { (seed: UInt64) in SamplingParameters(temperature: 0.5, topK: 8, topP: 1, minP: 0, seed: seed) }

            // The drafter replays a greedy run, so its drafts are the target's likeliest tokens
            // and get accepted often enough to matter.
            let greedy = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 8, stopTokens: []))
            let drafter = ReplayDrafter(recording: prompt + greedy.tokenIds, vocabularySize: spec.vocabularySize)

            var plainCounts = [[Int32: Int]](repeating: [:], count: Self.positions)
            var speculativeCounts = [[Int32: Int]](repeating: [:], count: Self.positions)
            var accepted = 0
            for seed in 0..<UInt64(Self.seeds) {
                let plain = try engine.generator.generate(
                    promptTokens: prompt, options: GenerationOptions(maxTokens: Self.positions, sampling: sampling(seed), stopTokens: []))
                let speculation = SpeculationOptions(drafter: drafter, budget: 3, maxDepth: 3, adaptive: false)
                let speculative = try engine.generator.generate(
                    promptTokens: prompt, options: GenerationOptions(maxTokens: Self.positions, sampling: sampling(seed + 1_000_000),
                                                                     stopTokens: [], speculation: speculation))
                for position in 0..<Self.positions {
                    plainCounts[position][plain.tokenIds[position], default: 0] += 1
                    speculativeCounts[position][speculative.tokenIds[position], default: 0] += 1
                }
                accepted += speculative.speculation?.accepted ?? 0
            }

            #expect(accepted > Self.seeds / 2, "drafts should be accepted often for the test to mean something: \(accepted)")
            for position in 0..<Self.positions {
                let (statistic, df) = Self.chiSquare(plainCounts[position], speculativeCounts[position])
                #expect(statistic < Self.chiSquareLimit(df: df),
                        "position \(position): chi-square \(statistic) with \(df) degrees of freedom, limit \(Self.chiSquareLimit(df: df))")
            }
        }
    }
}
