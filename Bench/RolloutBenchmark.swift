import TailDraft

/// One rollout workload with speculation off, suffix-only, learned-only and adaptive (`auto`)
/// in one process, the modes interleaved round by round. It reports end-to-end speedups, the
/// long tail's share of the time with speculation off, the speedup inside the tail, and the
/// end-to-end bound these two allow by Amdahl's law. Times add up over the rounds, so a busy
/// machine slows every mode alike. Each round starts every mode from a new engine.
///
/// Before the tail every mode decodes plainly with the same per-response seeds, so all modes
/// produce the same tokens there. Inside the tail, sampled responses differ between modes
/// (drafts use the random generator differently), and so do their lengths. Every speedup is
/// therefore a ratio of tokens per second, which compares the modes at equal token counts.
/// With temperature 0 the tokens are the same, and it equals the ratio of times.
struct RolloutBenchmark {
    let modelPath: String
    let promptsPath: String
    let samplesPerPrompt: Int
    let maxTokens: Int
    let temperature: Float
    let steps: Int
    let threads: Int
    let tailThreshold: Int
    let maxRunning: Int
    let rounds: Int
    /// The path of a trained drafter for learned mode to start from. It also gives `auto` the
    /// learned and merged arms. With nil, learned mode starts fresh and `auto` stays model-free.
    let checkpointPath: String?
    let modes: [RolloutSpeculation.Mode] = [.none, .suffix, .learned, .auto]

    struct ModeResult {
        var mode: RolloutSpeculation.Mode
        var seconds = 0.0
        var tokens = 0
        var tailSeconds = 0.0
        var tailTokens = 0
        var stepSeconds: [Double] = []
        var speculation = RolloutSpeculationFigures()
        /// Every response's tokens by (step, prompt, sample), to compare greedy runs.
        var outputs: [String: [Int32]] = [:]
        var tailTokensPerSecond: Double { tailSeconds > 0 ? Double(tailTokens) / tailSeconds : 0 }
    }

    func run(progress: Bool) throws -> [ModeResult] {
        let model = try Transformer(path: modelPath, threads: threads)
        let tokenizer = try BPETokenizer(gguf: model.weights.file)
        let prompts = try PromptFile.read(path: promptsPath)
        let requests = try RolloutRequest.expand(prompts, samplesPerPrompt: samplesPerPrompt, tokenizer: tokenizer)

        // Warm-up: map the weights in and fill the kernels' scratch buffers.
        let warmUp = try RolloutEngine(model: model, tokenizer: tokenizer, options: RolloutOptions(maxTokens: 8))
        _ = try warmUp.run(Array(requests.prefix(4))) { _ in }

        var results = modes.map { ModeResult(mode: $0) }
        for round in 0..<rounds {
            for (index, mode) in modes.enumerated() {
                try runMode(mode, round: round, into: &results[index], model: model, tokenizer: tokenizer,
                            requests: requests, progress: progress)
            }
        }
        return results
    }

    /// Runs every step of one mode once with a new engine, adding to `result`.
    private func runMode(_ mode: RolloutSpeculation.Mode, round: Int, into result: inout ModeResult, model: Transformer,
                         tokenizer: BPETokenizer, requests: [RolloutRequest], progress: Bool) throws {
        var options = RolloutOptions(maxTokens: maxTokens, sampling: SamplingParameters(temperature: temperature), seed: 0,
                                     maxRunningSequences: maxRunning,
                                     speculation: RolloutSpeculation(mode: mode, tailThreshold: tailThreshold))
        if mode == .suffix || mode == .learned {
            let rows = tailThreshold * (options.speculation.draftBudget + 1)
            options.speculation.cost = try VerificationCost.cached(model: model, modelPath: modelPath, maxRows: min(64, rows))
        }
        if mode == .auto && checkpointPath != nil {
            options.speculation.arms = SpeculationStrategy.arms(drafters: [.lookup, .suffix, .learned, .merged])
        }
        let engine = try RolloutEngine(model: model, tokenizer: tokenizer, options: options)
        // Learned mode (and auto with a checkpoint) starts each round from the checkpoint or
        // a fresh drafter that trains on this round's responses and keeps training across its steps.
        var trainer: DrafterTrainer? = nil
        if mode == .learned || (mode == .auto && checkpointPath != nil) {
            let target = DrafterTarget(model: model)
            let checkpoint = try checkpointPath.map { try DrafterCheckpoint.load(path: $0, target: target) }
                ?? DrafterCheckpoint(weights: try DrafterWeights.random(config: DrafterConfig(target: model.config), target: target))
            trainer = DrafterTrainer(checkpoint: checkpoint, target: target)
            engine.drafterTrainer = trainer
            engine.useLearnedDrafter(weights: checkpoint.weights, target: target)
            trainer?.start()
        }
        defer { trainer?.stop() }
        for step in 0..<steps {
            let statistics = try engine.run(requests, step: step) { response in
                result.outputs["\(step)/\(response.request.promptIndex)/\(response.request.sampleIndex)"] = response.tokenIds
            }
            // The trainer's time alone after a step is part of the end-to-end time.
            result.seconds += statistics.seconds + statistics.trainingSeconds
            result.tokens += statistics.completionTokens
            result.tailSeconds += statistics.tailSeconds
            result.tailTokens += statistics.tailTokens
            if round == 0 {
                result.stepSeconds.append(statistics.seconds)
            } else {
                result.stepSeconds[step] += statistics.seconds
            }
            result.speculation.add(statistics.speculation)
            if progress {
                Console.error("round \(round + 1)/\(rounds), \(mode.rawValue), step \(step + 1)/\(steps): \(decimals(statistics.seconds, 1)) s, " +
                              "tail \(decimals(statistics.tailSeconds, 1)) s")
            }
        }
    }

    /// Returns the end-to-end tokens per second of `on` over those of `off`.
    static func speedup(off: ModeResult, on: ModeResult) -> Double {
        guard off.seconds > 0, on.seconds > 0, off.tokens > 0 else { return 0 }
        return (Double(on.tokens) / on.seconds) / (Double(off.tokens) / off.seconds)
    }

    /// Returns the tail's share of the time with speculation off, the tail speedup of `mode`
    /// and the Amdahl bound 1 / ((1 - share) + share / speedup).
    static func bound(off: ModeResult, on: ModeResult) -> (share: Double, tailSpeedup: Double, bound: Double) {
        let share = off.seconds > 0 ? off.tailSeconds / off.seconds : 0
        let speedup = off.tailTokensPerSecond > 0 ? on.tailTokensPerSecond / off.tailTokensPerSecond : 1
        let bound = speedup > 0 ? 1 / ((1 - share) + share / speedup) : 1
        return (share, speedup, bound)
    }

    func table(_ results: [ModeResult]) -> String {
        var lines = ["cpu: \(cpuModel())", "kernels: \(KernelPath.active), threads: \(threads)",
                     "workload: \(promptsPath), \(samplesPerPrompt) samples per prompt, max \(maxTokens) tokens, " +
                     "temperature \(decimals(Double(temperature), 2)), \(steps) step(s), \(rounds) round(s), at most \(maxRunning) running, " +
                     "tail: at most \(tailThreshold) running", "",
                     "mode    time (s)  tokens  tokens/s  speedup  tail (s)  tail share  tail tok/s  tail speedup  tau   Amdahl bound  of bound"]
        guard let off = results.first(where: { $0.mode == .none }) else { return lines.joined(separator: "\n") }

        for result in results {
            let (_, tailSpeedup, bound) = Self.bound(off: off, on: result)
            let speedup = Self.speedup(off: off, on: result)
            let speculated = result.speculation.sequenceSteps > 0
            lines.append([result.mode.rawValue.padding(7), decimals(result.seconds, 1).padding(9), String(result.tokens).padding(7),
                          decimals(Double(result.tokens) / max(result.seconds, 1e-9), 1).padding(9), decimals(speedup, 2).padding(8),
                          decimals(result.tailSeconds, 1).padding(9),
                          (decimals(result.tailSeconds / max(result.seconds, 1e-9) * 100, 1) + " %").padding(11),
                          decimals(result.tailTokensPerSecond, 1).padding(11), decimals(tailSpeedup, 2).padding(13),
                          (speculated ? decimals(result.speculation.acceptanceLength, 2) : "-").padding(5),
                          decimals(bound, 3).padding(13),
                          bound > 1.005 ? decimals((speedup - 1) / (bound - 1) * 100, 0) + " %" : "-"]
                .joined(separator: " "))
        }

        let share = off.seconds > 0 ? off.tailSeconds / off.seconds : 0
        lines.append("")
        if share > 0.99 {
            lines.append("With speculation off the tail takes \(decimals(share * 100, 1)) % of the time, so the end-to-end " +
                         "speedup can reach the tail speedup.")
        } else {
            lines.append("With speculation off the tail takes \(decimals(share * 100, 1)) % of the time, so even an infinitely " +
                         "fast tail bounds the end-to-end speedup at \(decimals(1 / (1 - share), 2))x.")
        }
        lines.append("drafting (s): " + results.map { "\($0.mode.rawValue) \(decimals($0.speculation.draftSeconds, 2))" }.joined(separator: ", "))
        lines.append("'of bound' is the speedup's gain over 1 as a share of the Amdahl bound's gain over 1 ('-' when the bound is below 1.005).")
        lines.append("Times are sums over the rounds; the machine is shared, so compare modes only within one run.")
        if temperature == 0 {
            let same = results.allSatisfy { $0.outputs == off.outputs }
            lines.append("greedy: every mode gave the same tokens as speculation off: \(same ? "yes" : "NO")")
        }
        lines.append("step times (s, summed over rounds): " + results.map { "\($0.mode.rawValue) " + $0.stepSeconds.map { decimals($0, 1) }.joined(separator: ", ") }
            .joined(separator: "; "))
        lines.append("peak resident memory: \(decimals(Double(peakResidentBytes()) / 1_000_000, 1)) MB")
        return lines.joined(separator: "\n")
    }

    func json(_ results: [ModeResult]) -> String {
        guard let off = results.first(where: { $0.mode == .none }) else { return "{}" }
        let entries = results.map { result -> String in
            let (share, tailSpeedup, bound) = Self.bound(off: off, on: result)
            return "{\"mode\": \"\(result.mode.rawValue)\", \"seconds\": \(result.seconds), \"tokens\": \(result.tokens), " +
                "\"speedup\": \(Self.speedup(off: off, on: result)), \"tail_seconds\": \(result.tailSeconds), " +
                "\"tail_share_off\": \(share), \"tail_speedup\": \(tailSpeedup), \"amdahl_bound\": \(bound), " +
                "\"acceptance_length\": \(result.speculation.acceptanceLength), \"step_seconds\": \(result.stepSeconds)}"
        }
        return "{\"results\": [\(entries.joined(separator: ", "))]}"
    }
}
