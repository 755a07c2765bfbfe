import Foundation
import Testing
@testable import TailDraft

/// Sampled speculative decoding must leave the output distribution unchanged. On a tiny model
/// (fast enough for thousands of runs) the first generated tokens are counted over many
/// seeds with speculation off and on, and compared with a two-sample chi-square test.
@Suite(.serialized) struct SampledSpeculationTests {
    static let seeds = 2_000
    static let positions = 3

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

            var plainCounts = PositionCounts(positions: Self.positions)
            var speculativeCounts = PositionCounts(positions: Self.positions)
            var accepted = 0
            for seed in 0..<UInt64(Self.seeds) {
                let plain = try engine.generator.generate(
                    promptTokens: prompt, options: GenerationOptions(maxTokens: Self.positions, sampling: sampling(seed), stopTokens: []))
                let speculation = SpeculationOptions(drafter: drafter, budget: 3, maxDepth: 3, adaptive: false)
                let speculative = try engine.generator.generate(
                    promptTokens: prompt, options: GenerationOptions(maxTokens: Self.positions, sampling: sampling(seed + 1_000_000),
                                                                     stopTokens: [], speculation: speculation))
                plainCounts.add(plain.tokenIds)
                speculativeCounts.add(speculative.tokenIds)
                accepted += speculative.speculation?.accepted ?? 0
            }

            #expect(accepted > Self.seeds / 2, "drafts should be accepted often for the test to mean something: \(accepted)")
            for position in 0..<Self.positions {
                let (statistic, df) = chiSquare(plainCounts.counts[position], speculativeCounts.counts[position])
                #expect(statistic < chiSquareLimit(df: df),
                        "position \(position): chi-square \(statistic) with \(df) degrees of freedom, limit \(chiSquareLimit(df: df))")
            }
        }
    }
}
