import TailDraft

/// `auto` with a learned drafter that starts from random weights and trains online, against
/// the suffix drafter alone, all under the adaptive gate: whether the learned drafter ever
/// costs speed while it is still learning.
///
/// Three drafters serve the whole run, as in a long-running process, each keeping its
/// history of earlier outputs:
/// - `auto`: the suffix drafter, merging the learned drafter's branches when they pay;
/// - `fed suffix`: the suffix drafter alone, also feeding the trainer, so the trainer's load
///   on the machine is the same as in `auto`'s runs (an `AutoDrafter` that never tries the
///   learned branches);
/// - `suffix`: the suffix drafter alone, without the trainer's data.
/// The trainer trains on what the first two commit, on the spare core at idle priority.
/// Round r generates greedily for the next `promptsPerRound` prompts of `promptsPath` with each,
/// in an order that rotates every round, so all give the same tokens and no prompt repeats
/// until the file runs out. `auto` over `fed suffix` is what the merge policy gains or loses;
/// `auto` over `suffix` adds the trainer's load, which `TrainerLoadBenchmark` measures alone.
/// Each figure is the median over rounds of the round's ratio of decode speeds. Each row
/// also shows the trainer's test-then-train top-1 accuracy over all rows it evaluated so far.
/// Cost: 3 x rounds x promptsPerRound generations of `maxTokens` tokens.
struct DrafterOnlineBenchmark {
    let modelPath: String
    let threads: Int
    let rounds: Int
    let promptsPath = "Bench/prompts/drafter-train.jsonl"
    let promptsPerRound = 4
    let budget = 3
    let maxTokens = 128

    struct Round {
        /// Decode tokens per second and tau of auto, fed suffix and suffix, in that order.
        var tokensPerSecond: [Double]
        var tau: [Double]
        /// Target tokens the trainer had received by the end of the round, and its
        /// test-then-train accuracy over all of them so far.
        var tokensObserved: Int
        var freshAccuracy: Double
        var overFedSuffix: Double { tokensPerSecond[0] / max(tokensPerSecond[1], 1e-9) }
        var overSuffix: Double { tokensPerSecond[0] / max(tokensPerSecond[2], 1e-9) }
    }

    struct Result {
        var rounds: [Round]
        var mergedSteps: Int
        var merges: Int
        var drops: Int
        var trialSteps: Int
        var skippedTrials: Int
        var sameTokens: Bool
    }

    func run(progress: Bool) throws -> Result {
        let engine = try Engine(modelPath: modelPath, threads: threads, contextLength: 1024)
        let prompts = try PromptFile.read(path: promptsPath).map { try $0.tokens(tokenizer: engine.tokenizer) }
        let target = DrafterTarget(model: engine.model)
        let cost = try VerificationCost.cached(model: engine.model, modelPath: modelPath, maxRows: budget + 1)

        var trainerOptions = DrafterTrainerOptions()
        trainerOptions.cores = spareTrainerCore(threads: threads).map { [$0] }
        if trainerOptions.cores == nil && threads > 1 {
            // As `taildraft generate` does when the trainer shares the inference cores.
            engine.model.keepWorkersSpinning()
        }
        let initial = try DrafterWeights.random(config: DrafterConfig(target: engine.model.config), target: target)
        let trainer = DrafterTrainer(initial: initial, target: target, options: trainerOptions)
        let learned = LearnedDrafter(weights: initial, target: target, trainer: trainer, threads: threads)
        let auto = AutoDrafter(drafters: [SuffixDrafter()], merging: learned)
        let feeder = LearnedDrafter(weights: initial, target: target, trainer: trainer, stream: 1)
        let fedSuffix = AutoDrafter(drafters: [SuffixDrafter()], merging: feeder, policy: .init(probeEvery: Int.max))
        let drafters: [any Drafter] = [auto, fedSuffix, SuffixDrafter()]
        trainer.start()
        defer { trainer.stop() }

        var rounds: [Round] = []
        var sameTokens = true
        var next = 0
        for round in 0..<self.rounds {
            var seconds = [0.0, 0.0, 0.0], tokens = [0, 0, 0], steps = [0, 0, 0], emitted = [0, 0, 0]
            let order = (0..<3).map { ($0 + round) % 3 }
            for _ in 0..<promptsPerRound {
                let prompt = prompts[next % prompts.count]
                next += 1
                var outputs: [[Int32]] = [[], [], []]
                for arm in order {
                    let options = GenerationOptions(maxTokens: maxTokens,
                                                    speculation: SpeculationOptions(drafter: drafters[arm], budget: budget, cost: cost))
                    let result = try engine.generator.generate(promptTokens: prompt, options: options)
                    outputs[arm] = result.tokenIds
                    seconds[arm] += result.timings.decodeSeconds
                    tokens[arm] += result.tokenIds.count
                    steps[arm] += result.speculation?.steps ?? 0
                    emitted[arm] += result.speculation?.emitted ?? 0
                }
                sameTokens = sameTokens && outputs[0] == outputs[1] && outputs[0] == outputs[2]
            }
            let statistics = trainer.statistics
            rounds.append(Round(tokensPerSecond: (0..<3).map { seconds[$0] > 0 ? Double(tokens[$0]) / seconds[$0] : 0 },
                                tau: (0..<3).map { steps[$0] > 0 ? Double(emitted[$0]) / Double(steps[$0]) : 0 },
                                tokensObserved: statistics.positionsReceived, freshAccuracy: statistics.freshAccuracy))
            if progress {
                let last = rounds.last!
                Console.error("drafter online: round \(round + 1) of \(self.rounds), auto over fed suffix \(decimals(last.overFedSuffix, 3)), " +
                              "over suffix \(decimals(last.overSuffix, 3)), tau \(decimals(last.tau[0], 2)) and \(decimals(last.tau[2], 2))")
            }
        }
        return Result(rounds: rounds, mergedSteps: auto.mergedSteps, merges: auto.merges, drops: auto.drops,
                      trialSteps: auto.trialSteps, skippedTrials: auto.skippedTrials, sameTokens: sameTokens)
    }

    func table(_ result: Result) -> String {
        var lines = ["auto (learned drafter from random weights, training online) vs the suffix drafter alone, all gated, " +
                     "\(threads) inference thread(s); \(promptsPerRound) prompts of \(promptsPath) per round, \(maxTokens) greedy tokens each, " +
                     "budget \(budget); fed suffix also feeds the trainer; \(cpuModel())",
                     "round".padding(7) + "tokens observed".padding(17) + "trainer top-1".padding(15) + "auto tok/s".padding(12)
                     + "fed suffix tok/s".padding(18) + "suffix tok/s".padding(14) + "tau auto".padding(10) + "tau suffix".padding(12)
                     + "auto / fed suffix".padding(19) + "auto / suffix"]
        for (index, round) in result.rounds.enumerated() {
            lines.append(String(index + 1).padding(7) + String(round.tokensObserved).padding(17)
                         + (decimals(round.freshAccuracy * 100, 1) + " %").padding(15)
                         + decimals(round.tokensPerSecond[0], 1).padding(12) + decimals(round.tokensPerSecond[1], 1).padding(18)
                         + decimals(round.tokensPerSecond[2], 1).padding(14)
                         + decimals(round.tau[0], 2).padding(10) + decimals(round.tau[2], 2).padding(12)
                         + decimals(round.overFedSuffix, 3).padding(19) + decimals(round.overSuffix, 3))
        }
        func summary(_ values: [Double]) -> String {
            let s = Summary(samples: values)
            return "median \(decimals(s.median, 3)) (\(decimals(s.minimum, 3))..\(decimals(s.maximum, 3)))"
        }
        lines.append("over \(result.rounds.count) round\(result.rounds.count == 1 ? "" : "s"): auto over fed suffix \(summary(result.rounds.map(\.overFedSuffix))), " +
                     "auto over suffix \(summary(result.rounds.map(\.overSuffix)))")
        lines.append("learned branches in \(result.mergedSteps) steps, \(result.trialSteps) trial steps (\(result.skippedTrials) left out " +
                     "for low accuracy), merged \(result.merges) and dropped \(result.drops) times; same tokens: \(result.sameTokens ? "yes" : "NO")")
        return lines.joined(separator: "\n")
    }
}
