import Testing
@testable import TailDraft

/// The real SmolLM2 model against llama.cpp's recorded greedy output.
@Suite(.serialized) struct GoldenGreedyTests {
    /// Below this top-1/top-2 logit gap two correct engines may pick different tokens.
    static let nearTie = 0.05

    /// Gap between the largest and second-largest logit.
    static func margin(_ logits: ArraySlice<Float>) -> Double {
        var first = -Float.infinity, second = -Float.infinity
        for value in logits {
            if value > first { second = first; first = value } else if value > second { second = value }
        }
        return Double(first - second)
    }

    @Test(arguments: try GoldenGreedyCase.load())
    func greedyMatchesLlamaCpp(_ golden: GoldenGreedyCase) throws {
        try KernelGate.run { try compareGreedy(golden) }
    }

    private func compareGreedy(_ golden: GoldenGreedyCase) throws {
        let model = try Fixtures.smolLM()
        let cache = KVCache(config: model.config, capacity: 512)
        let prompt = golden.prompt_token_ids
        var output = try model.forward(.causal(tokens: prompt, startPosition: 0, logitRows: [prompt.count - 1]), caches: [cache])

        for (step, expected) in golden.generated_token_ids.enumerated() {
            let logits = output.logits(row: output.logitRows[0])
            let token = Int32(Sampler.argmax(logits))
            if token != expected {
                let theirs = golden.top1_top2_logit_margins[step]
                let ours = Self.margin(logits)
                print("\(golden.id): step \(step) gave \(token), llama.cpp gave \(expected); margins: llama.cpp \(theirs), ours \(ours)")
                #expect(theirs < Self.nearTie || ours < Self.nearTie,
                        "\(golden.id): id differs at step \(step) (ours \(token), llama.cpp \(expected)) where neither margin is a near tie: llama.cpp \(theirs), ours \(ours)")
                return
            }
            if [0, 2, 4].contains(token) { return }
            output = try model.forward(.causal(tokens: [token], startPosition: cache.count, logitRows: [0]), caches: [cache])
        }
    }
}
