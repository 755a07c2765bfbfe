import TailDraft

/// Measures one set of learned-drafter weights on held-out prompts, greedy, with every step
/// drafting up to `budget` tokens:
/// - learned alone with one child per node, so depth-1 acceptance is its top-1 accuracy;
/// - learned alone drafting its usual trees (up to four children per node);
/// - the suffix drafter alone;
/// - the merged tree with the learned drafter's branches always merged, so its tau compares
///   with the two drafters alone at the same fixed budget;
/// - the merged tree (`AutoDrafter` over the suffix drafter, merging the learned drafter's
///   branches) with the adaptive gate on, timed against plain decoding of the same prompt;
/// - the suffix drafter alone with the adaptive gate on, timed, which the merged tree must
///   not fall behind.
/// The seven runs of a prompt follow each other, so a busy moment of the machine affects
/// plain, suffix and merged alike. Cost: seven generations of `tokens` tokens per prompt.
struct HeldOutMeasurement {
    let engine: Engine
    let target: DrafterTarget
    let cost: VerificationCost
    let budget: Int
    let tokens: Int

    /// Figures of one set of weights over a group of prompts.
    struct Point {
        var learnedAccuracy: Double
        /// Tau of the learned drafter's chains.
        var learnedTau: Double
        /// Tau of the learned drafter's usual trees.
        var learnedTreeTau: Double
        var suffixTau: Double
        /// Tau of the merged tree at the fixed budget, branches always merged.
        var fixedMergedTau: Double
        /// Tau of the merged tree under the adaptive gate, as `auto` drafts.
        var mergedTau: Double
        var mergedTokensPerSecond: Double
        var plainTokensPerSecond: Double
        /// The suffix drafter alone under the adaptive gate.
        var suffixTokensPerSecond: Double
        var speedup: Double { mergedTokensPerSecond / max(plainTokensPerSecond, 1e-9) }
        /// Merged tree over the suffix drafter alone, both under the gate.
        var overSuffix: Double { mergedTokensPerSecond / max(suffixTokensPerSecond, 1e-9) }
    }

    /// Sums of one drafter's statistics over the prompts.
    private struct Totals {
        var steps = 0, emitted = 0, firstAccepted = 0, tokens = 0
        var seconds = 0.0

        mutating func add(_ result: GenerationResult) {
            tokens += result.tokenIds.count
            seconds += result.timings.decodeSeconds
            guard let s = result.speculation else { return }
            steps += s.steps
            emitted += s.emitted
            firstAccepted += s.acceptedAtDepth.first ?? 0
        }

        var tau: Double { steps > 0 ? Double(emitted) / Double(steps) : 0 }
        var firstAccuracy: Double { steps > 0 ? Double(firstAccepted) / Double(steps) : 0 }
        var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
    }

    /// Measures `weights` on `prompts` (token ids) as described above.
    func measure(_ weights: DrafterWeights, prompts: [[Int32]]) throws -> Point {
        var plain = Totals(), learned = Totals(), learnedTree = Totals(), suffix = Totals(), fixedMerged = Totals(), merged = Totals(), gatedSuffix = Totals()
        let alwaysMerged = AutoDrafter.MergePolicy(probeEvery: 1, mergeAbove: -1, dropBelow: -1)
        for prompt in prompts {
            func run(_ speculation: SpeculationOptions?) throws -> GenerationResult {
                try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: tokens, speculation: speculation))
            }
            plain.add(try run(nil))
            let chain = LearnedDrafter(weights: weights, target: target, childrenPerNode: 1)
            learned.add(try run(SpeculationOptions(drafter: chain, budget: budget, adaptive: false)))
            let treeDrafter = LearnedDrafter(weights: weights, target: target)
            learnedTree.add(try run(SpeculationOptions(drafter: treeDrafter, budget: budget, adaptive: false)))
            suffix.add(try run(SpeculationOptions(drafter: SuffixDrafter(), budget: budget, adaptive: false)))
            let fixed = AutoDrafter(drafters: [SuffixDrafter()], merging: LearnedDrafter(weights: weights, target: target), policy: alwaysMerged)
            fixedMerged.add(try run(SpeculationOptions(drafter: fixed, budget: budget, adaptive: false)))
            let auto = AutoDrafter(drafters: [SuffixDrafter()], merging: LearnedDrafter(weights: weights, target: target, threads: engine.model.threads))
            merged.add(try run(SpeculationOptions(drafter: auto, budget: budget, cost: cost)))
            gatedSuffix.add(try run(SpeculationOptions(drafter: SuffixDrafter(), budget: budget, cost: cost)))
        }
        return Point(learnedAccuracy: learned.firstAccuracy, learnedTau: learned.tau, learnedTreeTau: learnedTree.tau, suffixTau: suffix.tau,
                     fixedMergedTau: fixedMerged.tau, mergedTau: merged.tau,
                     mergedTokensPerSecond: merged.tokensPerSecond, plainTokensPerSecond: plain.tokensPerSecond,
                     suffixTokensPerSecond: gatedSuffix.tokensPerSecond)
    }
}

/// `taildraft-bench drafter-eval`: a saved drafter (`train-drafter --drafter PATH`) measured
/// on the held-out prompts with `HeldOutMeasurement`, per kind of prompt (the prompt id
/// without its trailing number, such as "held-chat") and over all of them, in interleaved
/// rounds. Accuracy and tau are the same in every round (greedy); tokens/s are medians.
struct DrafterEvaluationBenchmark {
    let modelPath: String
    let checkpointPath: String
    let promptsPath: String
    let threads: Int
    let rounds: Int
    let budget = 3
    let tokens = 128

    struct Row {
        var group: String
        var prompts: Int
        var point: HeldOutMeasurement.Point
        var speedups: Summary
        /// Per-round merged over gated suffix speed.
        var overSuffix: Summary
    }

    func run(progress: Bool) throws -> (rows: [Row], trainingStep: Int) {
        let engine = try Engine(modelPath: modelPath, threads: threads, contextLength: 1024)
        let target = DrafterTarget(model: engine.model)
        let checkpoint = try DrafterCheckpoint.load(path: checkpointPath, target: target)
        let cost = try VerificationCost.cached(model: engine.model, modelPath: modelPath, maxRows: budget + 1)
        let measurement = HeldOutMeasurement(engine: engine, target: target, cost: cost, budget: budget, tokens: tokens)

        let prompts = try PromptFile.read(path: promptsPath)
        var groups: [(name: String, prompts: [[Int32]])] = []
        for prompt in prompts {
            let id = prompt.id.serialized().filter { $0 != "\"" }
            let name = id.lastIndex(of: "-").map { String(id[..<$0]) } ?? id
            let tokens = try prompt.tokens(tokenizer: engine.tokenizer)
            if let index = groups.firstIndex(where: { $0.name == name }) {
                groups[index].prompts.append(tokens)
            } else {
                groups.append((name, [tokens]))
            }
        }
        if groups.count > 1 { groups.append(("all", groups.flatMap(\.prompts))) }

        var points: [String: [HeldOutMeasurement.Point]] = [:]
        for round in 0..<rounds {
            for group in groups where group.name != "all" {
                points[group.name, default: []].append(try measurement.measure(checkpoint.weights, prompts: group.prompts))
            }
            if progress { Console.error("drafter-eval: round \(round + 1) of \(rounds) done") }
        }
        var rows: [Row] = []
        for group in groups {
            let members = group.name == "all" ? groups.filter { $0.name != "all" }.map(\.name) : [group.name]
            // "all" combines its groups' rounds by weighting each group's figures by its prompt count.
            var perRound: [HeldOutMeasurement.Point] = []
            for round in 0..<rounds {
                var sum = HeldOutMeasurement.Point(learnedAccuracy: 0, learnedTau: 0, learnedTreeTau: 0, suffixTau: 0, fixedMergedTau: 0, mergedTau: 0,
                                                   mergedTokensPerSecond: 0, plainTokensPerSecond: 0, suffixTokensPerSecond: 0)
                var weight = 0.0
                for name in members {
                    let p = points[name]![round]
                    let w = Double(groups.first { $0.name == name }!.prompts.count)
                    sum.learnedAccuracy += w * p.learnedAccuracy
                    sum.learnedTau += w * p.learnedTau
                    sum.learnedTreeTau += w * p.learnedTreeTau
                    sum.suffixTau += w * p.suffixTau
                    sum.fixedMergedTau += w * p.fixedMergedTau
                    sum.mergedTau += w * p.mergedTau
                    sum.mergedTokensPerSecond += w * p.mergedTokensPerSecond
                    sum.plainTokensPerSecond += w * p.plainTokensPerSecond
                    sum.suffixTokensPerSecond += w * p.suffixTokensPerSecond
                    weight += w
                }
                sum.learnedAccuracy /= weight
                sum.learnedTau /= weight
                sum.learnedTreeTau /= weight
                sum.suffixTau /= weight
                sum.fixedMergedTau /= weight
                sum.mergedTau /= weight
                sum.mergedTokensPerSecond /= weight
                sum.plainTokensPerSecond /= weight
                sum.suffixTokensPerSecond /= weight
                perRound.append(sum)
            }
            let speedups = Summary(samples: perRound.map(\.speedup))
            var median = perRound[0]
            median.mergedTokensPerSecond = Summary(samples: perRound.map(\.mergedTokensPerSecond)).median
            median.plainTokensPerSecond = Summary(samples: perRound.map(\.plainTokensPerSecond)).median
            median.suffixTokensPerSecond = Summary(samples: perRound.map(\.suffixTokensPerSecond)).median
            rows.append(Row(group: group.name, prompts: group.prompts.count, point: median, speedups: speedups,
                            overSuffix: Summary(samples: perRound.map(\.overSuffix))))
        }
        return (rows, checkpoint.weights.version)
    }

    func table(_ result: (rows: [Row], trainingStep: Int)) -> String {
        var lines = ["drafter \(checkpointPath) (training step \(result.trainingStep)), \(threads) inference thread(s), " +
                     "\(rounds) round\(rounds == 1 ? "" : "s"); held-out prompts: \(promptsPath), \(tokens) greedy tokens each, budget \(budget); " +
                     "\(cpuModel())",
                     "prompts".padding(12) + "n".padding(4) + "learned top-1".padding(15) + "tau learned".padding(13)
                     + "learned tree".padding(14) + "tau suffix".padding(12) + "fixed merged".padding(14) + "tau merged".padding(12) + "merged tok/s".padding(14)
                     + "plain tok/s".padding(13)
                     + "speedup, median (range)".padding(25) + "over suffix alone"]
        for row in result.rows {
            let p = row.point
            lines.append(row.group.padding(12) + String(row.prompts).padding(4)
                         + (decimals(p.learnedAccuracy * 100, 1) + " %").padding(15) + decimals(p.learnedTau, 2).padding(13)
                         + decimals(p.learnedTreeTau, 2).padding(14) + decimals(p.suffixTau, 2).padding(12) + decimals(p.fixedMergedTau, 2).padding(14) + decimals(p.mergedTau, 2).padding(12)
                         + decimals(p.mergedTokensPerSecond, 1).padding(14) + decimals(p.plainTokensPerSecond, 1).padding(13)
                         + "\(decimals(row.speedups.median, 2)) (\(decimals(row.speedups.minimum, 2))..\(decimals(row.speedups.maximum, 2)))".padding(25)
                         + "\(decimals(row.overSuffix.median, 2)) (\(decimals(row.overSuffix.minimum, 2))..\(decimals(row.overSuffix.maximum, 2)))")
        }
        return lines.joined(separator: "\n")
    }
}
