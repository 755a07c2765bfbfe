import TailDraft

/// `taildraft rollout`: generates several responses per prompt of a prompt file with
/// continuous batching, writing one JSON line per response as it finishes.
enum RolloutCommand {
    static func run(_ arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(Help.rollout); return }
        let args = try Arguments(
            command: "rollout", arguments: arguments,
            valueOptions: ["model", "prompts", "samples-per-prompt", "max-tokens", "temperature", "top-k", "top-p", "min-p",
                           "seed", "steps", "speculate", "tail-threshold", "draft-budget", "out", "report", "threads",
                           "context", "max-running", "kv-budget", "drafter", "train-cores", "replay-mb"],
            flagOptions: [])
        let modelPath = try args.required("model")
        let promptsPath = try args.required("prompts")
        let samplesPerPrompt = try args.int("samples-per-prompt", default: 1, range: 1...100_000)
        let steps = try args.int("steps", default: 1, range: 1...10_000)
        let threads = try args.int("threads", default: Engine.defaultThreadCount, range: 1...1024)
        var options = try rolloutOptions(args)
        for option in ["train-cores", "replay-mb"] where args.string(option) != nil && args.string("drafter") == nil {
            throw UsageError(description: "--\(option) needs --drafter PATH, the checkpoint the rollout trains")
        }
        if options.speculation.mode == .auto && args.string("drafter") != nil {
            // The bandit also tries the learned drafter alone and merged into the suffix drafter's trees.
            options.speculation.arms = SpeculationStrategy.arms(drafters: [.lookup, .suffix, .learned, .merged])
        }
        if options.speculation.mode == .learned && args.string("drafter") == nil {
            throw UsageError(description: "--speculate learned needs --drafter PATH, the checkpoint to start from and train")
        }
        if threads > Engine.defaultThreadCount {
            Console.error("warning: --threads \(threads) is more than the \(Engine.defaultThreadCount) cores of this machine; threads beyond the core count slow generation down")
        }

        // Everything that can fail on input fails before the model runs.
        let prompts = try PromptFile.read(path: promptsPath)
        let model = try Transformer(path: modelPath, threads: threads)
        let tokenizer = try BPETokenizer(gguf: model.weights.file)
        let requests = try RolloutRequest.expand(prompts, samplesPerPrompt: samplesPerPrompt, tokenizer: tokenizer)
        if [.lookup, .suffix, .learned].contains(options.speculation.mode) {
            // Measured once per model, kernel path and thread count, then read from the cache.
            // The tail's passes verify up to tail-threshold x (draft budget + 1) rows.
            let rows = options.speculation.tailThreshold * (options.speculation.draftBudget + 1)
            options.speculation.cost = try VerificationCost.cached(model: model, modelPath: modelPath, maxRows: min(64, rows))
        }
        let engine = try RolloutEngine(model: model, tokenizer: tokenizer, options: options)
        // With --drafter, the learned drafter trains on every committed position (see RolloutEngine).
        let training = args.string("drafter") == nil ? nil : try LearnedDrafterSession(args, model: model)
        engine.drafterTrainer = training?.trainer
        if let training { engine.useLearnedDrafter(weights: training.drafter.weights, target: training.drafter.target) }
        let output = try args.string("out").map { try OutputFile(path: $0) } ?? OutputFile(standardOutput: ())
        let reportFolder = args.string("report")
        if let reportFolder { try TextFile.createFolder(reportFolder) }

        // With a drafter in training, Ctrl-C ends the rollout after the current pass: the
        // responses written so far stay, and the drafter is saved.
        if training != nil { Interrupt.install() }
        var progress = ProgressLine(steps: steps)
        var statistics: [RolloutStepStatistics] = []
        do {
            for step in 0..<steps {
                let result = try engine.run(requests, step: step, onResponse: { response in
                    try output.write(response.json().serialized() + "\n")
                }, onProgress: {
                    progress.update($0)
                    if Interrupt.requested { throw RolloutInterruption() }
                })
                progress.finishStep(result)
                statistics.append(result)
            }
        } catch is RolloutInterruption {
            Console.error("rollout interrupted: \(statistics.count) of \(steps) steps complete; finished responses are written")
        }
        if statistics.isEmpty {
            if let training { Console.error(LearnedDrafterSession.rolloutSummary(try training.finish(), path: training.path)) }
            return
        }

        let report = RolloutReport(modelPath: modelPath, kernelPath: KernelPath.active, threads: threads, promptCount: prompts.count,
                                   samplesPerPrompt: samplesPerPrompt, options: options, steps: statistics,
                                   bandit: options.speculation.mode == .auto ? engine.bandit : nil,
                                   peakResidentBytes: ResourceUsage.peakResidentBytes)
        Console.error(RolloutSummary.table(report))
        if let training {
            Console.error(LearnedDrafterSession.rolloutSummary(try training.finish(), path: training.path))
        }
        if let reportFolder {
            let paths = try report.write(to: reportFolder)
            Console.error("report: \(paths.joined(separator: ", "))")
        }
    }

    /// Reads the sampling, batching and speculation options.
    private static func rolloutOptions(_ args: Arguments) throws -> RolloutOptions {
        let sampling = SamplingParameters(
            temperature: try args.float("temperature", default: 0.8, range: 0...1000, expected: "a number in 0...1000 (0 is greedy)"),
            topK: try args.int("top-k", default: 40, range: 0...1_000_000),
            topP: try args.float("top-p", default: 0.95, range: Float.leastNonzeroMagnitude...1, expected: "a number in (0, 1]"),
            minP: try args.float("min-p", default: 0.05, range: 0...1, expected: "a number in [0, 1]"))
        let modeName = args.string("speculate") ?? "none"
        guard let mode = RolloutSpeculation.Mode(rawValue: modeName) else {
            throw UsageError(description: "invalid value '\(modeName)' for --speculate: expected none, lookup, suffix, auto or learned")
        }
        let speculation = RolloutSpeculation(
            mode: mode, tailThreshold: try args.int("tail-threshold", default: 4, range: 1...100_000),
            draftBudget: try args.int("draft-budget", default: 3, range: 1...64),
            bandit: StrategyBandit.Configuration(seed: try args.uint64("seed", default: 0)))
        return RolloutOptions(
            maxTokens: try args.int("max-tokens", default: 256, range: 0...10_000_000), sampling: sampling,
            seed: try args.uint64("seed", default: 0),
            contextLength: args.string("context") == nil ? nil : try args.int("context", default: 0, range: 2...1_048_576),
            maxRunningSequences: try args.int("max-running", default: 64, range: 1...100_000),
            kvBudgetTokens: args.string("kv-budget") == nil ? nil : try args.int("kv-budget", default: 0, range: 1...1_000_000_000),
            speculation: speculation)
    }
}

/// The progress line on standard error: rewritten in place on a terminal, printed as plain
/// lines every few seconds otherwise, so logs stay short.
struct ProgressLine {
    let steps: Int
    let terminal = Console.standardErrorIsTerminal
    /// Seconds between lines: 0.1 on a terminal, 5 in a log.
    var interval: Double { terminal ? 0.1 : 5 }
    private var lastPrinted = -Double.infinity
    private var lastLength = 0

    init(steps: Int) {
        self.steps = steps
    }

    mutating func update(_ progress: RolloutProgress) {
        guard progress.elapsedSeconds - lastPrinted >= interval else { return }
        lastPrinted = progress.elapsedSeconds
        let tau = progress.acceptanceLength > 0 ? fixed(progress.acceptanceLength, 2) : "-"
        let strategy = progress.strategy.map { " (\($0))" } ?? ""
        let drafter = progress.drafterVersion.map { ", drafter v\($0)" } ?? ""
        // The trainer is one thread, so it takes one core when it trains.
        let training = progress.drafterVersion == nil ? "" : (progress.trainerTraining ? "/1 training" : "/0 training")
        let line = "step \(progress.step + 1)/\(steps): \(progress.finishedResponses)/\(progress.totalResponses) responses, " +
            "\(progress.runningSequences) running, \(progress.waitingRequests) waiting, " +
            "\(fixed(progress.recentTokensPerSecond, 1)) tokens/s, tau \(tau)\(strategy)\(drafter), " +
            "cores \(progress.inferenceThreads) inference\(training), \(fixed(progress.elapsedSeconds, 1)) s"
        write(line)
    }

    mutating func finishStep(_ step: RolloutStepStatistics) {
        let line = "step \(step.step + 1)/\(steps): \(step.responses) responses, \(tokens(step.completionTokens)) in " +
            "\(fixed(step.seconds, 1)) s (\(fixed(step.tokensPerSecond, 1)) tokens/s), tail \(fixed(step.tailSeconds, 1)) s" +
            (step.speculation.sequenceSteps > 0 ? ", tau \(fixed(step.speculation.acceptanceLength, 2))" : "") +
            (step.sharedCoreSeconds > 0.05 ? ", \(fixed(step.sharedCoreSeconds, 1)) s of it with a core training the drafter" : "") +
            (step.trainingSeconds > 0.05 ? ", then drafter training \(fixed(step.trainingSeconds, 1)) s" : "")
        write(line)
        if terminal { Console.writeError("\n") }
        lastPrinted = -Double.infinity
        lastLength = 0
    }

    /// Overwrites the previous line on a terminal (padding with spaces where it was longer).
    private mutating func write(_ line: String) {
        guard terminal else {
            Console.error(line)
            return
        }
        let padding = String(repeating: " ", count: max(0, lastLength - line.count))
        Console.writeError("\r" + line + padding)
        lastLength = line.count
    }
}

/// Thrown from the progress callback to end a rollout early after Ctrl-C.
private struct RolloutInterruption: Error {}
