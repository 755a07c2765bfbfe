import Kernels
import TailDraft

/// `taildraft-bench`: speed measurements, apart from the tests. Each figure is the median of
/// several interleaved rounds (the rollout benchmark adds its rounds up instead), printed with
/// the CPU model and the kernel ISA path.
let usage = """
Usage: taildraft-bench <benchmark> --model PATH [options]

Benchmarks:
  decode        Prefill speed for 128- and 512-token prompts and decode speed for 128
                generated tokens, in tokens per second, at 1 and 2 threads (or only N).
                Rounds alternate between thread counts so a busy machine affects each alike.
  verify-cost   Forward-pass time for 1 to 32 rows after a 512-token context, in
                milliseconds and as a ratio to one row: what a speculative tree of that
                many nodes costs to verify. Then, for batches of 1, 2, 4 and 8 sequences,
                the most speculation could gain if every drafted token were accepted.
  kernels       The machine's memory read bandwidth and int8 peak, then each quantized
                matrix kernel (Q4_0, Q4_1, Q8_0 at SmolLM2's shapes; Q5_0, Q4_K, Q5_K,
                Q6_K at Qwen2.5-1.5B's; M = 1 to 64 rows) in microseconds per call, GB/s
                of weights and GMAC/s, as fractions of those limits. Needs no model;
                --threads defaults to 2.
  speculative   Greedy decoding with speculation off and on (see --drafter) on a
                repetitive code edit, a summary and open chat, in interleaved rounds:
                tokens per second, speedup (the median of each round's ratio, with its
                spread), tokens per step (tau) and whether both gave the same tokens.
                Threads default to 2 and 1.
  rollout       A rollout of --prompts with speculation off, suffix, learned (a fresh
                drafter trained on the rollout's responses) and auto, one after
                another: end-to-end time, tokens per second and their ratio to
                speculation off (sampled responses differ in length), the tail's
                share of the time (passes with at most --tail-threshold running
                sequences), tokens per second inside the tail and its speedup, tau, and the
                end-to-end bound Amdahl's law gives for that share and tail speedup.
                Threads default to 2.
  drafter       The learned drafter's forward time per tree level (4 rows) and for the
                root's row, from F32 weights and from the Q8_0 copy, next to one target
                decode step after a 256-token context. Then decode tokens/s with and
                without the drafter trainer on a spare core (speculation off), in 15
                rounds unless --rounds is given: the slowdown online training causes.
                Last, the acceptance curve: a fresh drafter trains online on
                Bench/prompts/drafter-stream.jsonl for --train-tokens generated tokens
                (default 16000; 0 skips it), and at five points its top-1 accuracy and
                tau, the suffix drafter's tau, the merged tree's tau at the fixed budget
                (branches always merged), and under the adaptive gate its tau, speedup
                and speed over the suffix drafter alone, are measured on the held-out
                prompts of Bench/prompts/drafter-heldout.jsonl. Threads default to 1.
  drafter-online
                Auto with a learned drafter that starts from random weights and trains
                online, against the suffix drafter alone, all under the adaptive gate:
                each round generates for the next 4 prompts of Bench/prompts/drafter-train.jsonl
                (128 greedy tokens each) with auto, with the suffix drafter while it also
                feeds the trainer (the same load on the machine) and with the suffix drafter
                alone, in rotating order. Prints speeds, taus and auto's ratio to each
                suffix run per round, and their medians over rounds (default 25). Threads
                default to 1; the trainer takes the spare core.
  drafter-eval  A saved drafter (--checkpoint, as 'taildraft train-drafter' writes it) on
                the held-out prompts (--prompts, default Bench/prompts/drafter-heldout.jsonl),
                per kind of prompt and over all: its top-1 accuracy and tau, the suffix
                drafter's tau, the merged tree's tau at the fixed budget, and under the
                adaptive gate the merged tree's tau and speedup over plain decoding and
                over the suffix drafter alone, in interleaved rounds (default 3).
                Threads default to 2.

Options:
  --model PATH     GGUF model file (required).
  --threads N      Measure only N threads (default: 1 and 2 for decode, 2 for verify-cost).
  --rounds N       Rounds per measurement, 1 to 100 (default 5; 25 for speculative,
                   whose single rounds vary by up to 20 % on a shared machine; 15 for the
                   drafter benchmark's trainer load; 25 for drafter-online; 1 for rollout;
                   3 for drafter-eval).
  --context N      Tokens already in the KV cache for verify-cost (default 512).
  --draft-budget N Most drafted tokens per step for speculative (default 3).
  --drafter NAME   Drafter for speculative: lookup (default), suffix, or empty, which never
                   drafts and so measures the speculative loop's overhead and the noise of
                   the comparison.
  --train-tokens N Generated tokens the drafter benchmark's acceptance curve trains on
                   (default 16000; 0 skips the curve).
  --checkpoint P   Drafter checkpoint for drafter-eval (required there). For rollout, the
                   drafter learned mode starts from, which also gives auto the learned and
                   merged arms (default: learned starts fresh and auto stays model-free).
  --json           Print one JSON object instead of a table.

Rollout options:
  --prompts FILE            Prompt file (default Bench/prompts/math32.jsonl).
  --samples-per-prompt N    Responses per prompt (default 4).
  --max-tokens N            Maximum tokens per response (default 256).
  --temperature T           Sampling temperature; 0 is greedy and also checks that every
                            mode gives the same tokens (default 0.7).
  --steps K                 Rollout steps per mode (default 1).
  --max-running N           Most sequences in the batch (default 64); 4 or fewer keeps the
                            whole rollout in the tail.
  --tail-threshold N        Running sequences at or below which speculation runs (default 4).
  --rounds N                Interleaved rounds of the four modes (default 1 for rollout).

Results are medians over the rounds with their spread (min..max), printed with the CPU
model.
"""

func fail(_ message: String) -> Never {
    Console.error("error: \(message)")
    exit(2)
}

/// Returns the message for a drafter checkpoint given as --model, or a model given as
/// --checkpoint, that names the options of `command`, or nil for any other error. The
/// library's messages name no option, and here --drafter selects a drafter kind, not a
/// checkpoint.
func swappedFileMessage(for error: Error, command: String) -> String? {
    switch error as? DrafterError {
    case let .checkpointGivenAsModel(path)?:
        let remedy = ["drafter-eval", "rollout"].contains(command)
            ? "pass it as --checkpoint and the model it was trained for as --model"
            : "pass the model it was trained for as --model; 'taildraft-bench \(command)' takes no drafter checkpoint, " +
              "but drafter-eval and rollout take one as --checkpoint"
        return "\(path) is a learned-drafter checkpoint, not a model; \(remedy)"
    case let .notADrafterCheckpoint(path, found)?:
        return "\(path) is not a drafter checkpoint but \(found); pass a checkpoint that 'taildraft train-drafter' wrote as --checkpoint"
    default:
        return nil
    }
}

struct BenchOptions {
    var modelPath: String?
    var threadCounts: [Int]?
    var rounds = 5
    var roundsGiven = false
    var context = 512
    var draftBudget = 3
    var drafter = "lookup"
    var json = false
    var prompts = "Bench/prompts/math32.jsonl"
    var samplesPerPrompt = 4
    var maxTokens = 256
    var temperature: Float = 0.7
    var steps = 1
    var maxRunning = 64
    var tailThreshold = 4
    var trainTokens = 16_000
    var checkpoint: String?
    var promptsGiven = false

    init(_ arguments: [String]) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            func value() -> String {
                index += 1
                guard index < arguments.count else { fail("option \(argument) needs a value") }
                return arguments[index]
            }
            func integer(_ range: ClosedRange<Int>) -> Int {
                let text = value()
                guard let n = Int(text), range.contains(n) else {
                    fail("invalid value '\(text)' for \(argument): expected an integer in \(range.lowerBound)...\(range.upperBound)")
                }
                return n
            }
            switch argument {
            case "--model": modelPath = value()
            case "--threads": threadCounts = [integer(1...256)]
            case "--rounds":
                rounds = integer(1...100)
                roundsGiven = true
            case "--context": context = integer(1...8192)
            case "--draft-budget": draftBudget = integer(1...64)
            case "--drafter":
                drafter = value()
                guard ["lookup", "suffix", "empty"].contains(drafter) else { fail("invalid value '\(drafter)' for --drafter: expected lookup, suffix or empty") }
            case "--json": json = true
            case "--prompts":
                prompts = value()
                promptsGiven = true
            case "--checkpoint": checkpoint = value()
            case "--samples-per-prompt": samplesPerPrompt = integer(1...100_000)
            case "--max-tokens": maxTokens = integer(1...1_000_000)
            case "--temperature":
                let text = value()
                guard let t = Float(text), t.isFinite, t >= 0 else { fail("invalid value '\(text)' for --temperature: expected a number >= 0") }
                temperature = t
            case "--steps": steps = integer(1...1000)
            case "--max-running": maxRunning = integer(1...100_000)
            case "--tail-threshold": tailThreshold = integer(1...100_000)
            case "--train-tokens": trainTokens = integer(0...100_000_000)
            case "--help", "-h": print(usage); exit(0)
            default: fail("unknown option '\(argument)'; see 'taildraft-bench --help'")
            }
            index += 1
        }
    }
}

// As in the taildraft command: waiting libomp workers spin instead of yielding their core
// to the idle-priority drafter trainer. A value the user set is kept.
setenv("KMP_USE_YIELD", "0", 0)

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first, !["--help", "-h", "help"].contains(command) else {
    print(usage)
    exit(arguments.isEmpty ? 2 : 0)
}
let options = BenchOptions(Array(arguments.dropFirst()))
if command == "kernels" {
    let benchmark = KernelBenchmark(threads: options.threadCounts?.first ?? 2, rounds: options.rounds)
    let report = benchmark.run(progress: !options.json)
    print(options.json ? report.json() : report.table())
    exit(0)
}
guard let modelPath = options.modelPath else { fail("missing required option --model; see 'taildraft-bench --help'") }

do {
    switch command {
    case "decode":
        let benchmark = DecodeBenchmark(modelPath: modelPath, threadCounts: options.threadCounts ?? [1, 2], rounds: options.rounds)
        let report = try benchmark.run(progress: !options.json)
        print(options.json ? report.json() : report.table())
    case "verify-cost":
        let benchmark = VerifyCostBenchmark(modelPath: modelPath, threads: options.threadCounts?.first ?? 2,
                                            rounds: options.rounds, context: options.context)
        let report = try benchmark.run(progress: !options.json)
        print(options.json ? report.json() : report.table())
    case "speculative":
        let benchmark = SpeculativeBenchmark(modelPath: modelPath, threadCounts: options.threadCounts ?? [2, 1],
                                             rounds: options.roundsGiven ? options.rounds : 25, budget: options.draftBudget,
                                             drafterName: options.drafter)
        let rows = try benchmark.run(progress: !options.json)
        print(options.json ? SpeculativeBenchmark.json(rows) : SpeculativeBenchmark.table(rows, budget: options.draftBudget, drafter: options.drafter))
    case "rollout":
        let benchmark = RolloutBenchmark(modelPath: modelPath, promptsPath: options.prompts, samplesPerPrompt: options.samplesPerPrompt,
                                         maxTokens: options.maxTokens, temperature: options.temperature, steps: options.steps,
                                         threads: options.threadCounts?.first ?? 2, tailThreshold: options.tailThreshold,
                                         maxRunning: options.maxRunning, rounds: options.roundsGiven ? options.rounds : 1,
                                         checkpointPath: options.checkpoint)
        let results = try benchmark.run(progress: !options.json)
        print(options.json ? benchmark.json(results) : benchmark.table(results))
    case "drafter":
        let benchmark = DrafterBenchmark(modelPath: modelPath, threads: options.threadCounts?.first ?? 1, rounds: options.rounds)
        print(benchmark.table(try benchmark.run(progress: true)))
        print()
        let load = TrainerLoadBenchmark(modelPath: modelPath, threads: options.threadCounts?.first ?? 1,
                                        rounds: options.roundsGiven ? options.rounds : 15)
        print(load.table(try load.run(progress: true)))
        if options.trainTokens > 0 {
            print()
            let curve = DrafterCurveBenchmark(modelPath: modelPath, threads: options.threadCounts?.first ?? 1, trainTokens: options.trainTokens)
            print(curve.table(try curve.run(progress: true)))
        }
    case "drafter-online":
        let benchmark = DrafterOnlineBenchmark(modelPath: modelPath, threads: options.threadCounts?.first ?? 1,
                                               rounds: options.roundsGiven ? options.rounds : 25)
        print(benchmark.table(try benchmark.run(progress: true)))
    case "drafter-eval":
        guard let checkpoint = options.checkpoint else { fail("drafter-eval needs --checkpoint PATH, a saved drafter") }
        let benchmark = DrafterEvaluationBenchmark(
            modelPath: modelPath, checkpointPath: checkpoint,
            promptsPath: options.promptsGiven ? options.prompts : "Bench/prompts/drafter-heldout.jsonl",
            threads: options.threadCounts?.first ?? 2, rounds: options.roundsGiven ? options.rounds : 3)
        print(benchmark.table(try benchmark.run(progress: true)))
    default:
        fail("unknown benchmark '\(command)'; the benchmarks are decode, verify-cost, kernels, speculative, rollout, drafter, " +
             "drafter-online and drafter-eval")
    }
} catch {
    fail(swappedFileMessage(for: error, command: command) ?? "\(error)")
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
