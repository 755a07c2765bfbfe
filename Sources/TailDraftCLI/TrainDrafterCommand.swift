#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TailDraft

/// `taildraft train-drafter`: generates responses to a prompt file, cycling through it, for
/// a set time while the learned drafter trains on them in the background, then saves it.
enum TrainDrafterCommand {
    static func run(_ arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(Help.trainDrafter); return }
        let args = try Arguments(
            command: "train-drafter", arguments: arguments,
            valueOptions: ["model", "prompts", "minutes", "drafter", "max-tokens", "temperature", "seed", "threads",
                           "train-cores", "context"],
            flagOptions: [])
        let modelPath = try args.required("model")
        let promptsPath = try args.required("prompts")
        _ = try args.required("minutes")
        let minutes = try args.float("minutes", default: 0, range: 0.001...1_000_000, expected: "a number of minutes in 0.001...1000000")
        _ = try args.required("drafter")
        let maxTokens = try args.int("max-tokens", default: 256, range: 1...10_000_000)
        let threads = try args.int("threads", default: Engine.defaultThreadCount, range: 1...1024)
        let context = args.string("context") == nil ? nil : try args.int("context", default: 0, range: 2...1_048_576)
        let sampling = SamplingParameters(
            temperature: try args.float("temperature", default: 0, range: 0...1000, expected: "a number in 0...1000 (0 is greedy)"),
            seed: try args.uint64("seed", default: 0))

        // Everything that can fail on input fails before training starts.
        let prompts = try PromptFile.read(path: promptsPath)
        let engine = try Engine(modelPath: modelPath, threads: threads, contextLength: context)
        let promptTokens = try prompts.map { try $0.tokens(tokenizer: engine.tokenizer) }
        let session = try LearnedDrafterSession(args, model: engine.model)
        let speculation = SpeculationOptions(drafter: session.drafter, budget: 3)

        // Generate until the time is up; the response under way when it ends is finished.
        // Ctrl-C ends the response under way at once, and the drafter is saved as at the end.
        Interrupt.install()
        let start = monotonicSeconds(), seconds = Double(minutes) * 60
        var responses = 0, generated = 0, drafted = 0, accepted = 0, steps = 0
        var lastProgress = -Double.infinity
        while monotonicSeconds() - start < seconds && !Interrupt.requested {
            let prompt = promptTokens[responses % promptTokens.count]
            var responseSampling = sampling
            responseSampling.seed = sampling.seed &+ UInt64(responses)    // sampled responses to a repeated prompt differ
            let options = GenerationOptions(maxTokens: min(maxTokens, max(1, engine.generator.contextLength - prompt.count)),
                                            sampling: responseSampling, speculation: speculation,
                                            shouldStop: { Interrupt.requested })
            let result = try engine.generator.generate(promptTokens: prompt, options: options)
            responses += 1
            generated += result.tokenIds.count
            if let s = result.speculation {
                drafted += s.drafted
                accepted += s.accepted
                steps += s.steps
            }
            let elapsed = monotonicSeconds() - start
            if elapsed - lastProgress >= 5 || elapsed >= seconds {
                lastProgress = elapsed
                let training = session.trainer.statistics
                Console.error("train-drafter: \(fixed(elapsed, 1)) of \(fixed(seconds, 1)) s, \(count(responses, "response")), " +
                              "\(tokens(generated)), \(training.steps) training steps, " +
                              "test-then-train accuracy \(fixed(training.freshAccuracy * 100, 1)) %")
            }
        }

        let training = try session.finish()
        let elapsed = monotonicSeconds() - start
        let acceptance = drafted > 0 ? fixed(Double(accepted) / Double(drafted) * 100, 1) + " %" : "none drafted"
        Console.error("train-drafter: \(count(responses, "response")), \(tokens(generated)) in \(fixed(elapsed, 1)) s " +
                      "(\(fixed(Double(generated) / max(elapsed, 1e-9), 1)) tokens/s), drafts accepted: \(acceptance) " +
                      "(\(fixed(Double(generated) / Double(max(1, steps)), 2)) tokens per step)")
        Console.error(LearnedDrafterSession.summary(training, drafter: session.drafter))
        Console.error("drafter saved to \(session.path ?? "")")
    }

    /// "1 response", "2 responses".
    private static func count(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }

    private static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
