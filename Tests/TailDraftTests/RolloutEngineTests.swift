import Foundation
import Testing
@testable import TailDraft

/// Loads a tiny random model as an engine and runs `body` with it, for rollouts fast enough
/// to compare with `generate` response by response.
private func withTinyEngine<T>(seed: UInt64 = 0x70_0001, contextLength: Int = 128, _ body: (Engine) throws -> T) throws -> T {
    var spec = TinyModelSpec()
    spec.seed = seed
    return try withTemporaryDirectory { directory in
        let path = try TinyModel(spec: spec).write(in: directory)
        let engine = try Engine(modelPath: path, threads: 2, contextLength: contextLength)
        return try KernelGate.run { try body(engine) }
    }
}

/// Prompts of different lengths, so sequences join and leave the batch at different passes.
private let tinyPrompts: [RolloutPrompt] = [
    RolloutPrompt(id: .string("hello"), content: .text("Hello, tiny model!")),
    RolloutPrompt(id: .int(2), content: .text("abcabcabcabc")),
    RolloutPrompt(id: .string("long"), content: .text("The cat sat on the mat, and then the cat sat on the mat again.")),
    RolloutPrompt(id: .string("x"), content: .text("x")),
    RolloutPrompt(id: .string("chat"), content: .chat([ChatMessage(role: "user", content: "Count: 1 2 3")])),
]

/// Tokens that end about one response in twelve early, so lengths vary when sampling.
private let tinyStops: Set<Int32> = Set((100..<120).map(Int32.init))

/// Runs a rollout and returns its responses by (prompt index, sample index) and its statistics.
private func rollout(_ engine: Engine, _ requests: [RolloutRequest], options: RolloutOptions,
                     step: Int = 0) throws -> ([String: RolloutResponse], RolloutStepStatistics, RolloutEngine) {
    let rollout = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
    var responses: [String: RolloutResponse] = [:]
    let statistics = try rollout.run(requests, step: step) { response in
        responses["\(response.request.promptIndex)/\(response.request.sampleIndex)"] = response
    }
    return (responses, statistics, rollout)
}

/// Returns `generate`'s result for one request with the seed the rollout derives for it.
private func reference(_ engine: Engine, _ request: RolloutRequest, options: RolloutOptions, step: Int = 0) throws -> GenerationResult {
    var sampling = options.sampling
    sampling.seed = RolloutSeed.response(seed: options.seed, step: step, promptIndex: request.promptIndex, sampleIndex: request.sampleIndex)
    return try engine.generator.generate(promptTokens: request.promptTokens,
                                         options: GenerationOptions(maxTokens: options.maxTokens, sampling: sampling, stopTokens: options.stopTokens))
}

private let broadSampling = SamplingParameters(temperature: 1.0, topK: 0, topP: 1, minP: 0)

@Suite(.serialized) struct RolloutEngineTests {
    @Test(arguments: [SamplingParameters.greedy, broadSampling])
    func responsesEqualGeneratePerResponse(_ sampling: SamplingParameters) throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 3, tokenizer: engine.tokenizer)
            // Three running sequences and 7-token prefill chunks make sequences join mid-run
            // and share passes with other sequences' prompt chunks.
            let options = RolloutOptions(maxTokens: 40, sampling: sampling, seed: 11, stopTokens: tinyStops,
                                         maxRunningSequences: 3, prefillChunk: 7)
            let (responses, statistics, _) = try rollout(engine, requests, options: options)
            #expect(responses.count == requests.count)
            #expect(statistics.peakRunningSequences == 3)
            for request in requests {
                let key = "\(request.promptIndex)/\(request.sampleIndex)"
                let response = try #require(responses[key])
                let expected = try reference(engine, request, options: options)
                #expect(response.tokenIds == expected.tokenIds, "response \(key)")
                #expect(response.finishReason == expected.finishReason, "response \(key)")
                #expect(response.text == expected.text, "response \(key)")
            }
            if !sampling.isGreedy {
                let lengths = Set(responses.values.map(\.tokenIds.count))
                #expect(lengths.count > 3, "stop tokens should make lengths vary: \(lengths.sorted())")
            }
        }
    }

    /// With a drafter trainer attached, every position a sequence runs through the model
    /// reaches the trainer once, with speculation in the tail or not. Those are the prompt and
    /// each emitted token that a later pass runs: all but a length-limited response's last one.
    @Test(arguments: [RolloutSpeculation.Mode.none, .suffix])
    func trainerReceivesEveryCommittedPosition(_ mode: RolloutSpeculation.Mode) throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            let options = RolloutOptions(maxTokens: 30, sampling: .greedy, seed: 5, stopTokens: tinyStops,
                                         maxRunningSequences: 3, prefillChunk: 7,
                                         speculation: RolloutSpeculation(mode: mode, tailThreshold: 3))
            let target = DrafterTarget(model: engine.model)
            let weights = try DrafterWeights.random(config: DrafterConfig(target: engine.model.config), target: target)
            let trainer = DrafterTrainer(initial: weights, target: target)
            let rolloutEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
            rolloutEngine.drafterTrainer = trainer
            var expected = 0
            _ = try rolloutEngine.run(requests) { response in
                expected += response.request.promptTokens.count + response.tokenIds.count - (response.finishReason == .stop ? 0 : 1)
            }
            trainer.runOnce()
            #expect(trainer.statistics.positionsDropped == 0)
            #expect(trainer.statistics.positionsReceived == expected)
        }
    }

    /// The trainer is paused in passes outside the tail by default, so a large batch keeps
    /// the memory bandwidth, and trains through every pass when it has cores of its own.
    @Test(arguments: [false, true])
    func trainerPausesOutsideTail(_ duringPasses: Bool) throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            let options = RolloutOptions(maxTokens: 12, sampling: .greedy, seed: 5, maxRunningSequences: 3, prefillChunk: 7,
                                         speculation: RolloutSpeculation(mode: .none, tailThreshold: 1))
            let target = DrafterTarget(model: engine.model)
            let weights = try DrafterWeights.random(config: DrafterConfig(target: engine.model.config), target: target)
            let rolloutEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
            rolloutEngine.drafterTrainer = DrafterTrainer(initial: weights, target: target)
            rolloutEngine.trainsInTail = false
            rolloutEngine.trainsDuringPasses = duringPasses
            rolloutEngine.trainingWindow = 0
            var pausedInLargePasses: Set<Bool> = []
            _ = try rolloutEngine.run(requests, onResponse: { _ in }, onProgress: { progress in
                // The progress of a pass reports the running count after it; a pass with two or
                // more sequences still running had at least that many.
                if progress.runningSequences >= 2 { pausedInLargePasses.insert(rolloutEngine.drafterTrainer!.isPaused) }
            })
            #expect(pausedInLargePasses == [!duringPasses])
        }
    }

    /// In learned mode every sequence drafts with its own learned drafter, fed with its hidden
    /// states, and switches to the trainer's newer weights between passes. Greedy responses
    /// stay those of a rollout without speculation.
    @Test func learnedModeKeepsGreedyResponses() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            func options(_ mode: RolloutSpeculation.Mode) -> RolloutOptions {
                RolloutOptions(maxTokens: 30, sampling: .greedy, seed: 3, stopTokens: tinyStops, maxRunningSequences: 3,
                               prefillChunk: 7, speculation: RolloutSpeculation(mode: mode, tailThreshold: 3))
            }
            let (plain, _, _) = try rollout(engine, requests, options: options(.none))

            let target = DrafterTarget(model: engine.model)
            let weights = try DrafterWeights.random(config: DrafterConfig(target: engine.model.config), target: target)
            let trainer = DrafterTrainer(initial: weights, target: target)
            let learnedEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options(.learned))
            #expect(throws: RolloutError.self) { try learnedEngine.run(requests) { _ in } }
            learnedEngine.drafterTrainer = trainer
            learnedEngine.trainsInTail = true
            learnedEngine.useLearnedDrafter(weights: weights, target: target)
            var learned: [String: RolloutResponse] = [:]
            var passes = 0
            let statistics = try learnedEngine.run(requests, onResponse: { response in
                learned["\(response.request.promptIndex)/\(response.request.sampleIndex)"] = response
            }, onProgress: { _ in
                // Train between passes, so snapshots arrive while sequences draft.
                passes += 1
                if passes % 4 == 0 { trainer.runOnce() }
            })
            #expect(statistics.speculation.drafted > 0, "the learned drafters proposed drafts")
            #expect(trainer.statistics.snapshotsPosted > 0)
            for (key, response) in plain {
                #expect(learned[key]?.tokenIds == response.tokenIds, "response \(key)")
            }
        }
    }

    /// With learned-drafter weights, `auto` also has arms that draft with each sequence's
    /// learned drafter alone and merged into the suffix drafter's trees. The bandit pulls
    /// them, and greedy responses stay those of a rollout without speculation.
    @Test func autoWithLearnedArmsKeepsGreedyResponses() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            let arms = SpeculationStrategy.arms(drafters: [.suffix, .learned, .merged], budgets: [3])
            func options(_ mode: RolloutSpeculation.Mode) -> RolloutOptions {
                RolloutOptions(maxTokens: 30, sampling: .greedy, seed: 3, stopTokens: tinyStops, maxRunningSequences: 3,
                               prefillChunk: 7, speculation: RolloutSpeculation(mode: mode, tailThreshold: 3, arms: arms))
            }
            let (plain, _, _) = try rollout(engine, requests, options: options(.none))

            let target = DrafterTarget(model: engine.model)
            let weights = try DrafterWeights.random(config: DrafterConfig(target: engine.model.config), target: target)
            let autoEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options(.auto))
            #expect(throws: RolloutError.self) { try autoEngine.run(requests) { _ in } }
            autoEngine.useLearnedDrafter(weights: weights, target: target)
            var responses: [String: RolloutResponse] = [:]
            let statistics = try autoEngine.run(requests) { response in
                responses["\(response.request.promptIndex)/\(response.request.sampleIndex)"] = response
            }
            #expect(statistics.speculation.drafted > 0)
            for name in ["learned/3", "merged/3"] {
                let index = try #require(arms.firstIndex { $0.description == name })
                let pulls = autoEngine.bandit.buckets.values.reduce(0) { $0 + $1.arms[index].pulls }
                #expect(pulls > 0, "arm \(name) was pulled")
            }
            for (key, response) in plain {
                #expect(responses[key]?.tokenIds == response.tokenIds, "response \(key)")
            }
        }
    }

    /// With a trainer and every core running inference, tail passes try one inference thread
    /// fewer so the trainer trains on the freed core. Responses stay those of a rollout
    /// without a trainer, and the model's thread count is restored after each pass.
    @Test func tailSharesACoreWithTheTrainer() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            // Every pass is a tail pass, because no more than three sequences run.
            let options = RolloutOptions(maxTokens: 20, sampling: .greedy, seed: 3, stopTokens: tinyStops, maxRunningSequences: 3,
                                         prefillChunk: 7, speculation: RolloutSpeculation(mode: .none, tailThreshold: 3))
            let (plain, _, _) = try rollout(engine, requests, options: options)

            let target = DrafterTarget(model: engine.model)
            let weights = try DrafterWeights.random(config: DrafterConfig(target: engine.model.config), target: target)
            let rolloutEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
            rolloutEngine.drafterTrainer = DrafterTrainer(initial: weights, target: target)
            rolloutEngine.trainsInTail = false
            rolloutEngine.trainingWindow = 0
            // A tolerance of 1 hands the core over once both ways are measured.
            rolloutEngine.coreSharing = CoreSharing(configuration: .init(tolerance: 1, samples: 2))
            var responses: [String: RolloutResponse] = [:]
            var trainingPasses = 0
            let statistics = try rolloutEngine.run(requests, onResponse: { response in
                responses["\(response.request.promptIndex)/\(response.request.sampleIndex)"] = response
            }, onProgress: { progress in
                if progress.trainerTraining { trainingPasses += 1 }
            })
            let shared = statistics.timeline.filter(\.sharedCore)
            #expect(!shared.isEmpty)
            #expect(shared.allSatisfy { $0.inferenceThreads == 1 })
            #expect(statistics.timeline.filter { !$0.sharedCore }.allSatisfy { $0.inferenceThreads == 2 })
            #expect(trainingPasses == shared.count)
            #expect(statistics.sharedCoreSeconds > 0)
            #expect(rolloutEngine.coreSharing?.records.values.contains { $0.handsOver == true } == true)
            #expect(engine.model.threads == 2)
            for (key, response) in plain {
                #expect(responses[key]?.tokenIds == response.tokenIds, "response \(key)")
            }
        }
    }

    @Test func laterStepsUseTheirOwnSeeds() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(Array(tinyPrompts.prefix(2)), samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            let options = RolloutOptions(maxTokens: 24, sampling: broadSampling, seed: 5, stopTokens: tinyStops)
            let (responses, _, _) = try rollout(engine, requests, options: options, step: 2)
            for request in requests {
                let response = try #require(responses["\(request.promptIndex)/\(request.sampleIndex)"])
                #expect(response.step == 2)
                #expect(response.tokenIds == (try reference(engine, request, options: options, step: 2)).tokenIds)
            }
        }
    }

    /// Near the end of a short context a response stops as `generate` stops: the token that
    /// fills the context is returned and never run.
    @Test func contextEndMatchesGenerate() throws {
        try withTinyEngine(contextLength: 24) { engine in
            let shortPrompts = [tinyPrompts[0], tinyPrompts[1], tinyPrompts[3]]
            let requests = try RolloutRequest.expand(shortPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            var options = RolloutOptions(maxTokens: 100, sampling: .greedy, stopTokens: [], contextLength: 24)
            for mode in [RolloutSpeculation.Mode.none, .lookup, .auto] {
                options.speculation = RolloutSpeculation(mode: mode, tailThreshold: 100)
                let (responses, _, _) = try rollout(engine, requests, options: options)
                for request in requests {
                    let response = try #require(responses["\(request.promptIndex)/\(request.sampleIndex)"])
                    let expected = try reference(engine, request, options: options)
                    #expect(response.tokenIds == expected.tokenIds, "\(mode), prompt \(request.promptIndex)")
                    #expect(response.tokenIds.count == 24 - request.promptTokens.count + 1, "\(mode), prompt \(request.promptIndex)")
                    #expect(response.finishReason == .length)
                }
            }
        }
    }

    @Test func kvBudgetBoundsRunningSequences() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            var options = RolloutOptions(maxTokens: 16, sampling: .greedy)
            let capacity = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options).sequenceCapacity(for: requests)
            options.kvBudgetTokens = 2 * capacity + capacity / 2
            let (responses, statistics, _) = try rollout(engine, requests, options: options)
            #expect(responses.count == requests.count)
            #expect(statistics.peakRunningSequences == 2)
            #expect(statistics.timeline.allSatisfy { $0.runningSequences <= 2 })
            let cacheBytes = KVCache(config: engine.model.config, capacity: capacity).byteCount
            #expect(statistics.kvCacheBytes == 2 * cacheBytes, "finished sequences' caches are reused, never added")
        }
    }

    @Test func failedWriteKeepsCachesForNextRun() throws {
        struct WriteFailed: Error {}
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            let options = RolloutOptions(maxTokens: 16, sampling: .greedy, maxRunningSequences: 4)
            let rolloutEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
            var written = 0
            #expect(throws: WriteFailed.self) {
                try rolloutEngine.run(requests) { _ in
                    written += 1
                    if written == 3 { throw WriteFailed() }
                }
            }
            let statistics = try rolloutEngine.run(requests) { _ in }
            #expect(statistics.responses == requests.count)
            let capacity = rolloutEngine.sequenceCapacity(for: requests)
            let cacheBytes = KVCache(config: engine.model.config, capacity: capacity).byteCount
            #expect(statistics.kvCacheBytes == 4 * cacheBytes, "the first run's caches are reused")
        }
    }

    @Test func kvBudgetBelowOneSequenceIsRejected() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 1, tokenizer: engine.tokenizer)
            let options = RolloutOptions(maxTokens: 16, kvBudgetTokens: 10)
            let rolloutEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
            let needed = rolloutEngine.sequenceCapacity(for: requests)
            #expect(throws: RolloutError.kvBudgetTooSmall(budgetTokens: 10, sequenceTokens: needed)) {
                try rolloutEngine.run(requests) { _ in }
            }
            #expect(RolloutError.kvBudgetTooSmall(budgetTokens: 10, sequenceTokens: needed).description.contains("at least \(needed)"))
        }
    }

    @Test func finishedSequencesLeaveTheBatchAtOnce() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 4, tokenizer: engine.tokenizer)
            let options = RolloutOptions(maxTokens: 30, sampling: broadSampling, seed: 3, stopTokens: tinyStops, maxRunningSequences: 64)
            let (responses, statistics, _) = try rollout(engine, requests, options: options)
            // Every pass after the last admission runs exactly the sequences not yet finished.
            var finishedBefore = 0
            let finishTimes = responses.values.map(\.finishedSeconds).sorted()
            for entry in statistics.timeline where entry.waitingRequests == 0 {
                finishedBefore = finishTimes.filter { $0 <= entry.startSeconds }.count
                #expect(entry.runningSequences == requests.count - finishedBefore)
            }
            #expect(statistics.timeline.last?.runningSequences ?? 0 < requests.count, "the batch should shrink")
            #expect(statistics.responseLengths.count == requests.count)
        }
    }

    @Test func invalidOptionsAreRejected() throws {
        try withTinyEngine { engine in
            let cases: [(RolloutOptions, String)] = [
                (RolloutOptions(maxRunningSequences: 0), "max running sequences"),
                (RolloutOptions(prefillChunk: 0), "prefill chunk"),
                (RolloutOptions(contextLength: 1000), "context length"),
                (RolloutOptions(speculation: RolloutSpeculation(tailThreshold: 0)), "tail threshold"),
                (RolloutOptions(sampling: SamplingParameters(temperature: -1)), "temperature"),
            ]
            for (options, name) in cases {
                do {
                    _ = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
                    Issue.record("expected \(name) to be rejected")
                } catch {
                    #expect("\(error)".contains(name), "\(error)")
                }
            }
        }
    }
}

/// Speculation in the tail must not change greedy output, and must verify the trees of
/// several sequences in one forward pass.
@Suite(.serialized) struct RolloutSpeculationTests {
    @Test(arguments: [RolloutSpeculation.Mode.lookup, .suffix, .auto])
    func greedyOutputEqualsSpeculationOff(_ mode: RolloutSpeculation.Mode) throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            var options = RolloutOptions(maxTokens: 48, sampling: .greedy, stopTokens: tinyStops, maxRunningSequences: 6)
            let (plain, _, _) = try rollout(engine, requests, options: options)
            // A threshold of 6 makes every pass after the last admission speculative.
            options.speculation = RolloutSpeculation(mode: mode, tailThreshold: 6)
            let (speculative, statistics, rolloutEngine) = try rollout(engine, requests, options: options)
            for (key, response) in plain {
                #expect(speculative[key]?.tokenIds == response.tokenIds, "\(mode), response \(key)")
                #expect(speculative[key]?.finishReason == response.finishReason, "\(mode), response \(key)")
            }
            let figures = statistics.speculation
            #expect(figures.drafted > 0, "\(mode): nothing was drafted")
            #expect(figures.accepted > 0, "\(mode): greedy tiny models repeat themselves, so some drafts should be accepted")
            #expect(figures.accepted <= figures.drafted)
            let shared = statistics.timeline.filter { $0.speculating && $0.draftingSequences >= 2 }
            #expect(!shared.isEmpty, "\(mode): expected passes that verify several sequences' trees together")
            if mode == .auto {
                let pulls = rolloutEngine.bandit.buckets.values.reduce(0) { $0 + $1.pulls }
                #expect(pulls == statistics.timeline.filter { $0.strategy != nil && $0.prefillRows == 0 }.count,
                        "every decode pass in the tail rewards its arm, and no prefill pass does")
            }
        }
    }

    @Test func batchCostScalesTheSinglePassTable() throws {
        try withTinyEngine { engine in
            let table = VerificationCost(relative: [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5])
            let options = RolloutOptions(speculation: RolloutSpeculation(mode: .suffix, draftBudget: 3, cost: table))
            let rolloutEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
            #expect(rolloutEngine.batchCost(sequences: 1).relative == [1, 1.5, 2, 2.5])
            // Two sequences: 2, 4, 6 and 8 rows against 2 rows.
            #expect(rolloutEngine.batchCost(sequences: 2).relative == [1, 2.5 / 1.5, 3.5 / 1.5, 4.5 / 1.5])
        }
    }

    @Test func tailStartsAtTheThreshold() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            let options = RolloutOptions(maxTokens: 40, sampling: broadSampling, seed: 9, stopTokens: tinyStops,
                                         speculation: RolloutSpeculation(mode: .suffix, tailThreshold: 3))
            let (_, statistics, _) = try rollout(engine, requests, options: options)
            for entry in statistics.timeline {
                let inTail = entry.runningSequences <= 3
                #expect((entry.strategy != nil) == inTail, "pass at \(entry.startSeconds) s with \(entry.runningSequences) running")
            }
            let tail = statistics.timeline.filter { $0.strategy != nil }.reduce(0.0) { $0 + $1.seconds }
            #expect(abs(statistics.tailSeconds - tail) < 1e-9)
        }
    }

    /// With a fixed drafter and its token-driven gate, sampled speculation is reproducible.
    @Test func sampledSpeculationIsReproducible() throws {
        try withTinyEngine { engine in
            let requests = try RolloutRequest.expand(tinyPrompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            let options = RolloutOptions(maxTokens: 32, sampling: SamplingParameters(temperature: 0.7), seed: 4,
                                         stopTokens: tinyStops, speculation: RolloutSpeculation(mode: .lookup, tailThreshold: 10))
            let (first, _, _) = try rollout(engine, requests, options: options)
            let (second, _, _) = try rollout(engine, requests, options: options)
            for (key, response) in first {
                #expect(second[key]?.tokenIds == response.tokenIds, "response \(key)")
            }
        }
    }

    /// Rollout steps per arm of `sampledSpeculationKeepsDistribution`, 50 responses each.
    static let sampledSteps = 40

    /// Sampled speculation in the tail keeps the target's distribution. Speculation off and
    /// each drafter run 2,000 responses to one prompt, every response with its own seed, and
    /// their first tokens are compared position by position with a two-sample chi-square test
    /// at p < 0.001. The first token comes from the prefill pass, so only later positions are
    /// ever drafted. It took 4 to 5 s alone in a debug build on 2 cores of an AMD EPYC.
    @Test func sampledSpeculationKeepsDistribution() throws {
        let positions = 4, running = 10
        try withTinyEngine { engine in
            let prompt = RolloutPrompt(id: .int(0), content: .text("the cat, the mat"))
            let requests = try RolloutRequest.expand([prompt], samplesPerPrompt: 50, tokenizer: engine.tokenizer)
            // Every response runs to `positions` tokens. With the tail threshold at the running
            // limit every pass speculates, and prefill rows of joining sequences still mix in.
            var options = RolloutOptions(maxTokens: positions, sampling: SamplingParameters(temperature: 1, topK: 8, topP: 1, minP: 0),
                                         seed: 1, stopTokens: [], maxRunningSequences: running)
            let (plain, _) = try sampleFirstTokens(engine, requests, options: options, positions: positions)

            for mode in [RolloutSpeculation.Mode.suffix, .lookup] {
                options.seed = mode == .suffix ? 2 : 3
                options.speculation = RolloutSpeculation(mode: mode, tailThreshold: running)
                let (speculative, figures) = try sampleFirstTokens(engine, requests, options: options, positions: positions)
                let responses = Self.sampledSteps * requests.count
                #expect(figures.drafted > responses / 2, "\(mode): too few drafts for the test to mean something: \(figures.drafted)")
                #expect(figures.accepted > responses / 2, "\(mode): too few accepted drafts for the test to mean something: \(figures.accepted)")
                for position in 0..<positions {
                    let (statistic, df) = chiSquare(plain.counts[position], speculative.counts[position])
                    #expect(statistic < chiSquareLimit(df: df),
                            "\(mode), position \(position): chi-square \(statistic) with \(df) degrees of freedom, limit \(chiSquareLimit(df: df))")
                }
            }
        }
    }

    /// Runs `sampledSteps` rollout steps of `requests` and counts each response's first
    /// `positions` tokens. Each step's responses get their own seeds, and the step number is
    /// part of them. A new rollout engine every 10 steps bounds the suffix drafter's history,
    /// which debug builds search slowly. Expects every pass to be in the tail.
    private func sampleFirstTokens(_ engine: Engine, _ requests: [RolloutRequest], options: RolloutOptions,
                                   positions: Int) throws -> (PositionCounts, RolloutSpeculationFigures) {
        var counts = PositionCounts(positions: positions)
        var figures = RolloutSpeculationFigures()
        var rolloutEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
        for step in 0..<Self.sampledSteps {
            if step > 0 && step % 10 == 0 {
                rolloutEngine = try RolloutEngine(model: engine.model, tokenizer: engine.tokenizer, options: options)
            }
            let statistics = try rolloutEngine.run(requests, step: step) { counts.add($0.tokenIds) }
            if options.speculation.mode != .none {
                #expect(statistics.timeline.allSatisfy { $0.strategy != nil }, "step \(step): every pass should be in the tail")
            }
            figures.drafted += statistics.speculation.drafted
            figures.accepted += statistics.speculation.accepted
        }
        return (counts, figures)
    }
}

/// The rollout on the real SmolLM2 model, kept short.
@Suite(.serialized) struct RolloutSmolLMTests {
    @Test func chatRolloutWithSpeculationEqualsPlain() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompts = [
                RolloutPrompt(id: .string("add"), content: .chat([ChatMessage(role: "user", content: "What is 2 + 3?")])),
                RolloutPrompt(id: .string("raw"), content: .text("The capital of France is")),
            ]
            let requests = try RolloutRequest.expand(prompts, samplesPerPrompt: 2, tokenizer: engine.tokenizer)
            var options = RolloutOptions(maxTokens: 8, sampling: .greedy)
            let (plain, plainStatistics, _) = try rollout(engine, requests, options: options)
            options.speculation = RolloutSpeculation(mode: .auto, tailThreshold: 4)
            let (speculative, statistics, _) = try rollout(engine, requests, options: options)
            #expect(plain.count == 4)
            for (key, response) in plain {
                #expect(speculative[key]?.tokenIds == response.tokenIds, "response \(key)")
            }
            #expect(plain["1/0"]?.text.hasPrefix(" Paris") == true, "got \(plain["1/0"]?.text ?? "nothing")")
            for response in plain.values {
                #expect(response.tokenIds.count == 8 || response.finishReason == .stop)
            }
            #expect(plainStatistics.completionTokens == plain.values.reduce(0) { $0 + $1.tokenIds.count })
            #expect(statistics.timeline.contains { $0.strategy != nil })
            #expect(statistics.peakResidentBytes > 0)
        }
    }
}
