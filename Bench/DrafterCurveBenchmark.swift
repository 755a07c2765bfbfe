import TailDraft

/// The learned drafter's acceptance as it trains online, against the suffix drafter and the
/// merged tree, on held-out prompts.
///
/// A fresh drafter trains while the target answers a stream of chat, math and code prompts
/// (sampled, temperature 0.7, as `train-drafter` generates). At 0, 1/4, 1/2, 3/4 and all of
/// `trainTokens` generated tokens, a frozen copy of its weights is measured on held-out
/// prompts of the same kinds with `HeldOutMeasurement`.
/// The trainer keeps training on its own thread while the measurements run.
struct DrafterCurveBenchmark {
    let modelPath: String
    let threads: Int
    let trainTokens: Int
    let streamPath = "Bench/prompts/drafter-stream.jsonl"
    let heldOutPath = "Bench/prompts/drafter-heldout.jsonl"
    let budget = 3
    let heldOutTokens = 128

    struct Point {
        var tokensTrained: Int
        var weightsVersion: Int
        var figures: HeldOutMeasurement.Point
    }

    func run(progress: Bool) throws -> [Point] {
        let engine = try Engine(modelPath: modelPath, threads: threads, contextLength: 1024)
        let stream = try PromptFile.read(path: streamPath).map { try $0.tokens(tokenizer: engine.tokenizer) }
        let heldOut = try PromptFile.read(path: heldOutPath).map { try $0.tokens(tokenizer: engine.tokenizer) }
        let target = DrafterTarget(model: engine.model)
        let cost = try VerificationCost.cached(model: engine.model, modelPath: modelPath, maxRows: budget + 1)
        let measurement = HeldOutMeasurement(engine: engine, target: target, cost: cost, budget: budget, tokens: heldOutTokens)

        var trainerOptions = DrafterTrainerOptions()
        trainerOptions.cores = spareTrainerCore(threads: threads).map { [$0] }
        let initial = try DrafterWeights.random(config: DrafterConfig(target: engine.model.config), target: target)
        let trainer = DrafterTrainer(initial: initial, target: target, options: trainerOptions)
        let training = LearnedDrafter(weights: initial, target: target, trainer: trainer)
        trainer.start()
        defer { trainer.stop() }

        let marks = (0...4).map { trainTokens * $0 / 4 }
        var points: [Point] = []
        var generated = 0, responses = 0
        for mark in marks {
            while generated < mark {
                let prompt = stream[responses % stream.count]
                let options = GenerationOptions(maxTokens: 256, sampling: SamplingParameters(temperature: 0.7, seed: UInt64(responses)),
                                                speculation: SpeculationOptions(drafter: training, budget: budget))
                generated += try engine.generator.generate(promptTokens: prompt, options: options).tokenIds.count
                responses += 1
            }
            let figures = try measurement.measure(training.weights, prompts: heldOut)
            points.append(Point(tokensTrained: generated, weightsVersion: training.weights.version, figures: figures))
            if progress {
                let p = points.last!.figures
                Console.error("drafter curve: \(generated) tokens trained, learned top-1 \(decimals(p.learnedAccuracy * 100, 1)) %, " +
                              "tau learned \(decimals(p.learnedTau, 2)), suffix \(decimals(p.suffixTau, 2)), merged \(decimals(p.mergedTau, 2))")
            }
        }
        return points
    }

    func table(_ points: [Point]) -> String {
        var lines = ["learned drafter trained online, \(threads) inference thread(s); held-out prompts: \(heldOutPath), " +
                     "\(heldOutTokens) greedy tokens each, budget \(budget)",
                     "tokens trained".padding(16) + "version".padding(9) + "learned top-1".padding(15) + "tau learned".padding(13)
                     + "learned tree".padding(14) + "tau suffix".padding(12) + "fixed merged".padding(14) + "tau merged".padding(12) + "merged tok/s".padding(14)
                     + "plain tok/s".padding(13)
                     + "speedup".padding(9) + "suffix tok/s".padding(14) + "over suffix"]
        for point in points {
            let p = point.figures
            lines.append(String(point.tokensTrained).padding(16) + String(point.weightsVersion).padding(9)
                         + (decimals(p.learnedAccuracy * 100, 1) + " %").padding(15) + decimals(p.learnedTau, 2).padding(13)
                         + decimals(p.learnedTreeTau, 2).padding(14) + decimals(p.suffixTau, 2).padding(12) + decimals(p.fixedMergedTau, 2).padding(14) + decimals(p.mergedTau, 2).padding(12)
                         + decimals(p.mergedTokensPerSecond, 1).padding(14) + decimals(p.plainTokensPerSecond, 1).padding(13)
                         + decimals(p.speedup, 2).padding(9) + decimals(p.suffixTokensPerSecond, 1).padding(14)
                         + decimals(p.overSuffix, 2))
        }
        return lines.joined(separator: "\n")
    }
}
