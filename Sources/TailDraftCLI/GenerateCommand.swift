import TailDraft

/// `taildraft generate`: streams generated text, then prints speeds to standard error.
enum GenerateCommand {
    static func run(_ arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(Help.generate); return }
        let args = try Arguments(
            command: "generate", arguments: arguments,
            valueOptions: ["model", "prompt", "max-tokens", "temperature", "top-k", "top-p", "min-p", "seed", "context", "threads",
                           "speculate", "draft-budget", "draft-depth", "drafter", "train-cores", "replay-mb"],
            flagOptions: ["chat", "json"])
        let modelPath = try args.required("model")
        let prompt = try args.required("prompt")
        let sampling = SamplingParameters(
            temperature: try args.float("temperature", default: 0.8, range: 0...1000, expected: "a number in 0...1000 (0 is greedy)"),
            topK: try args.int("top-k", default: 40, range: 0...1_000_000),
            topP: try args.float("top-p", default: 0.95, range: Float.leastNonzeroMagnitude...1, expected: "a number in (0, 1]"),
            minP: try args.float("min-p", default: 0.05, range: 0...1, expected: "a number in [0, 1]"),
            seed: try args.uint64("seed", default: 0))
        let maxTokens = try args.int("max-tokens", default: 256, range: 0...10_000_000)
        let threads = try args.int("threads", default: Engine.defaultThreadCount, range: 1...1024)
        let context = args.string("context") == nil ? nil : try args.int("context", default: 0, range: 2...1_048_576)
        let json = args.flag("json")
        if threads > Engine.defaultThreadCount {
            Console.error("warning: --threads \(threads) is more than the \(Engine.defaultThreadCount) cores of this machine; threads beyond the core count slow generation down")
        }

        let engine = try Engine(modelPath: modelPath, threads: threads, contextLength: context)
        let promptTokens = args.flag("chat") ? try engine.tokenizeChat(userMessage: prompt) : engine.tokenizePrompt(prompt)
        // --speculate auto merges the learned drafter's branches only when --drafter names it.
        let mode = args.string("speculate")
        let usesLearned = mode == "learned" || (mode == "auto" && args.string("drafter") != nil)
        let learned = usesLearned ? try LearnedDrafterSession(args, model: engine.model) : nil
        if let learned, !learned.trainerHasOwnCores, engine.model.threads > 1 {
            // Workers that yield or sleep between passes would hand their core to the trainer.
            engine.model.keepWorkersSpinning()
            let online = ProcessorCount.online
            if args.string("train-cores") == nil && engine.model.threads >= online {
                Console.error("note: training shares all \(online) cores with the \(engine.model.threads) inference threads, so it " +
                              "only gets the cycles inference leaves; use --threads \(online - 1) --train-cores \(online - 1) to give it a core")
            }
        }
        if learned == nil && (args.string("drafter") != nil || args.string("train-cores") != nil || args.string("replay-mb") != nil) {
            throw UsageError(description: "--drafter, --train-cores and --replay-mb need --speculate learned, or --speculate auto with --drafter")
        }
        var speculation = try speculationOptions(args, learned: learned?.drafter)
        if let budget = speculation?.budget {
            // Measured once per model, kernel path and thread count, then read from the cache.
            speculation?.cost = try VerificationCost.cached(model: engine.model, modelPath: modelPath, maxRows: budget + 1)
        }
        // A learned drafter trains while generating and is saved at exit, so Ctrl-C ends
        // generation cleanly instead of losing that training.
        if learned != nil { Interrupt.install() }
        let options = GenerationOptions(maxTokens: maxTokens, sampling: sampling, speculation: speculation,
                                        shouldStop: learned == nil ? nil : { Interrupt.requested })

        // Long prompts take seconds to prefill: report each chunk on standard error.
        let showProgress = !json && promptTokens.count > engine.generator.prefillChunk
        let progress: (Int, Int) -> Void = { done, total in
            if showProgress { Console.error("prefill: \(done)/\(total) prompt tokens") }
        }
        let result = try engine.generator.generate(promptTokens: promptTokens, options: options, onPrefillProgress: progress) { piece in
            guard !json else { return }
            Console.write(piece)
        }
        let training = try learned?.finish()
        let t = result.timings
        if json {
            var fields: [(String, JSON)] = [
                ("prompt_token_ids", JSON.ids(result.promptTokenIds)),
                ("token_ids", JSON.ids(result.tokenIds)),
                ("text", .string(result.text)),
                ("finish_reason", .string(result.finishReason.rawValue)),
                ("timings", .object([
                    ("prompt_tokens", .int(t.promptTokens)),
                    ("prefill_seconds", .number(t.prefillSeconds)),
                    ("prefill_tokens_per_second", .number(t.prefillTokensPerSecond)),
                    ("generated_tokens", .int(result.tokenIds.count)),
                    ("decode_seconds", .number(t.decodeSeconds)),
                    ("decode_tokens_per_second", .number(t.decodeTokensPerSecond)),
                ])),
            ]
            if let s = result.speculation {
                fields.append(("speculation", .object([
                    ("drafter", .string(s.drafterName)),
                    ("steps", .int(s.steps)),
                    ("switched_off_steps", .int(s.switchedOffSteps)),
                    ("drafted", .int(s.drafted)),
                    ("accepted", .int(s.accepted)),
                    ("acceptance_rate", .number(s.acceptanceRate)),
                    ("acceptance_length", .number(s.acceptanceLength)),
                    ("acceptance_by_depth", .array(s.acceptanceByDepth.map { .number($0) })),
                    ("draft_ms", .number(s.draftSeconds * 1000)),
                    ("verify_ms", .number(s.verifySeconds * 1000)),
                ] + mergeFields(speculation?.drafter))))
            }
            if let training, let drafter = learned?.drafter {
                fields.append(("drafter_training", LearnedDrafterSession.json(training, drafter: drafter)))
            }
            print(JSON.object(fields).serialized())
        } else {
            print()
            Console.error("prefill: \(tokens(t.promptTokens)) in \(fixed(t.prefillSeconds * 1000, 1)) ms (\(fixed(t.prefillTokensPerSecond, 1)) tokens/s)")
            var reason = result.finishReason.rawValue
            if result.finishReason == .length && result.tokenIds.count < maxTokens {
                reason += " (the context of \(engine.generator.contextLength) tokens is full; raise --context)"
            }
            if let s = result.speculation {
                Console.error("speculation (\(s.drafterName)): \(s.steps) steps (\(s.switchedOffSteps) with speculation switched off), \(s.accepted) of \(s.drafted) drafted tokens accepted " +
                              "(\(fixed(s.acceptanceRate * 100, 1)) %), \(fixed(s.acceptanceLength, 2)) tokens per step, " +
                              "drafting \(fixed(s.draftSeconds * 1000, 1)) ms, verifying \(fixed(s.verifySeconds * 1000, 1)) ms")
            }
            if let auto = speculation?.drafter as? AutoDrafter, auto.mergedDrafter != nil {
                Console.error("auto: learned branches in \(plural(auto.mergedSteps, "step")), \(auto.trialSteps) of them trials " +
                              "(\(auto.skippedTrials) more left out while the learned drafter's accuracy was below " +
                              "\(fixed(auto.policy.minAccuracy * 100, 0)) %), merged \(plural(auto.merges, "time")) and dropped " +
                              "\(plural(auto.drops, "time")), \(fixed(auto.expectedGain, 2)) extra tokens per step at the end")
            }
            if let training, let drafter = learned?.drafter {
                Console.error(LearnedDrafterSession.summary(training, drafter: drafter))
                if let path = learned?.path { Console.error("drafter saved to \(path)") }
            }
            Console.error("decode: \(tokens(result.tokenIds.count)) in \(fixed(t.decodeSeconds * 1000, 1)) ms (\(fixed(t.decodeTokensPerSecond, 1)) tokens/s), finish reason: \(reason), kernels: \(KernelPath.active)")
        }
    }
}

/// Reads --speculate, --draft-budget and --draft-depth; nil when speculation is off.
/// `learned` is the drafter for --speculate learned, and the drafter whose branches
/// --speculate auto merges when given.
private func speculationOptions(_ args: Arguments, learned: LearnedDrafter?) throws -> SpeculationOptions? {
    let budget = try args.int("draft-budget", default: 3, range: 1...64)
    let depth = try args.int("draft-depth", default: 8, range: 1...64)
    switch args.string("speculate") ?? "none" {
    case "none":
        return nil
    case "lookup":
        return SpeculationOptions(drafter: LookupDrafter(), budget: budget, maxDepth: depth)
    case "suffix":
        return SpeculationOptions(drafter: SuffixDrafter(), budget: budget, maxDepth: depth)
    case "auto":
        return SpeculationOptions(drafter: AutoDrafter(merging: learned), budget: budget, maxDepth: depth)
    case "learned":
        guard let learned else { return nil }
        return SpeculationOptions(drafter: learned, budget: budget, maxDepth: depth)
    case let other:
        throw UsageError(description: "invalid value '\(other)' for --speculate: expected none, lookup, suffix, auto or learned")
    }
}

/// Returns the JSON fields of an `AutoDrafter` that merges the learned drafter's branches
/// (steps with merged branches, trial steps, trials left out, merges, drops and the final
/// average gain). Other drafters get none.
private func mergeFields(_ drafter: (any Drafter)?) -> [(String, JSON)] {
    guard let auto = drafter as? AutoDrafter, auto.mergedDrafter != nil else { return [] }
    return [("merged_steps", .int(auto.mergedSteps)), ("trial_steps", .int(auto.trialSteps)), ("skipped_trials", .int(auto.skippedTrials)),
            ("merges", .int(auto.merges)), ("drops", .int(auto.drops)),
            ("merge_gain", .number(auto.expectedGain))]
}

/// "1 token", "2 tokens".
func tokens(_ count: Int) -> String {
    count == 1 ? "1 token" : "\(count) tokens"
}
