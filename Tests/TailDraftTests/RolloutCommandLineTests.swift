import Foundation
import Testing
@testable import TailDraft

/// `taildraft rollout` as a user runs it.
@Suite(.serialized) struct RolloutCommandLineTests {
    /// Writes `text` to a prompt file in `directory` and returns its path.
    static func promptFile(_ text: String, in directory: URL) throws -> String {
        let url = directory.appendingPathComponent("prompts.jsonl")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static let twoPrompts = """
    {"id": "add", "messages": [{"role": "user", "content": "What is 2 + 3?"}]}
    {"id": 2, "prompt": "The capital of France is"}
    """

    @Test func helpExplainsFlagsWithUnits() throws {
        let run = try CommandLineTests.run(["rollout", "--help"])
        #expect(run.status == 0)
        for flag in ["--prompts FILE", "--samples-per-prompt N", "--steps K", "--speculate MODE", "--kv-budget TOKENS",
                     "--out FILE", "--report DIR", "--threads N"] {
            #expect(run.standardOutput.contains(flag), "missing \(flag)")
        }
        #expect(run.standardOutput.contains("tokens per second"))
        #expect(run.standardOutput.contains("23 KB per token"))
    }

    /// --drafter trains the learned drafter on the rollout's responses and saves it, and the
    /// responses stay those of a rollout without it.
    @Test func drafterTrainsOnRolloutAndIsSaved() throws {
        try withTemporaryDirectory { directory in
            let prompts = try Self.promptFile(Self.twoPrompts, in: directory)
            let checkpoint = directory.appendingPathComponent("drafter.gguf").path
            let common = ["rollout", "--model", Fixtures.smolLMPath, "--prompts", prompts, "--samples-per-prompt", "2",
                          "--max-tokens", "12", "--temperature", "0"]
            let plain = try CommandLineTests.run(common)
            let trained = try CommandLineTests.run(common + ["--drafter", checkpoint, "--train-cores", "0"])
            #expect(trained.status == 0, "stderr: \(trained.standardError)")
            #expect(trained.standardOutput == plain.standardOutput)
            #expect(trained.standardError.contains("drafter training:"), "stderr: \(trained.standardError)")
            #expect(trained.standardError.contains("saved to \(checkpoint)"))
            #expect(FileManager.default.fileExists(atPath: checkpoint))

            let alone = try CommandLineTests.run(common + ["--train-cores", "0"])
            #expect(alone.status == 2)
            #expect(alone.standardError.contains("--train-cores needs --drafter"))
        }
    }

    /// Ctrl-C during a rollout that trains the drafter ends it after the current pass: the
    /// responses written so far stay, the drafter is saved, and the exit status is 130.
    @Test func interruptedRolloutSavesDrafter() throws {
        try withTemporaryDirectory { directory in
            let prompts = try Self.promptFile(Self.twoPrompts, in: directory)
            let checkpoint = directory.appendingPathComponent("drafter.gguf").path
            let run = try CommandLineTests.interrupt(["rollout", "--model", Fixtures.smolLMPath, "--prompts", prompts,
                                                      "--samples-per-prompt", "4", "--max-tokens", "3000", "--steps", "3",
                                                      "--drafter", checkpoint, "--threads", "1"])
            let message = run.standardError
            #expect(run.status == 130, "stderr: \(message)")
            #expect(message.contains("rollout interrupted: 0 of 3 steps complete"), "stderr: \(message)")
            #expect(message.contains("saved to \(checkpoint)"), "stderr: \(message)")
            #expect(FileManager.default.fileExists(atPath: checkpoint))
            let lines = run.standardOutput.split(separator: "\n")
            #expect(!lines.isEmpty, "a response was written before the signal")
            #expect(lines.allSatisfy { $0.hasPrefix("{") }, "only whole response lines")
            #expect(lines.allSatisfy { $0.hasSuffix("}") }, "only whole response lines")
        }
    }

    @Test func writesLinesSummaryAndReport() throws {
        try withTemporaryDirectory { directory in
            let prompts = try Self.promptFile(Self.twoPrompts, in: directory)
            let out = directory.appendingPathComponent("out.jsonl").path
            let report = directory.appendingPathComponent("report").path
            let run = try CommandLineTests.run(["rollout", "--model", Fixtures.smolLMPath, "--prompts", prompts,
                                                "--samples-per-prompt", "2", "--max-tokens", "6", "--temperature", "0",
                                                "--steps", "2", "--speculate", "auto", "--out", out, "--report", report,
                                                "--threads", "2"])
            #expect(run.status == 0, "stderr: \(run.standardError)")
            #expect(run.standardOutput.isEmpty)

            let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 8, "2 prompts x 2 samples x 2 steps")
            var seen: Set<String> = []
            for line in lines {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                for key in ["prompt_id", "sample_index", "step", "seed", "token_ids", "text", "finish_reason", "completion_tokens"] {
                    #expect(object[key] != nil, "missing \(key) in \(line)")
                }
                #expect((object["token_ids"] as? [Int])?.count == object["completion_tokens"] as? Int)
                seen.insert("\(object["prompt_id"]!)/\(object["sample_index"]!)/\(object["step"]!)")
            }
            #expect(seen.count == 8)
            let steps = Set(lines.compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["step"] as? Int
            })
            #expect(steps == [1, 2], "response lines number steps from 1, as the progress lines and the summary do")
            #expect(run.standardError.contains("step 1/2:"), "stderr: \(run.standardError)")
            #expect(run.standardError.contains("step 2/2:"), "stderr: \(run.standardError)")

            // Greedy responses do not depend on the step's seed.
            let texts = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .filter { "\($0["prompt_id"]!)" == "2" }.compactMap { $0["text"] as? String }
            #expect(Set(texts).count == 1, "\(texts)")
            #expect(texts.first?.hasPrefix(" Paris") == true)

            #expect(run.standardError.contains("step  responses  tokens"))
            #expect(run.standardError.contains("peak resident memory"))
            #expect(run.standardError.contains("bandit"))
            expectBanditListsOneStrategyPerLine(run.standardError)
            for name in ["report.json", "response-lengths.svg", "throughput.svg", "batch-size.svg", "step-times.svg"] {
                #expect(FileManager.default.fileExists(atPath: report + "/" + name), "missing \(name)")
            }
        }
    }

    /// Checks the bandit part of a rollout summary: each bucket's heading, then one line per
    /// strategy it tried (name, rate and pulls), then at most one line of untried ones.
    func expectBanditListsOneStrategyPerLine(_ summary: String) {
        let lines = summary.split(separator: "\n").map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("bandit, committed tokens/s") }) else {
            Issue.record("no bandit section in: \(summary)")
            return
        }
        let section = lines[(start + 1)...].prefix { $0.hasPrefix("  ") }
        #expect(section.first?.contains(" running: ") == true, "\(section)")
        let strategies = section.filter { $0.hasPrefix("    ") && !$0.hasPrefix("    not tried: ") }
        #expect(!strategies.isEmpty, "\(section)")
        for line in strategies {
            let fields = line.split(separator: " ")
            #expect(fields.count == 5, "one strategy, its rate in tokens/s and its pulls: '\(line)'")
            #expect(fields.dropFirst(2).first == "tokens/s", "'\(line)'")
            #expect(fields.last == "pull" || fields.last == "pulls", "'\(line)'")
        }
    }

    @Test func responsesGoToStandardOutputWithoutOut() throws {
        try withTemporaryDirectory { directory in
            let prompts = try Self.promptFile(#"{"id": "p", "prompt": "Hello"}"#, in: directory)
            let run = try CommandLineTests.run(["rollout", "--model", Fixtures.smolLMPath, "--prompts", prompts,
                                                "--max-tokens", "3", "--threads", "1"])
            #expect(run.status == 0, "stderr: \(run.standardError)")
            let lines = run.standardOutput.split(separator: "\n")
            #expect(lines.count == 1)
            #expect(lines.first?.hasPrefix(#"{"prompt_id": "p", "sample_index": 0"#) == true)
            #expect(!run.standardError.contains("\r"), "progress is plain lines when standard error is not a terminal")
        }
    }

    @Test func badPromptLineNamesLineAndFix() throws {
        try withTemporaryDirectory { directory in
            let prompts = try Self.promptFile("{\"id\": \"a\", \"prompt\": \"x\"}\n{\"id\": \"b\", \"text\": \"y\"}\n", in: directory)
            let run = try CommandLineTests.run(["rollout", "--model", Fixtures.smolLMPath, "--prompts", prompts])
            #expect(run.status == 1)
            #expect(run.standardError.hasPrefix("error: invalid prompt file \(prompts):2: missing \"prompt\" or \"messages\""), "\(run.standardError)")
            #expect(run.standardOutput.isEmpty)
        }
    }

    @Test(arguments: [
        (["--speculate", "magic"], "'magic' for --speculate: expected none, lookup, suffix, auto or learned"),
        (["--speculate", "learned"], "--speculate learned needs --drafter PATH"),
        (["--samples-per-prompt", "0"], "invalid value '0' for --samples-per-prompt: expected an integer in 1...100000"),
        (["--steps", "x"], "invalid value 'x' for --steps"),
        (["--temperature", "-1"], "invalid value '-1' for --temperature"),
        (["--kv-budget", "0"], "invalid value '0' for --kv-budget"),
        (["--sample-per-prompt", "2"], "unknown option '--sample-per-prompt' for 'rollout'"),
    ])
    func invalidFlagNamesValueAndFix(_ extra: [String], _ message: String) throws {
        let run = try CommandLineTests.run(["rollout", "--model", Fixtures.smolLMPath, "--prompts", "unused.jsonl"] + extra)
        #expect(run.status == 2)
        #expect(run.standardError.contains(message), "\(run.standardError)")
    }

    @Test func missingPromptsIsReported() throws {
        let run = try CommandLineTests.run(["rollout", "--model", Fixtures.smolLMPath])
        #expect(run.status == 2)
        #expect(run.standardError.contains("missing required option --prompts for 'rollout'"))
    }

    @Test func tooSmallKVBudgetNamesTheNeed() throws {
        try withTemporaryDirectory { directory in
            let prompts = try Self.promptFile(Self.twoPrompts, in: directory)
            let run = try CommandLineTests.run(["rollout", "--model", Fixtures.smolLMPath, "--prompts", prompts, "--kv-budget", "50"])
            #expect(run.status == 1)
            #expect(run.standardError.contains("the KV budget of 50 tokens is smaller than one sequence"), "\(run.standardError)")
        }
    }
}
