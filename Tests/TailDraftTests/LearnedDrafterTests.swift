import Foundation
import Testing
@testable import TailDraft

/// Writes `spec` as a GGUF file, opens it as an engine and passes the engine to `body`.
func withTinyEngine<T>(_ spec: TinyModelSpec, contextLength: Int = 128, _ body: (Engine) throws -> T) throws -> T {
    try withTemporaryDirectory { directory in
        let path = try TinyModel(spec: spec).write(in: directory)
        return try body(Engine(modelPath: path, threads: 2, contextLength: contextLength))
    }
}

/// Greedy output of `engine` for `prompt`, with no stop token so runs have a fixed length.
func plainGreedy(_ engine: Engine, _ prompt: [Int32], maxTokens: Int) throws -> GenerationResult {
    try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: maxTokens, stopTokens: []))
}

func speculativeGreedy(_ engine: Engine, _ prompt: [Int32], drafter: any Drafter, maxTokens: Int, budget: Int,
                       maxDepth: Int = 8) throws -> GenerationResult {
    let speculation = SpeculationOptions(drafter: drafter, budget: budget, maxDepth: maxDepth, adaptive: false)
    let options = GenerationOptions(maxTokens: maxTokens, stopTokens: [], speculation: speculation)
    return try engine.generator.generate(promptTokens: prompt, options: options)
}

/// The learned drafter on tiny random targets: speculative output equals plain greedy
/// output, the drafter's state rolls back exactly, and a trained drafter is accepted.
@Suite(.serialized) struct LearnedDrafterTests {
    static let spec = TinyModelSpec(layerCount: 2, hiddenSize: 64, headCount: 4, kvHeadCount: 2, feedForwardSize: 96,
                                    vocabularySize: 256, contextLength: 128, seed: 21)
    static let config = DrafterConfig(hiddenSize: 64, headCount: 4, kvHeadCount: 2, feedForwardSize: 64, draftVocabularySize: 64)

    static func prompts(count: Int, length: Int, seed: UInt64) -> [[Int32]] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in (0..<length).map { _ in Int32.random(in: 3..<64, using: &rng) } }
    }

    /// Returns the target's final hidden states for `tokens` (hiddenSize floats per position)
    /// from one pass over a fresh cache, as the trainer records them.
    static func hiddenStates(_ engine: Engine, _ tokens: [Int32]) throws -> [Float] {
        try engine.model.forward(.causal(tokens: tokens, startPosition: 0, logitRows: []),
                                 caches: [KVCache(config: engine.model.config, capacity: 64)]).hidden
    }

    @Test(arguments: [1, 3, 8])
    func randomDrafterEqualsPlainGreedy(_ budget: Int) throws {
        try KernelGate.run {
            try withTinyEngine(Self.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let drafter = LearnedDrafter(weights: try .random(config: Self.config, target: target, seed: 4), target: target)
                for prompt in Self.prompts(count: 3, length: 9, seed: 17) {
                    let reference = try plainGreedy(engine, prompt, maxTokens: 60)
                    let result = try speculativeGreedy(engine, prompt, drafter: drafter, maxTokens: 60, budget: budget)
                    #expect(result.tokenIds == reference.tokenIds, "budget \(budget), prompt \(prompt)")
                    let statistics = try #require(result.speculation)
                    #expect(statistics.drafted > 0, "the drafter proposed nothing")
                }
            }
        }
    }

    /// A drafter that followed a whole generation step by step has the same state as one
    /// that sees all hidden states at once, so both propose the same tree, twice in a row.
    /// With a window of 8 positions the fresh drafter skips the slots before it, and with one
    /// longer than the context it computes them all.
    @Test(arguments: [8, 64])
    func incrementalStateEqualsFreshState(window: Int) throws {
        try KernelGate.run {
            try withTinyEngine(Self.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let weights = try DrafterWeights.random(config: Self.config, target: target, seed: 9)
                let followed = LearnedDrafter(weights: weights, target: target)
                followed.attentionWindow = window
                let prompt = Self.prompts(count: 1, length: 7, seed: 5)[0]
                let result = try speculativeGreedy(engine, prompt, drafter: followed, maxTokens: 40, budget: 6)
                let context = prompt + result.tokenIds

                // Another thread count and one catch-up batch must not change any result.
                let fresh = LearnedDrafter(weights: weights, target: target, threads: 2)
                fresh.attentionWindow = window
                let committed = Array(context.dropLast())
                let pass = try engine.model.forward(.causal(tokens: committed, startPosition: 0, logitRows: []),
                                                    caches: [KVCache(config: engine.model.config, capacity: 128)])
                fresh.observeHidden(tokens: committed[...], hidden: pass.hidden[...], startPosition: 0)

                let expected = fresh.propose(context: context, budget: 8, maxDepth: 4)
                #expect(expected.draftedCount == 8)
                #expect(followed.propose(context: context, budget: 8, maxDepth: 4) == expected)
                #expect(followed.propose(context: context, budget: 8, maxDepth: 4) == expected, "a second draft must start from the same state")
                #expect(followed.cache.count == committed.count, "drafted slots are rolled back")
                #expect(fresh.caughtUpPositions == min(window, committed.count), "the catch-up skips slots no row attends to")
            }
        }
    }

    /// With an attention window of W positions, the tokens and hidden states before the last
    /// W committed positions do not change the drafted tree.
    @Test func windowedDrafterIgnoresPositionsBeforeItsWindow() throws {
        try KernelGate.run {
            try withTinyEngine(Self.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let weights = try DrafterWeights.random(config: Self.config, target: target, seed: 12)
                let window = 8
                let first = Self.prompts(count: 1, length: 30, seed: 71)[0]
                // The second context shares only the tokens from position 21 on. Slot t reads
                // token t + 1 and the hidden state at t, so slots 0 to 20 lie before the window
                // of the root's slot 28.
                let second = Self.prompts(count: 1, length: 21, seed: 72)[0] + first[21...]
                let committed = first.count - 1, windowStart = committed - window
                let h = Self.spec.hiddenSize
                let firstHidden = try Self.hiddenStates(engine, Array(first.prefix(committed)))
                // Real hidden states of the second context before the window, the first's inside it.
                let secondHidden = Array(try Self.hiddenStates(engine, Array(second.prefix(committed))).prefix(windowStart * h))
                    + firstHidden[(windowStart * h)...]

                var trees: [DraftTree] = []
                for (context, hidden) in [(first, firstHidden), (second, secondHidden)] {
                    let drafter = LearnedDrafter(weights: weights, target: target)
                    drafter.attentionWindow = window
                    drafter.observeHidden(tokens: context.prefix(committed), hidden: hidden[...], startPosition: 0)
                    trees.append(drafter.propose(context: context, budget: 6, maxDepth: 3))
                    #expect(drafter.caughtUpPositions == window)
                }
                #expect(trees[0].draftedCount == 6)
                #expect(trees[0] == trees[1])
            }
        }
    }

    /// Trained on the target's own greedy output, the drafter's drafts are accepted, and the
    /// output still equals plain decoding.
    @Test func trainedDrafterIsAccepted() throws {
        try KernelGate.run {
            try withTinyEngine(Self.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let prompts = Self.prompts(count: 4, length: 8, seed: 33)
                var samples: [DrafterSample] = []
                var references: [[Int32]] = []
                for prompt in prompts {
                    let reference = try plainGreedy(engine, prompt, maxTokens: 48)
                    references.append(reference.tokenIds)
                    let sequence = prompt + reference.tokenIds
                    let pass = try engine.model.forward(.causal(tokens: sequence, startPosition: 0, logitRows: []),
                                                        caches: [KVCache(config: engine.model.config, capacity: 128)])
                    samples.append(DrafterSample(tokens: sequence, hidden: pass.hidden, startPosition: 0))
                }
                var counts = [Int](repeating: 0, count: Self.spec.vocabularySize)
                for sample in samples { for token in sample.tokens { counts[Int(token)] += 1 } }
                let vocabulary = DraftVocabulary.mostFrequent(counts: counts, size: Self.config.draftVocabularySize)
                let initial = try DrafterWeights.random(config: Self.config, target: target, seed: 3, vocabulary: vocabulary)
                let learner = DrafterLearner(initial: initial, target: target, options: DrafterOptimizerOptions(learningRate: 3e-3))
                for _ in 0..<40 { for sample in samples { learner.train(on: sample) } }

                let drafter = LearnedDrafter(weights: learner.snapshot(), target: target)
                var drafted = 0, accepted = 0
                for (prompt, reference) in zip(prompts, references) {
                    let result = try speculativeGreedy(engine, prompt, drafter: drafter, maxTokens: 48, budget: 4, maxDepth: 4)
                    #expect(result.tokenIds == reference)
                    drafted += result.speculation?.drafted ?? 0
                    accepted += result.speculation?.accepted ?? 0
                }
                let rate = Double(accepted) / Double(max(1, drafted))
                #expect(rate > 0.6, "accepted \(accepted) of \(drafted) drafts after training on the same text")
            }
        }
    }

    /// Predicted states and logits of `rows` causal rows of random input, from the F32
    /// parameters or from the snapshot's Q8_0 copy.
    func forwardOutputs(_ weights: DrafterWeights, rows m: Int, quantized: Bool) -> (predicted: [Float], logits: [Float]) {
        let c = weights.config
        let network = DrafterNetwork(config: c)
        var rng = SplitMix64(seed: 12)
        let input = network.floats(.input, rows: m)
        for i in 0..<(m * 2 * c.hiddenSize) { input[i] = Float.random(in: -1..<1, using: &rng) }
        let keys = UnsafeMutablePointer<Float>.allocate(capacity: m * c.kvDim), values = UnsafeMutablePointer<Float>.allocate(capacity: m * c.kvDim)
        defer { keys.deallocate(); values.deallocate() }
        var offsets: [Int32] = [0], slots: [Int32] = []
        for row in 0..<m {
            slots.append(contentsOf: 0...Int32(row))
            offsets.append(Int32(slots.count))
        }
        let span = DrafterNetwork.AttentionSpan(keys: keys, values: values, firstSlot: 0, slotOffsets: offsets, slots: slots)
        network.forward(weights, rows: m, positions: (0..<m).map { Int32($0) }, attention: span, logitsFrom: 0,
                        inference: quantized ? weights.inference : nil)
        return (Array(UnsafeBufferPointer(start: network.floats(.predicted, rows: m), count: m * c.hiddenSize)),
                Array(UnsafeBufferPointer(start: network.floats(.logits, rows: m), count: m * c.draftVocabularySize)))
    }

    /// The Q8_0 copy covers every matrix and the head, and its forward pass stays within a
    /// few percent of the F32 one (relative to the largest magnitude).
    @Test func quantizedForwardIsCloseToF32() throws {
        try KernelGate.run {
            try withTinyEngine(Self.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let weights = try DrafterWeights.random(config: Self.config, target: target, seed: 10)
                let inference = try #require(weights.inference)
                for tensor in DrafterTensor.allCases {
                    #expect((inference.data(tensor) != nil) == !tensor.isNorm, "\(tensor)")
                }
                #expect(inference.head != nil)
                let exact = forwardOutputs(weights, rows: 5, quantized: false)
                let quantized = forwardOutputs(weights, rows: 5, quantized: true)
                #expect(exact.logits != quantized.logits, "the quantized path must actually run")
                for (name, a, b) in [("predicted", exact.predicted, quantized.predicted), ("logits", exact.logits, quantized.logits)] {
                    let scale = a.map(abs).max()!
                    let error = zip(a, b).map { abs($0 - $1) }.max()!
                    #expect(error <= 0.05 * scale, "\(name): largest error \(error) against largest value \(scale)")
                }
            }
        }
    }

    /// Speculative output equals plain greedy output whether drafting reads the Q8_0 copy or
    /// the F32 parameters, also when a matrix (here the MLP's down projection, 40 columns)
    /// has no Q8_0 copy and stays F32.
    @Test(arguments: [64, 40])
    func quantizedDrafterEqualsPlainGreedy(_ feedForwardSize: Int) throws {
        try KernelGate.run {
            try withTinyEngine(Self.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                var config = Self.config
                config.feedForwardSize = feedForwardSize
                let weights = try DrafterWeights.random(config: config, target: target, seed: 5)
                #expect((weights.inference?.data(.down) != nil) == (feedForwardSize % 32 == 0))
                for quantized in [true, false] {
                    let drafter = LearnedDrafter(weights: weights, target: target)
                    drafter.usesQuantizedWeights = quantized
                    for prompt in Self.prompts(count: 2, length: 9, seed: 23) {
                        let reference = try plainGreedy(engine, prompt, maxTokens: 50)
                        let result = try speculativeGreedy(engine, prompt, drafter: drafter, maxTokens: 50, budget: 6)
                        #expect(result.tokenIds == reference.tokenIds, "quantized \(quantized), prompt \(prompt)")
                        #expect((result.speculation?.drafted ?? 0) > 0)
                    }
                }
            }
        }
    }

    @Test func autoDrafterForwardsHiddenStates() throws {
        try KernelGate.run {
            try withTinyEngine(Self.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let learned = LearnedDrafter(weights: try .random(config: Self.config, target: target, seed: 6), target: target)
                let auto = AutoDrafter(drafters: [SuffixDrafter(), learned], exploreEvery: 2)
                #expect(auto.observesHiddenStates)
                let prompt = Self.prompts(count: 1, length: 10, seed: 8)[0]
                let reference = try plainGreedy(engine, prompt, maxTokens: 50)
                let result = try speculativeGreedy(engine, prompt, drafter: auto, maxTokens: 50, budget: 4)
                #expect(result.tokenIds == reference.tokenIds)
                #expect(auto.uses[1] > 0, "the learned drafter drafted at least once: \(auto.uses)")
            }
        }
    }

    @Test(arguments: SpeculativeDecodingTests.prompts.prefix(3))
    func smolLMRandomDrafterEqualsPlain(_ text: String) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let target = DrafterTarget(model: engine.model)
            let config = DrafterConfig(target: engine.model.config)
            let drafter = LearnedDrafter(weights: try .random(config: config, target: target, seed: 1), target: target)
            let prompt = engine.tokenizePrompt(text)
            let reference = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 48))
            let speculation = SpeculationOptions(drafter: drafter, budget: 4, adaptive: false)
            let result = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 48, speculation: speculation))
            #expect(result.tokenIds == reference.tokenIds)
            #expect(result.finishReason == reference.finishReason)
        }
    }

    @Test func sampledSpeculationIsReproducible() throws {
        try KernelGate.run {
            try withTinyEngine(Self.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let weights = try DrafterWeights.random(config: Self.config, target: target, seed: 14)
                let prompt = Self.prompts(count: 1, length: 6, seed: 2)[0]
                var runs: [[Int32]] = []
                for _ in 0..<2 {
                    let speculation = SpeculationOptions(drafter: LearnedDrafter(weights: weights, target: target), budget: 4, adaptive: false)
                    let options = GenerationOptions(maxTokens: 40, sampling: SamplingParameters(temperature: 0.9, seed: 77),
                                                    stopTokens: [], speculation: speculation)
                    runs.append(try engine.generator.generate(promptTokens: prompt, options: options).tokenIds)
                }
                #expect(runs[0] == runs[1])
                #expect(runs[0].count == 40)
            }
        }
    }
}
