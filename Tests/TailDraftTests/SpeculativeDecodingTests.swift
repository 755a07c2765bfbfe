import Testing
@testable import TailDraft

/// Speculative decoding on the real SmolLM2 model must give exactly plain decoding's output.
@Suite(.serialized) struct SpeculativeDecodingTests {
    static let prompts = [
        "The capital of France is",
        "Hello, my name is",
        "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
        "Copy this list exactly: apple, banana, cherry, apple, banana, cherry, apple,",
        "<|im_start|>user\nRepeat after me: the quick brown fox jumps over the lazy dog.<|im_end|>\n<|im_start|>assistant\n",
        "1, 2, 3, 4, 5, 6, 7, 8,",
        "{\"name\": \"Alice\", \"age\": 30, \"skills\": [\"python\", \"c++\"], \"address\": {",
    ]

    func plain(_ engine: Engine, _ prompt: [Int32], maxTokens: Int, stopTokens: Set<Int32>? = nil,
               sampling: SamplingParameters = .greedy) throws -> GenerationResult {
        try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: maxTokens, sampling: sampling, stopTokens: stopTokens))
    }

    func speculative(_ engine: Engine, _ prompt: [Int32], drafter: any Drafter, maxTokens: Int, budget: Int = 8,
                     maxDepth: Int = 8, adaptive: Bool = false, stopTokens: Set<Int32>? = nil,
                     sampling: SamplingParameters = .greedy, onText: ((String) -> Void)? = nil) throws -> GenerationResult {
        let speculation = SpeculationOptions(drafter: drafter, budget: budget, maxDepth: maxDepth, adaptive: adaptive)
        let options = GenerationOptions(maxTokens: maxTokens, sampling: sampling, stopTokens: stopTokens, speculation: speculation)
        return try engine.generator.generate(promptTokens: prompt, options: options, onText: onText)
    }

    @Test(arguments: prompts)
    func lookupEqualsPlainGreedy(_ text: String) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt(text)
            let reference = try plain(engine, prompt, maxTokens: 96)
            let result = try speculative(engine, prompt, drafter: LookupDrafter(), maxTokens: 96)
            #expect(result.tokenIds == reference.tokenIds)
            #expect(result.finishReason == reference.finishReason)
            let statistics = try #require(result.speculation)
            #expect(statistics.emitted == result.tokenIds.count - 1, "the first token comes from the prefill")
            #expect(statistics.accepted <= statistics.drafted)
        }
    }

    @Test(arguments: [1, 4, 8])
    func oracleChainsAcceptEverything(_ depth: Int) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt("Hello, my name is")
            let reference = try plain(engine, prompt, maxTokens: 64)
            let oracle = ReplayDrafter(recording: prompt + reference.tokenIds, vocabularySize: engine.model.config.vocabularySize)
            let result = try speculative(engine, prompt, drafter: oracle, maxTokens: 64, budget: depth, maxDepth: depth)
            #expect(result.tokenIds == reference.tokenIds)
            let statistics = try #require(result.speculation)
            #expect(statistics.acceptanceRate == 1, "drafted \(statistics.drafted), accepted \(statistics.accepted)")
            #expect(statistics.steps <= (63 + depth) / (depth + 1) + 1)
        }
    }

    @Test func adversarialDraftsAreAllRejected() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            for text in ["The capital of France is", "1, 2, 3, 4, 5, 6, 7, 8,"] {
                let prompt = engine.tokenizePrompt(text)
                let reference = try plain(engine, prompt, maxTokens: 32)
                let adversary = ReplayDrafter(recording: prompt + reference.tokenIds, vocabularySize: engine.model.config.vocabularySize, corrupt: true)
                let result = try speculative(engine, prompt, drafter: adversary, maxTokens: 32, budget: 4, maxDepth: 4)
                #expect(result.tokenIds == reference.tokenIds)
                let statistics = try #require(result.speculation)
                #expect(statistics.accepted == 0)
                #expect(statistics.drafted > 0)
                #expect(statistics.emitted == statistics.steps, "one token per step when nothing is accepted")
            }
        }
    }

    /// The true continuation is always the second child, so every node's logits must come
    /// from its own root-to-node path, not from its sibling.
    @Test func treeWithWrongFirstChildEqualsPlain() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt("Hello, my name is")
            let reference = try plain(engine, prompt, maxTokens: 200)
            let oracle = ReplayDrafter(recording: prompt + reference.tokenIds, vocabularySize: engine.model.config.vocabularySize, wrongFirst: true)
            let result = try speculative(engine, prompt, drafter: oracle, maxTokens: 200, budget: 8, maxDepth: 4)
            #expect(result.tokenIds == reference.tokenIds)
            let statistics = try #require(result.speculation)
            // Every step but the last (cut by the token limit) accepts its 4 true nodes.
            #expect(statistics.acceptedAtDepth.count == 4)
            for depth in 0..<4 {
                #expect(statistics.acceptedAtDepth[depth] >= statistics.steps - 1, "depth \(depth + 1): \(statistics)")
            }
            #expect(statistics.drafted == 8 * statistics.steps)
        }
    }

    @Test(arguments: [5, 10])
    func plantedStopInsideBlockEndsThere(_ index: Int) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt("The capital of France is")
            let free = try plain(engine, prompt, maxTokens: 40)
            let stop = free.tokenIds[index]
            let reference = try plain(engine, prompt, maxTokens: 40, stopTokens: [stop])
            let oracle = ReplayDrafter(recording: prompt + free.tokenIds, vocabularySize: engine.model.config.vocabularySize)
            var streamed = ""
            let result = try speculative(engine, prompt, drafter: oracle, maxTokens: 40, stopTokens: [stop]) { streamed += $0 }
            #expect(result.tokenIds == reference.tokenIds)
            #expect(result.finishReason == .stop)
            #expect(streamed == reference.text)
            #expect(result.speculation?.emitted == result.tokenIds.count - 1)
        }
    }

    @Test(arguments: [1, 7, 13])
    func maxTokensInsideBlockIsExact(_ limit: Int) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt("Hello, my name is")
            let reference = try plain(engine, prompt, maxTokens: 64)
            let oracle = ReplayDrafter(recording: prompt + reference.tokenIds, vocabularySize: engine.model.config.vocabularySize)
            let result = try speculative(engine, prompt, drafter: oracle, maxTokens: limit)
            #expect(result.tokenIds == Array(reference.tokenIds.prefix(limit)))
            #expect(result.finishReason == .length)
        }
    }

    /// Near the end of the context, drafts are clamped so no position passes it.
    @Test(arguments: [40, 47, 63])
    func contextLimitClampsDrafts(_ promptLength: Int) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine(contextLength: 64)
            let prompt = Array(engine.tokenizePrompt(String(repeating: "one two three four ", count: 20)).prefix(promptLength))
            let reference = try plain(engine, prompt, maxTokens: 100)
            let result = try speculative(engine, prompt, drafter: LookupDrafter(), maxTokens: 100, budget: 8, maxDepth: 8)
            #expect(result.tokenIds == reference.tokenIds)
            #expect(result.finishReason == reference.finishReason)
            #expect(result.tokenIds.count == 64 - promptLength + 1)
        }
    }

    /// With the gate on, rejected drafts switch speculation off; scoring drafts against plain
    /// output switches it back on when they start to match, and the output never changes.
    @Test func gateSwitchesOffAndOnWithoutChangingOutput() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt("Hello, my name is")
            let reference = try plain(engine, prompt, maxTokens: 64)
            let vocabulary = engine.model.config.vocabularySize
            let adversary = ReplayDrafter(recording: prompt + reference.tokenIds, vocabularySize: vocabulary, corrupt: true)
            let gated = try speculative(engine, prompt, drafter: adversary, maxTokens: 64, budget: 3, adaptive: true)
            #expect(gated.tokenIds == reference.tokenIds)
            let off = try #require(gated.speculation)
            #expect(off.switchedOffSteps > off.steps / 2, "wrong drafts should switch speculation off: \(off)")

            let oracle = ReplayDrafter(recording: prompt + reference.tokenIds, vocabularySize: vocabulary)
            let open = try speculative(engine, prompt, drafter: oracle, maxTokens: 64, budget: 3, adaptive: true)
            #expect(open.tokenIds == reference.tokenIds)
            #expect(open.speculation?.switchedOffSteps == 0, "accepted drafts keep speculation on")
        }
    }

    @Test func sampledSpeculationIsReproducible() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt("Once upon a time")
            let sampling = SamplingParameters(temperature: 0.8, seed: 42)
            let first = try speculative(engine, prompt, drafter: LookupDrafter(), maxTokens: 48, sampling: sampling)
            let second = try speculative(engine, prompt, drafter: LookupDrafter(), maxTokens: 48, sampling: sampling)
            #expect(first.tokenIds == second.tokenIds)
            #expect(first.tokenIds.count == 48 || first.finishReason == .stop)
        }
    }
}

/// After speculative steps with rejections and compaction, the KV cache must hold exactly
/// what a plain prefill of the committed tokens writes.
@Suite(.serialized) struct SpeculativeRollbackTests {
    @Test(arguments: [1, 2, 31, 32, 33, 64])
    func cacheEqualsRebuiltPrefix(_ promptLength: Int) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine(contextLength: 256)
            let text = String(repeating: "alpha beta gamma delta epsilon ", count: 20)
            let prompt = Array(engine.tokenizePrompt(text).prefix(promptLength))
            let options = GenerationOptions(maxTokens: 64, speculation: SpeculationOptions(drafter: LookupDrafter(), budget: 4, adaptive: false))
            let result = try engine.generator.generate(promptTokens: prompt, options: options)
            let plain = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 64))
            #expect(result.tokenIds == plain.tokenIds)

            // Rerun speculation so the generator's cache keeps its final state, then rebuild.
            _ = try engine.generator.generate(promptTokens: prompt, options: options)
            let cache = engine.generator.cache
            let returned = prompt + result.tokenIds
            #expect(cache.count <= returned.count, "the cache holds no token beyond the output")
            #expect(cache.count >= returned.count - 1, "only the last token may be left unrun")
            let committed = Array(returned.prefix(cache.count))
            let rebuilt = KVCache(config: engine.model.config, capacity: 256)
            _ = try engine.model.forward(.causal(tokens: committed, startPosition: 0, logitRows: []), caches: [rebuilt])
            let bytes = committed.count * cache.bytesPerSlot
            for layer in [0, engine.model.config.layerCount - 1] {
                // Compared as a Bool so a failure does not diff thousands of bytes.
                let keysEqual = UnsafeRawBufferPointer(start: cache.keys(layer: layer), count: bytes)
                    .elementsEqual(UnsafeRawBufferPointer(start: rebuilt.keys(layer: layer), count: bytes))
                #expect(keysEqual, "prompt \(promptLength), layer \(layer) keys")
                let valuesEqual = UnsafeRawBufferPointer(start: cache.values(layer: layer), count: bytes)
                    .elementsEqual(UnsafeRawBufferPointer(start: rebuilt.values(layer: layer), count: bytes))
                #expect(valuesEqual, "prompt \(promptLength), layer \(layer) values")
            }
        }
    }
}

@Suite struct LookupDrafterTests {
    @Test func draftsWhatFollowedTheLongestEarlierMatch() {
        // "5 6" occurred before, followed by "7 8 9".
        let context: [Int32] = [1, 5, 6, 7, 8, 9, 2, 5, 6]
        let tree = LookupDrafter().propose(context: context, budget: 3, maxDepth: 4)
        #expect(tree.checkInvariants() == nil)
        #expect(Array(tree.tokens.dropFirst()) == [7, 8, 9])
    }

    @Test func resumesAfterAOneTokenSubstitution() {
        // The output copies "1 2 3 4 5 6" with 3 replaced by 30: after 30, only the newest
        // token could match, so the drafter resumes after the replaced token.
        let context: [Int32] = [1, 2, 3, 4, 5, 6, 0, 1, 2, 30]
        let tree = LookupDrafter().propose(context: context, budget: 3, maxDepth: 4)
        #expect(tree.checkInvariants() == nil)
        #expect(tree.children(of: 0).map { tree.tokens[$0] } == [4])
        #expect(Array(tree.tokens.dropFirst()) == [4, 5, 6])
        let off = LookupDrafter(substitutionMatch: 0).propose(context: context, budget: 3, maxDepth: 4)
        #expect(off.draftedCount == 0, "without the substitution rule nothing matches")
    }

    @Test func substitutionLeavesRoomForThePlainMatch() {
        // 30 occurred before, followed by 7, so the plain match keeps one of the three nodes.
        let context: [Int32] = [30, 7, 1, 2, 3, 4, 5, 6, 0, 1, 2, 30]
        let tree = LookupDrafter().propose(context: context, budget: 3, maxDepth: 4)
        #expect(tree.checkInvariants() == nil)
        #expect(tree.children(of: 0).map { tree.tokens[$0] } == [4, 7])
        #expect(tree.draftedCount == 3)
    }

    @Test func plainMatchGoesFirstOnceItHitsMore() {
        let context: [Int32] = [30, 7, 1, 2, 3, 4, 5, 6, 0, 1, 2, 30]
        let drafter = LookupDrafter()
        // The target keeps choosing 7, the plain match's token, not the guess's 4.
        for _ in 0..<5 { drafter.observe(context: context, accepted: [], next: 7) }
        #expect(drafter.plainHitRate > drafter.substitutionHitRate)
        let tree = drafter.propose(context: context, budget: 3, maxDepth: 4)
        #expect(tree.checkInvariants() == nil)
        #expect(tree.children(of: 0).map { tree.tokens[$0] } == [7, 4])
        #expect(tree.draftedCount == 3)
    }

    @Test func aLongMatchIsNotSecondGuessed() {
        // "2 3" matches two tokens, so the substitution branch is not added.
        let context: [Int32] = [1, 2, 3, 4, 9, 9, 1, 2, 3]
        let tree = LookupDrafter().propose(context: context, budget: 3, maxDepth: 4)
        #expect(tree.children(of: 0).map { tree.tokens[$0] } == [4])
        #expect(Array(tree.tokens.dropFirst()) == [4, 9, 9])
    }
}

@Suite(.serialized) struct SuffixDrafterTests {
    @Test func treeFollowsFrequentContinuations() {
        let drafter = SuffixDrafter()
        // "1 2 3" is followed by 4 twice and by 5 once; the newest tokens are "1 2 3".
        let context: [Int32] = [1, 2, 3, 4, 9, 1, 2, 3, 4, 8, 1, 2, 3, 5, 7, 1, 2, 3]
        let tree = drafter.propose(context: context, budget: 3, maxDepth: 4)
        #expect(tree.checkInvariants() == nil)
        let rootChildren = tree.children(of: 0).map { tree.tokens[$0] }
        #expect(rootChildren.first == 4, "the most frequent continuation comes first: \(rootChildren)")
        #expect(rootChildren.contains(5))
        #expect(tree.draftedCount == 3)
        let four = tree.children(of: 0).first!
        #expect(abs(tree.drafterProbabilities[four] - 2.0 / 3.0) < 1e-12)
    }

    @Test func historyOfEarlierGenerationsIsUsed() {
        let drafter = SuffixDrafter()
        _ = drafter.propose(context: [10, 11, 12, 13, 14, 15], budget: 4, maxDepth: 4)
        // A new generation that does not extend the previous context archives it.
        let tree = drafter.propose(context: [20, 21, 11, 12], budget: 3, maxDepth: 4)
        #expect(Array(tree.tokens.dropFirst()) == [13, 14, 15])
    }

    @Test(arguments: SpeculativeDecodingTests.prompts.prefix(4))
    func suffixEqualsPlainGreedy(_ text: String) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt(text)
            let reference = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 64))
            let drafter = SuffixDrafter()
            for _ in 0..<2 {
                let options = GenerationOptions(maxTokens: 64, speculation: SpeculationOptions(drafter: drafter, budget: 6, adaptive: false))
                let result = try engine.generator.generate(promptTokens: prompt, options: options)
                #expect(result.tokenIds == reference.tokenIds)
            }
        }
    }
}

@Suite(.serialized) struct AutoDrafterTests {
    @Test func prefersTheDrafterThatIsAccepted() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt("Hello, my name is")
            let reference = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 64))
            let vocabulary = engine.model.config.vocabularySize
            let wrong = ReplayDrafter(recording: prompt + reference.tokenIds, vocabularySize: vocabulary, corrupt: true)
            let right = ReplayDrafter(recording: prompt + reference.tokenIds, vocabularySize: vocabulary)
            let auto = AutoDrafter(drafters: [wrong, right], exploreEvery: 8)
            let options = GenerationOptions(maxTokens: 64, speculation: SpeculationOptions(drafter: auto, budget: 3, adaptive: false))
            let result = try engine.generator.generate(promptTokens: prompt, options: options)
            #expect(result.tokenIds == reference.tokenIds)
            #expect(auto.uses[1] > 3 * auto.uses[0], "uses: \(auto.uses)")
        }
    }
}
