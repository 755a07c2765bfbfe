import TailDraft

/// Decode speed with the drafter trainer running beside inference, against the same decode
/// without it: what online training costs the engine.
///
/// Speculation is off in both: every step runs one row, and the decode loop passes each
/// committed token's hidden state to the learned drafter, which pushes it into the trainer's
/// ring. Without a trainer the pushes are dropped. With one, the trainer thread trains at idle
/// priority, pinned to the last core when the machine has more cores than inference threads.
/// Each round runs both, taking turns going first, and each round's trainer starts from
/// random weights. The slowdown is the median over rounds of each round's ratio, so a slow
/// minute of a shared machine moves both runs of a round alike.
struct TrainerLoadBenchmark {
    let modelPath: String
    let threads: Int
    let rounds: Int
    let maxTokens = 256

    struct Result {
        var without: Summary
        var with: Summary
        var trainerRowsPerSecond: Summary
        /// Per round: the trainer's time inside training steps over the decode time.
        var trainerBusy: Summary
        var trainerCore: Int?
        /// Per round: decode time added by the trainer, as a fraction of the time without it.
        var slowdowns: Summary
        var slowdown: Double { slowdowns.median }
    }

    func run(progress: Bool) throws -> Result {
        let engine = try Engine(modelPath: modelPath, threads: threads, contextLength: 1024)
        let target = DrafterTarget(model: engine.model)
        let config = DrafterConfig(target: engine.model.config)
        let prompt = try engine.tokenizeChat(userMessage: "Write a short story about a lighthouse keeper and a storm.")
        let trainerCore = spareTrainerCore(threads: threads)
        if trainerCore == nil && threads > 1 {
            // As `taildraft generate` does when the trainer shares the inference cores.
            engine.model.keepWorkersSpinning()
        }

        var without: [Double] = [], with: [Double] = [], rows: [Double] = [], busy: [Double] = [], slowdowns: [Double] = []
        for round in 0...rounds {
            var speeds: [Bool: Double] = [:]
            for trained in round % 2 == 0 ? [false, true] : [true, false] {
                let weights = try DrafterWeights.random(config: config, target: target)
                var trainer: DrafterTrainer? = nil
                if trained {
                    var options = DrafterTrainerOptions()
                    options.cores = trainerCore.map { [$0] }
                    trainer = DrafterTrainer(initial: weights, target: target, options: options)
                    trainer?.start()
                }
                let drafter = LearnedDrafter(weights: weights, target: target, trainer: trainer)
                // Budget 0 without the gate: one row per step, with hidden states observed.
                let speculation = SpeculationOptions(drafter: drafter, budget: 0, adaptive: false)
                let options = GenerationOptions(maxTokens: maxTokens, sampling: SamplingParameters(temperature: 0.8, seed: 7),
                                                speculation: speculation)
                let result = try engine.generator.generate(promptTokens: prompt, options: options)
                trainer?.stop()
                guard round > 0 else { continue }    // warm-up
                let speed = Double(result.tokenIds.count) / result.timings.decodeSeconds
                speeds[trained] = speed
                if let trainer {
                    with.append(speed)
                    rows.append(trainer.statistics.rowsPerSecond)
                    busy.append(trainer.statistics.trainingSeconds / result.timings.decodeSeconds)
                } else {
                    without.append(speed)
                }
            }
            if round > 0 { slowdowns.append(speeds[false]! / speeds[true]! - 1) }
            if progress { Console.error("trainer load: round \(round) of \(rounds) (the first is a warm-up)") }
        }
        return Result(without: Summary(samples: without), with: Summary(samples: with),
                      trainerRowsPerSecond: Summary(samples: rows), trainerBusy: Summary(samples: busy), trainerCore: trainerCore,
                      slowdowns: Summary(samples: slowdowns))
    }

    func table(_ result: Result) -> String {
        let place = result.trainerCore.map { "pinned to core \($0)" } ?? "unpinned (no spare core)"
        return [
            "decode with and without the drafter trainer, \(threads) inference thread(s), trainer \(place), idle priority",
            "what".padding(28) + "tokens/s median".padding(18) + "min..max",
            "trainer off".padding(28) + decimals(result.without.median, 1).padding(18)
                + decimals(result.without.minimum, 1) + ".." + decimals(result.without.maximum, 1),
            "trainer on".padding(28) + decimals(result.with.median, 1).padding(18)
                + decimals(result.with.minimum, 1) + ".." + decimals(result.with.maximum, 1),
            "slowdown, median of the rounds' ratios: \(decimals(result.slowdown * 100, 1)) % "
                + "(\(decimals(result.slowdowns.minimum * 100, 1))..\(decimals(result.slowdowns.maximum * 100, 1)) %)",
            "the trainer trained \(decimals(result.trainerRowsPerSecond.median, 0)) rows/s and spent "
                + "\(decimals(result.trainerBusy.median * 100, 0)) % of the decode time in training steps",
        ].joined(separator: "\n")
    }
}
