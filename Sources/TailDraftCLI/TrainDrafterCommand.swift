#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TailDraft

/// `taildraft train-drafter`: generates responses to a prompt file in batches, cycling
/// through it, while the learned drafter trains on every position on a core of its own.
/// Stops after a time or a number of generated tokens, then saves the drafter.
enum TrainDrafterCommand {
    static func run(_ arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(Help.trainDrafter); return }
        let args = try Arguments(
            command: "train-drafter", arguments: arguments,
            valueOptions: ["model", "prompts", "minutes", "tokens", "drafter", "max-tokens", "temperature", "seed", "threads",
                           "train-cores", "context", "batch", "unroll-weight", "replay-mb"],
            flagOptions: [])
        let modelPath = try args.required("model")
        let promptsPath = try args.required("prompts")
        guard args.string("minutes") != nil || args.string("tokens") != nil else {
            throw UsageError(description: "missing --minutes N or --tokens N: set how long to generate and train")
        }
        let minutes = args.string("minutes") == nil ? nil
            : try args.float("minutes", default: 0, range: 0.001...1_000_000, expected: "a number of minutes in 0.001...1000000")
        let tokenLimit = args.string("tokens") == nil ? nil : try args.int("tokens", default: 0, range: 1...1_000_000_000_000)
        _ = try args.required("drafter")
        let maxTokens = try args.int("max-tokens", default: 256, range: 1...10_000_000)
        let batch = try args.int("batch", default: 16, range: 1...100_000)
        let context = args.string("context") == nil ? nil : try args.int("context", default: 0, range: 2...1_048_576)
        let temperature = try args.float("temperature", default: 0.7, range: 0...1000, expected: "a number in 0...1000 (0 is greedy)")
        let seed = try args.uint64("seed", default: 0)
        // Training gets a core of its own by default: the last one, with inference on the rest.
        let cores = ProcessorCount.online
        let defaultTrainCores = cores >= 2 ? [cores - 1] : nil
        let trainCores = try args.string("train-cores").map(LearnedDrafterSession.parseCores) ?? defaultTrainCores
        let inferenceCores = (0..<cores).filter { !(trainCores ?? []).contains($0) }.count
        let threads = try args.int("threads", default: max(1, inferenceCores), range: 1...1024)

        // Everything that can fail on input fails before training starts.
        let prompts = try PromptFile.read(path: promptsPath)
        let model = try Transformer(path: modelPath, threads: threads)
        let tokenizer = try BPETokenizer(gguf: model.weights.file)
        let requests = try RolloutRequest.expand(prompts, samplesPerPrompt: 1, tokenizer: tokenizer)
        let options = RolloutOptions(maxTokens: maxTokens, sampling: SamplingParameters(temperature: temperature),
                                     seed: seed, contextLength: context, maxRunningSequences: batch)
        let engine = try RolloutEngine(model: model, tokenizer: tokenizer, options: options)
        // Training is this command's job: on cores of its own the trainer runs at normal
        // priority, so other programs on the machine cannot starve it, and trains through
        // every pass. Sharing the inference cores, it keeps to idle priority and idle cycles.
        let session = try LearnedDrafterSession(args, model: model, trainCores: trainCores, normalPriorityOnOwnCores: true)
        engine.drafterTrainer = session.trainer
        engine.trainsDuringPasses = session.trainerHasOwnCores
        engine.trainingWindow = 0

        // Pass after pass over the prompt file, each with new sampling seeds, until the time
        // or the token count is reached. The responses under way then are not finished, but
        // their positions have reached the trainer. Ctrl-C stops the same way.
        Interrupt.install()
        let start = monotonicSeconds()
        let seconds = minutes.map { Double($0) * 60 }
        var progress = Progress(seconds: seconds, tokenLimit: tokenLimit, trainer: session.trainer)
        var responses = 0, finishedTokens = 0, generated = 0, pass = 0
        // Seeds derive from the pass number. A run that continues a checkpoint numbers its
        // passes from the checkpoint's training step, which grows with every run, so it does not
        // repeat the responses earlier runs trained on.
        let firstPass = session.drafter.weights.version
        if firstPass > 0 {
            Console.error("train-drafter: continuing the drafter in \(session.path ?? "") from training step \(firstPass)")
        }
        var stopReason = "the prompt file was answered once"
        do {
            while true {
                let step = try engine.run(requests, step: firstPass + pass, onResponse: { _ in
                    responses += 1
                }, onProgress: { state in
                    generated = finishedTokens + state.committedTokens
                    let elapsed = monotonicSeconds() - start
                    progress.update(elapsed: elapsed, responses: responses, generated: generated)
                    if Interrupt.requested { throw Stop(reason: "Ctrl-C was pressed") }
                    if let seconds, elapsed >= seconds { throw Stop(reason: "the time is up") }
                    if let tokenLimit, generated >= tokenLimit {
                        throw Stop(reason: "\(tokens(tokenLimit)) were generated (the last forward pass adds up to one token per running sequence)")
                    }
                })
                finishedTokens += step.completionTokens
                pass += 1
                if temperature == 0 {
                    Console.error("note: at temperature 0 a second pass over the prompts would repeat the same responses; " +
                                  "add prompts or set --temperature to train longer")
                    break
                }
            }
        } catch let stop as Stop {
            stopReason = stop.reason
        }

        let training = try session.finish()
        let elapsed = monotonicSeconds() - start
        Console.error("train-drafter: stopped because \(stopReason); \(count(responses, "response")) finished, " +
                      "\(tokens(generated)) generated in \(fixed(elapsed, 1)) s " +
                      "(\(fixed(Double(generated) / max(elapsed, 1e-9), 1)) tokens/s), \(threads) inference thread(s), " +
                      "training on core(s) \(trainCores.map { $0.map(String.init).joined(separator: ",") } ?? "any")")
        Console.error(LearnedDrafterSession.rolloutSummary(training, path: session.path))
    }

    /// Thrown from the progress callback to end generation.
    private struct Stop: Error {
        var reason: String
    }

    /// A progress line on standard error every 5 seconds.
    private struct Progress {
        let seconds: Double?
        let tokenLimit: Int?
        let trainer: DrafterTrainer
        private var lastPrinted = 0.0

        init(seconds: Double?, tokenLimit: Int?, trainer: DrafterTrainer) {
            self.seconds = seconds
            self.tokenLimit = tokenLimit
            self.trainer = trainer
        }

        mutating func update(elapsed: Double, responses: Int, generated: Int) {
            guard elapsed - lastPrinted >= 5 else { return }
            lastPrinted = elapsed
            let time = seconds.map { "\(fixed(elapsed, 1)) of \(fixed($0, 1)) s" } ?? "\(fixed(elapsed, 1)) s"
            let amount = tokenLimit.map { "\(generated) of \(tokens($0))" } ?? tokens(generated)
            let training = trainer.statistics
            Console.error("train-drafter: \(time), \(count(responses, "response")), \(amount) generated " +
                          "(\(fixed(Double(generated) / max(elapsed, 1e-9), 1)) tokens/s), \(training.steps) training steps, " +
                          "test-then-train accuracy \(fixed(training.freshAccuracy * 100, 1)) %")
        }
    }

    private static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// "1 response", "2 responses".
private func count(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }
