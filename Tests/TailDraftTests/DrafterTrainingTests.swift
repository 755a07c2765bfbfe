import Testing
@testable import TailDraft

/// Tiny drafters on tiny random targets: gradients against finite differences, and
/// training that lowers the loss.
@Suite(.serialized) struct DrafterTrainingTests {
    static let targetSpec = TinyModelSpec(layerCount: 1, hiddenSize: 32, headCount: 4, kvHeadCount: 2, feedForwardSize: 48,
                                          vocabularySize: 64, contextLength: 64, seed: 5)
    static let drafterConfig = DrafterConfig(hiddenSize: 32, headCount: 4, kvHeadCount: 2, feedForwardSize: 40,
                                             draftVocabularySize: 16)

    /// Returns a sample of `count` positions with random tokens and hidden states of RMS about 1.
    static func randomSample(count: Int, seed: UInt64, hiddenSize: Int = 32, vocabulary: Int = 16) -> DrafterSample {
        var rng = SplitMix64(seed: seed)
        let tokens = (0..<count).map { _ in Int32.random(in: 0..<Int32(vocabulary), using: &rng) }
        let hidden = rng.floats(count * hiddenSize, scale: 1.7)
        return DrafterSample(tokens: tokens, hidden: hidden, startPosition: 3)
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        try KernelGate.run {
            try TinyModel(spec: Self.targetSpec).withTransformer { model in
                let target = DrafterTarget(model: model)
                let weights = try DrafterWeights.random(config: Self.drafterConfig, target: target, seed: 11)
                let learner = DrafterLearner(initial: weights, target: target)
                let sample = Self.randomSample(count: 7, seed: 3)
                _ = learner.computeGradients(sample)
                let analytic = learner.gradients.array
                let parameters = learner.parameters.pointer
                var rng = SplitMix64(seed: 99)
                // Steps of 1e-2 keep float32 rounding of the loss well below the differences.
                let step: Float = 1e-2

                for tensor in DrafterTensor.allCases {
                    let range = weights.layout.range(tensor, Self.drafterConfig)
                    var worst = 0.0, largest = 0.0
                    for _ in 0..<12 {
                        let index = Int.random(in: range, using: &rng)
                        let saved = parameters[index]
                        parameters[index] = saved + step
                        let plus = learner.evaluate(sample).total
                        parameters[index] = saved - step
                        let minus = learner.evaluate(sample).total
                        parameters[index] = saved
                        let numeric = (plus - minus) / Double(2 * step)
                        let error = abs(numeric - Double(analytic[index])) / max(abs(numeric), abs(Double(analytic[index])), 1e-3)
                        worst = max(worst, error)
                        largest = max(largest, abs(numeric))
                    }
                    #expect(worst < 0.02, "\(tensor): relative gradient error \(worst), seed \(rng.seed)")
                    #expect(largest > 1e-3, "\(tensor): gradients \(largest) are too small to check")
                }
            }
        }
    }

    /// The unrolled step adds its own gradient, in proportion to its weight: doubling the
    /// weight doubles the difference from training without it.
    @Test func unrolledStepAddsWeightedGradient() throws {
        try KernelGate.run {
            try TinyModel(spec: Self.targetSpec).withTransformer { model in
                let target = DrafterTarget(model: model)
                let weights = try DrafterWeights.random(config: Self.drafterConfig, target: target, seed: 4)
                let sample = Self.randomSample(count: 9, seed: 6)
                func gradients(unrolledWeight: Float) -> [Float] {
                    let learner = DrafterLearner(initial: weights, target: target,
                                                 options: DrafterOptimizerOptions(unrolledWeight: unrolledWeight))
                    _ = learner.computeGradients(sample)
                    return learner.gradients.array
                }
                let plain = gradients(unrolledWeight: 0), once = gradients(unrolledWeight: 0.5), twice = gradients(unrolledWeight: 1)
                let added = zip(once, plain).map { Double($0 - $1) }
                let addedTwice = zip(twice, plain).map { Double($0 - $1) }
                let largest = added.map(abs).max() ?? 0
                #expect(largest > 1e-4, "the unrolled step changes the gradient")
                let worst = zip(addedTwice, added).map { abs($0 - 2 * $1) }.max() ?? 0
                #expect(worst < 1e-3 * largest * 2, "largest deviation from twice the added gradient: \(worst) of \(largest)")
            }
        }
    }

    @Test func trainingLowersTheLoss() throws {
        try KernelGate.run {
            try TinyModel(spec: Self.targetSpec).withTransformer { model in
                let target = DrafterTarget(model: model)
                let weights = try DrafterWeights.random(config: Self.drafterConfig, target: target, seed: 2)
                let learner = DrafterLearner(initial: weights, target: target, options: DrafterOptimizerOptions(learningRate: 3e-3))
                let sample = Self.randomSample(count: 12, seed: 8)
                let before = learner.evaluate(sample)
                for _ in 0..<60 { learner.train(on: sample) }
                let after = learner.evaluate(sample)
                #expect(after.total < 0.5 * before.total, "loss went from \(before) to \(after)")
                #expect(learner.step == 60)
                #expect(learner.snapshot().version == 60)
            }
        }
    }

    @Test func vocabularyKeepsMostFrequentTokens() {
        var counts = [Int](repeating: 0, count: 10)
        counts[7] = 5
        counts[2] = 5
        counts[9] = 1
        let vocabulary = DraftVocabulary.mostFrequent(counts: counts, size: 4)
        #expect(vocabulary.tokens == [2, 7, 9, 0], "by count, ties and unseen tokens by increasing id")
        #expect(vocabulary.index(of: 9) == 2)
        #expect(vocabulary.index(of: 5) == nil)
    }

    @Test func smolLMShapeHasAboutFourMillionParameters() {
        let config = DrafterConfig(hiddenSize: 576, headCount: 9, kvHeadCount: 3, feedForwardSize: 1536, draftVocabularySize: 2048)
        #expect((4_150_000...4_250_000).contains(config.parameterCount), "\(config.parameterCount) parameters")
    }
}
