import TailDraft

/// Plain against speculative greedy decoding on three kinds of work, interleaved round by
/// round: a repetitive code edit, a summary of a given passage, and open-ended chat. Checks
/// that both produce the same tokens, and reports the speedup and tokens per step (tau).
///
/// The speedup is the median over rounds of each round's speculative over plain speed. The
/// two runs of a round follow each other within a second, so a slow minute on a shared
/// machine slows both, and they take turns going first, so neither profits from the other.
struct SpeculativeBenchmark {
    let modelPath: String
    let threadCounts: [Int]
    let rounds: Int
    let maxTokens = 160
    let budget: Int
    /// "lookup", "suffix" or "empty" (`EmptyDrafter`).
    let drafterName: String

    func makeDrafter() -> any Drafter {
        if drafterName == "empty" { return EmptyDrafter() }
        return drafterName == "suffix" ? SuffixDrafter() : LookupDrafter()
    }

    static let tasks: [(name: String, message: String)] = [
        ("repetitive", """
        Rename the variable count to total in this JavaScript code.

        let count = 0;
        const items = ["apple", "banana", "cherry", "date", "elderberry"];
        for (const item of items) {
          if (item.startsWith("b")) {
            continue;
          }
          count += item.length;
        }
        const average = count / items.length;
        console.log("Total letters:", count);
        console.log("Average length:", average);
        """),
        ("summary", """
        Summarize this passage in two sentences.

        The city library reopened on Monday after a two-year renovation. The building now has a \
        larger children's section, a quiet reading room on the top floor and a cafe near the \
        entrance. The library also extended its opening hours: it stays open until nine in the \
        evening on weekdays. Officials said the renovation cost less than planned because local \
        volunteers helped move the books.
        """),
        ("chat", "What are three good habits for learning a new language?"),
    ]

    struct Row {
        var task: String
        var threads: Int
        var plain: Summary
        var speculative: Summary
        var tau: Double
        var acceptanceRate: Double
        var sameTokens: Bool
        /// Speculative over plain speed, one per round.
        var ratios: Summary
        var speedup: Double { ratios.median }
    }

    func run(progress: Bool) throws -> [Row] {
        let engine = try Engine(modelPath: modelPath, threads: threadCounts[0], contextLength: 1024)
        var plainSpeed: [String: [Double]] = [:], specSpeed: [String: [Double]] = [:], ratios: [String: [Double]] = [:]
        var tau: [String: Double] = [:], rate: [String: Double] = [:], same: [String: Bool] = [:]
        for round in 0..<rounds {
            for threads in threadCounts {
                engine.model.threads = threads
                for task in Self.tasks {
                    let key = "\(task.name)/\(threads)"
                    let prompt = try engine.tokenizeChat(userMessage: task.message)
                    let cost = try VerificationCost.cached(model: engine.model, modelPath: modelPath, maxRows: budget + 1)
                    let speculation = SpeculationOptions(drafter: makeDrafter(), budget: budget, cost: cost)
                    let runPlain = { try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: self.maxTokens)) }
                    let runSpeculative = {
                        try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: self.maxTokens, speculation: speculation))
                    }
                    let plain: GenerationResult, speculative: GenerationResult
                    if round % 2 == 0 {
                        plain = try runPlain()
                        speculative = try runSpeculative()
                    } else {
                        speculative = try runSpeculative()
                        plain = try runPlain()
                    }
                    let plainRate = Double(plain.tokenIds.count) / plain.timings.decodeSeconds
                    let specRate = Double(speculative.tokenIds.count) / speculative.timings.decodeSeconds
                    plainSpeed[key, default: []].append(plainRate)
                    specSpeed[key, default: []].append(specRate)
                    ratios[key, default: []].append(specRate / plainRate)
                    tau[key] = speculative.speculation?.acceptanceLength ?? 0
                    rate[key] = speculative.speculation?.acceptanceRate ?? 0
                    same[key] = (same[key] ?? true) && plain.tokenIds == speculative.tokenIds
                }
            }
            if progress { Console.error("round \(round + 1)/\(rounds) done") }
        }
        return threadCounts.flatMap { threads in
            Self.tasks.map { task in
                let key = "\(task.name)/\(threads)"
                return Row(task: task.name, threads: threads, plain: Summary(samples: plainSpeed[key]!),
                           speculative: Summary(samples: specSpeed[key]!), tau: tau[key]!, acceptanceRate: rate[key]!, sameTokens: same[key]!,
                           ratios: Summary(samples: ratios[key]!))
            }
        }
    }

    static func table(_ rows: [Row], budget: Int, drafter: String) -> String {
        var lines = ["cpu: \(cpuModel())", "kernels: \(KernelPath.active), drafter: \(drafter), draft budget: \(budget)", "",
                     "task         threads  plain tok/s  speculative tok/s  speedup  min..max    tau   accepted  same tokens"]
        for row in rows {
            let spread = decimals(row.ratios.minimum, 2) + ".." + decimals(row.ratios.maximum, 2)
            lines.append("\(row.task.padding(12)) \(String(row.threads).padding(8)) \(decimals(row.plain.median, 1).padding(12)) " +
                         "\(decimals(row.speculative.median, 1).padding(18)) \(decimals(row.speedup, 2).padding(8)) \(spread.padding(11)) \(decimals(row.tau, 2).padding(5)) " +
                         "\((decimals(row.acceptanceRate * 100, 1) + " %").padding(9)) \(row.sameTokens ? "yes" : "NO")")
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ rows: [Row]) -> String {
        let entries = rows.map {
            "{\"task\": \"\($0.task)\", \"threads\": \($0.threads), \"plain_tokens_per_second\": \($0.plain.median), " +
            "\"speculative_tokens_per_second\": \($0.speculative.median), \"speedup\": \($0.speedup), " +
            "\"speedup_min\": \($0.ratios.minimum), \"speedup_max\": \($0.ratios.maximum), " +
            "\"acceptance_length\": \($0.tau), \"acceptance_rate\": \($0.acceptanceRate), \"same_tokens\": \($0.sameTokens)}"
        }
        return "{\"results\": [\(entries.joined(separator: ", "))]}"
    }


}

/// A drafter that never proposes a token. Every step then runs through the speculative loop
/// without a draft, so its speedup shows the loop's own overhead and how far the comparison
/// moves on this machine without any speculation.
final class EmptyDrafter: Drafter {
    let name = "empty"

    func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        DraftTree(root: context[context.count - 1])
    }
}
