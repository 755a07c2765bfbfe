import Foundation
import Testing
@testable import TailDraft

/// The `taildraft` executable as a user runs it: exit codes, messages and JSON output.
@Suite(.serialized) struct CommandLineTests {
    struct Run {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// The `taildraft` binary built next to the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("taildraft")
    }

    static func run(_ arguments: [String]) throws -> Run {
        try run(arguments, interruptAfterFirstOutput: false)
    }

    /// Runs the `taildraft-bench` binary built next to `taildraft` with `arguments`.
    static func runBenchmark(_ arguments: [String]) throws -> Run {
        try run(arguments, interruptAfterFirstOutput: false,
                executable: binary.deletingLastPathComponent().appendingPathComponent("taildraft-bench"))
    }

    /// Starts `taildraft` with `arguments`, waits for its first output on standard output
    /// (so it is running, with any signal handler in place), sends it SIGINT and collects the
    /// rest. Returns the run with everything it wrote.
    static func interrupt(_ arguments: [String]) throws -> Run {
        try run(arguments, interruptAfterFirstOutput: true)
    }

    private static func run(_ arguments: [String], interruptAfterFirstOutput: Bool, executable: URL = binary) throws -> Run {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        var outData = Data()
        if interruptAfterFirstOutput {
            outData = out.fileHandleForReading.availableData
            kill(process.processIdentifier, SIGINT)
        }
        outData += out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, standardOutput: String(decoding: outData, as: UTF8.self),
                   standardError: String(decoding: errData, as: UTF8.self))
    }

    @Test func binaryIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "expected \(Self.binary.path); build with 'swift build'")
    }

    @Test func generateHelpExplainsUnits() throws {
        let run = try Self.run(["generate", "--help"])
        #expect(run.status == 0)
        #expect(run.standardOutput.contains("--max-tokens N"))
        #expect(run.standardOutput.contains("tokens per second"))
        #expect(run.standardOutput.contains("KV cache size in tokens"))
    }

    @Test func unknownOptionFailsWithOneLine() throws {
        let run = try Self.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--tempreature", "1"])
        #expect(run.status == 2)
        #expect(run.standardError == "error: unknown option '--tempreature' for 'generate'; see 'taildraft generate --help'\n")
        #expect(run.standardOutput.isEmpty)
    }

    @Test func invalidNumberNamesValueAndRange() throws {
        let run = try Self.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--top-p", "1.5"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("'1.5'"))
        #expect(run.standardError.contains("(0, 1]"))
    }

    @Test func missingValueIsReported() throws {
        let run = try Self.run(["tokenize", "--model"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("--model needs a value"))
    }

    @Test func missingModelFileNamesPath() throws {
        let run = try Self.run(["info", "--model", "/nonexistent/model.gguf"])
        #expect(run.status == 1)
        #expect(run.standardError.contains("/nonexistent/model.gguf"))
        #expect(run.standardError.contains("No such file"))
    }

    @Test func truncatedModelFileIsRejected() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.smolLMPath), options: .alwaysMapped)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("taildraft-cli-truncated-\(getpid()).gguf")
        try data.prefix(1_000_000).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let run = try Self.run(["generate", "--model", path.path, "--prompt", "hi"])
        #expect(run.status == 1)
        #expect(run.standardError.hasPrefix("error: "))
        #expect(run.standardError.contains("truncated"))
        #expect(run.standardOutput.isEmpty)
    }

    @Test func generateJSONMatchesLlamaCppIds() throws {
        let golden = try GoldenGreedyCase.load().first { $0.id == "p02_fact" }!
        let run = try Self.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", golden.prompt,
                                "--temperature", "0", "--max-tokens", "8", "--json", "--threads", "1"])
        #expect(run.status == 0, "stderr: \(run.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        #expect((object["prompt_token_ids"] as? [Int]) == golden.prompt_token_ids.map(Int.init))
        #expect((object["token_ids"] as? [Int]) == golden.generated_token_ids.prefix(8).map(Int.init))
        #expect((object["text"] as? String)?.hasPrefix(" Paris") == true)
        #expect(object["finish_reason"] as? String == "length")
        let timings = try #require(object["timings"] as? [String: Any])
        #expect(timings["prefill_tokens_per_second"] is Double)
        #expect(timings["decode_tokens_per_second"] is Double)
    }

    @Test func generateStreamsTextAndReportsSpeed() throws {
        let run = try Self.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "The capital of France is",
                                "--temperature", "0", "--max-tokens", "4"])
        #expect(run.status == 0)
        #expect(run.standardOutput.hasPrefix(" Paris"))
        #expect(run.standardError.contains("tokens/s"))
        #expect(run.standardError.contains("finish reason: length"))
    }

    @Test func tokenizeJSONParsesControlTokens() throws {
        let run = try Self.run(["tokenize", "--model", Fixtures.smolLMPath, "--text", "<|im_start|>user\nHello", "--json"])
        #expect(run.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        #expect((object["ids"] as? [Int])?.first == 1)
        #expect((object["pieces"] as? [String])?.first == "<|im_start|>")
        #expect((object["pieces"] as? [String])?.joined() == "<|im_start|>user\nHello")
    }

    /// A token holding part of a multi-byte character shows its bytes, not replacement marks.
    @Test func tokenizeShowsPartialCharacterBytes() throws {
        let run = try Self.run(["tokenize", "--model", Fixtures.smolLMPath, "--text", "日本語 café"])
        #expect(run.status == 0)
        let lines = run.standardOutput.split(separator: "\n")
        #expect(lines.first == "23274\t<bytes E6 97>")
        #expect(lines.contains("37366\t\" café\""))
        #expect(!run.standardOutput.contains("\u{FFFD}"))

        let json = try Self.run(["tokenize", "--model", Fixtures.smolLMPath, "--text", "日本語", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let bytes = try #require(object["bytes"] as? [[Int]])
        #expect(bytes.first == [0xE6, 0x97])
        #expect(bytes.flatMap { $0 } == Array("日本語".utf8).map(Int.init))
    }

    @Test func infoDescribesModel() throws {
        let run = try Self.run(["info", "--model", Fixtures.smolLMPath])
        #expect(run.status == 0)
        #expect(run.standardOutput.contains("architecture: llama"))
        #expect(run.standardOutput.contains("layers: 30"))
        #expect(run.standardOutput.contains("end-of-generation ids: [0, 2, 4]"))
        #expect(run.standardOutput.contains("tied to the token embedding"))
        // 30 layers, keys and values of 3 heads of 64 elements, 2 bytes each.
        #expect(run.standardOutput.contains("KV cache: 23040 bytes per token"))
    }
}

/// Invalid settings found by trying the CLI as a new user.
@Suite(.serialized) struct CommandLineSettingsTests {
    @Test func contextBeyondTrainingIsRejected() throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--context", "600000"])
        #expect(run.status == 1)
        #expect(run.standardError == "error: invalid context length 600000: expected 2...8192 tokens, the context this model was trained for\n")
    }

    @Test func unknownKernelPathIsRejected() throws {
        let process = Process()
        process.executableURL = CommandLineTests.binary
        process.arguments = ["info", "--model", Fixtures.smolLMPath]
        process.environment = ["TAILDRAFT_ISA": "bogus"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(message.contains("invalid TAILDRAFT_ISA 'bogus'"))
    }

    @Test func repeatedOptionIsRejected() throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "a", "--prompt", "b"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("--prompt is given twice"))
    }

    @Test func helpForUnknownCommandFails() throws {
        let run = try CommandLineTests.run(["help", "bogus"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("unknown command 'bogus'"))
    }

    @Test func fullContextIsExplained() throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "The capital of France is",
                                            "--context", "8", "--max-tokens", "10", "--temperature", "0"])
        #expect(run.status == 0)
        #expect(run.standardError.contains("the context of 8 tokens is full"))
    }

    @Test func directoryAsModelIsRejected() throws {
        let run = try CommandLineTests.run(["info", "--model", FileManager.default.temporaryDirectory.path])
        #expect(run.status == 1)
        #expect(run.standardError.contains("is a directory"))
    }
}

/// `generate --speculate` as a user runs it.
@Suite(.serialized) struct CommandLineSpeculationTests {
    @Test func lookupGivesSameTextAndStatistics() throws {
        let prompt = "Copy this list exactly: apple, banana, cherry, apple, banana, cherry, apple,"
        let common = ["generate", "--model", Fixtures.smolLMPath, "--prompt", prompt, "--temperature", "0", "--max-tokens", "40", "--json"]
        let plain = try CommandLineTests.run(common)
        let speculative = try CommandLineTests.run(common + ["--speculate", "lookup"])
        #expect(plain.status == 0)
        #expect(speculative.status == 0, "stderr: \(speculative.standardError)")
        let a = try #require(try JSONSerialization.jsonObject(with: Data(plain.standardOutput.utf8)) as? [String: Any])
        let b = try #require(try JSONSerialization.jsonObject(with: Data(speculative.standardOutput.utf8)) as? [String: Any])
        #expect((a["token_ids"] as? [Int]) == (b["token_ids"] as? [Int]))
        #expect(a["speculation"] == nil)
        let statistics = try #require(b["speculation"] as? [String: Any])
        for key in ["steps", "switched_off_steps", "drafted", "accepted", "acceptance_length", "acceptance_by_depth", "draft_ms",
                    "verify_ms"] {
            #expect(statistics[key] != nil, "missing \(key)")
        }
        #expect((statistics["accepted"] as? Int ?? 0) > 0, "the list repeats, so lookup drafts should be accepted")
    }

    /// The text summary names the steps that speculation skipped as the JSON field
    /// switched_off_steps does, with the same count.
    @Test func switchedOffStepsMatchBetweenTextAndJSON() throws {
        let common = ["generate", "--model", Fixtures.smolLMPath, "--prompt", "The capital of France is", "--temperature", "0",
                      "--max-tokens", "24", "--speculate", "lookup"]
        let json = try CommandLineTests.run(common + ["--json"])
        #expect(json.status == 0, "stderr: \(json.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let statistics = try #require(object["speculation"] as? [String: Any])
        let steps = try #require(statistics["steps"] as? Int)
        let switchedOff = try #require(statistics["switched_off_steps"] as? Int)
        #expect(statistics["gated_steps"] == nil)

        let text = try CommandLineTests.run(common)
        #expect(text.status == 0, "stderr: \(text.standardError)")
        #expect(text.standardError.contains("speculation (lookup): \(steps) steps (\(switchedOff) with speculation switched off), "),
                "stderr: \(text.standardError)")
    }

    @Test func learnedDrafterKeepsTextAndSavesCheckpoint() throws {
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("drafter.gguf").path
            let common = ["generate", "--model", Fixtures.smolLMPath, "--prompt", "The capital of France is", "--temperature", "0",
                          "--max-tokens", "24", "--json"]
            let plain = try CommandLineTests.run(common)
            let a = try #require(try JSONSerialization.jsonObject(with: Data(plain.standardOutput.utf8)) as? [String: Any])
            // Round 0 shares the cores with inference. Round 1 gives training the last core and
            // keeps the single inference thread off it, on machines with two or more cores.
            let lastCore = String(ProcessorCount.online - 1)
            for round in 0..<2 {
                let placement = round == 0 ? ["--train-cores", "0"] : ["--train-cores", lastCore, "--threads", "1"]
                let learned = try CommandLineTests.run(common + ["--speculate", "learned", "--drafter", path] + placement)
                #expect(learned.status == 0, "round \(round), stderr: \(learned.standardError)")
                let b = try #require(try JSONSerialization.jsonObject(with: Data(learned.standardOutput.utf8)) as? [String: Any])
                #expect((a["token_ids"] as? [Int]) == (b["token_ids"] as? [Int]), "round \(round)")
                let training = try #require(b["drafter_training"] as? [String: Any])
                #expect((training["positions_received"] as? Int ?? 0) > 0, "round \(round)")
                #expect(FileManager.default.fileExists(atPath: path), "round \(round): the checkpoint is saved at exit")
            }
        }
    }

    /// Ctrl-C while a learned drafter trains ends generation at the next token, prints the
    /// statistics, saves the checkpoint and exits with 130, as an interrupted command does.
    @Test func interruptSavesLearnedDrafter() throws {
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("drafter.gguf").path
            let run = try CommandLineTests.interrupt(["generate", "--model", Fixtures.smolLMPath, "--prompt", "Once upon a time",
                                                      "--max-tokens", "2000", "--temperature", "0.8", "--speculate", "learned",
                                                      "--drafter", path, "--threads", "1"])
            let message = run.standardError
            #expect(!run.standardOutput.isEmpty, "generation started before the signal")
            #expect(run.status == 130, "stderr: \(message)")
            #expect(message.contains("finish reason: interrupted"), "stderr: \(message)")
            #expect(message.contains("interrupted: stopping and saving the drafter"), "stderr: \(message)")
            #expect(message.contains("drafter training:"), "stderr: \(message)")
            #expect(FileManager.default.fileExists(atPath: path), "the checkpoint is saved after Ctrl-C")
        }
    }

    /// --speculate auto with --drafter merges the learned drafter's branches (or tries to),
    /// keeps the plain greedy text, reports the merge counts, trains the drafter as the help
    /// text documents, and saves the checkpoint.
    @Test func autoWithDrafterKeepsTextAndReportsMerges() throws {
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("drafter.gguf").path
            let common = ["generate", "--model", Fixtures.smolLMPath, "--prompt", "The capital of France is", "--temperature", "0",
                          "--max-tokens", "32", "--json"]
            let plain = try CommandLineTests.run(common)
            let a = try #require(try JSONSerialization.jsonObject(with: Data(plain.standardOutput.utf8)) as? [String: Any])
            let auto = try CommandLineTests.run(common + ["--speculate", "auto", "--drafter", path])
            #expect(auto.status == 0, "stderr: \(auto.standardError)")
            let b = try #require(try JSONSerialization.jsonObject(with: Data(auto.standardOutput.utf8)) as? [String: Any])
            #expect((a["token_ids"] as? [Int]) == (b["token_ids"] as? [Int]))
            let statistics = try #require(b["speculation"] as? [String: Any])
            for key in ["merged_steps", "trial_steps", "skipped_trials", "merges", "drops", "merge_gain"] {
                #expect(statistics[key] != nil, "missing \(key)")
            }
            let training = try #require(b["drafter_training"] as? [String: Any])
            #expect((training["positions_received"] as? Int ?? 0) > 0, "the trainer receives the generated positions")
            #expect(FileManager.default.fileExists(atPath: path), "the checkpoint is saved at exit")

            let help = try CommandLineTests.run(["generate", "--help"])
            let words = help.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(words.contains("with --speculate learned, or auto with --drafter, a drafter_training object"))
        }
    }

    /// train-drafter generates from a prompt file in batches for the given time or token
    /// count, trains on it and saves the checkpoint. A run with neither limit is rejected
    /// before anything loads.
    @Test func trainDrafterSavesCheckpoint() throws {
        try withTemporaryDirectory { directory in
            let prompts = directory.appendingPathComponent("prompts.jsonl").path
            let lines = "{\"id\": \"a\", \"prompt\": \"The capital of France is\"}\n" +
                "{\"id\": 2, \"messages\": [{\"role\": \"user\", \"content\": \"Name three colors.\"}]}\n"
            try lines.write(toFile: prompts, atomically: true, encoding: .utf8)
            let path = directory.appendingPathComponent("drafter.gguf").path
            let common = ["train-drafter", "--model", Fixtures.smolLMPath, "--prompts", prompts, "--drafter", path]
            let run = try CommandLineTests.run(common + ["--minutes", "0.02", "--max-tokens", "16", "--train-cores", "0"])
            #expect(run.status == 0, "stderr: \(run.standardError)")
            #expect(run.standardError.contains("train-drafter: "), "a progress line and the summary")
            #expect(run.standardError.contains("drafter training: "))
            #expect(FileManager.default.fileExists(atPath: path))

            try FileManager.default.removeItem(atPath: path)
            let counted = try CommandLineTests.run(common + ["--tokens", "40", "--batch", "2", "--max-tokens", "16"])
            #expect(counted.status == 0, "stderr: \(counted.standardError)")
            #expect(counted.standardError.contains("stopped because 40 tokens were generated"), "stderr: \(counted.standardError)")
            #expect(FileManager.default.fileExists(atPath: path))

            let missing = try CommandLineTests.run(common)
            #expect(missing.status == 2)
            #expect(missing.standardError.contains("missing --minutes N or --tokens N"))
        }
    }

    @Test func drafterWithoutLearnedIsRejected() throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--drafter", "x.gguf"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("need --speculate learned"))
    }

    @Test func unknownModeIsRejected() throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--speculate", "magic"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("'magic' for --speculate: expected none, lookup, suffix, auto or learned"))
    }

    /// A checkpoint path in a folder that does not exist fails before generating anything.
    @Test func drafterInMissingFolderFailsFirst() throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--max-tokens", "4",
                                            "--speculate", "learned", "--drafter", "/nonexistent-taildraft/d.gguf"])
        #expect(run.status == 2)
        #expect(run.standardOutput.isEmpty)
        #expect(run.standardError == "error: folder /nonexistent-taildraft for --drafter /nonexistent-taildraft/d.gguf does not exist: create it or choose another path\n")
    }

    /// A model file passed as --drafter, or a drafter checkpoint passed as --model, fails with
    /// a message that names the option the file belongs to. Uses a tiny model.
    @Test func modelAndDrafterSwappedAreRejected() throws {
        try withTemporaryDirectory { directory in
            let model = try TinyModel(spec: TinyModelSpec()).write(in: directory)
            let asDrafter = try CommandLineTests.run(["generate", "--model", model, "--prompt", "hi", "--max-tokens", "4",
                                                      "--speculate", "learned", "--drafter", model, "--threads", "1"])
            #expect(asDrafter.status != 0)
            #expect(asDrafter.standardOutput.isEmpty)
            #expect(asDrafter.standardError.contains("\(model) is not a drafter checkpoint but a GGUF file of a 'llama' model"),
                    "stderr: \(asDrafter.standardError)")

            let drafter = directory.appendingPathComponent("drafter.gguf").path
            let trained = try CommandLineTests.run(["generate", "--model", model, "--prompt", "hi", "--max-tokens", "4",
                                                    "--speculate", "learned", "--drafter", drafter, "--threads", "1"])
            #expect(trained.status == 0, "stderr: \(trained.standardError)")
            let asModel = try CommandLineTests.run(["generate", "--model", drafter, "--prompt", "hi"])
            #expect(asModel.status != 0)
            #expect(asModel.standardError == "error: \(drafter) is a learned-drafter checkpoint, not a model; " +
                    "pass it as --drafter and the model it was trained for as --model\n")

            let info = try CommandLineTests.run(["info", "--model", drafter])
            #expect(info.status != 0)
            #expect(info.standardError == "error: \(drafter) is a learned-drafter checkpoint, not a model; " +
                    "pass the model it was trained for as --model; 'taildraft info' takes no drafter, " +
                    "but generate, rollout and train-drafter take the checkpoint as --drafter\n")
        }
    }

    /// `taildraft-bench drafter-eval` takes the checkpoint as --checkpoint, so its message for
    /// swapped files names that option and not --drafter, which there picks a drafter kind.
    @Test func benchmarkNamesCheckpointOptionForSwappedFiles() throws {
        try withTemporaryDirectory { directory in
            var spec = TinyModelSpec()
            spec.contextLength = 1024  // drafter-eval opens the model with 1024 tokens of context
            let model = try TinyModel(spec: spec).write(in: directory)
            let drafter = directory.appendingPathComponent("drafter.gguf").path
            let trained = try CommandLineTests.run(["generate", "--model", model, "--prompt", "hi", "--max-tokens", "4",
                                                    "--speculate", "learned", "--drafter", drafter, "--threads", "1"])
            #expect(trained.status == 0, "stderr: \(trained.standardError)")

            let asModel = try CommandLineTests.runBenchmark(["drafter-eval", "--model", drafter, "--checkpoint", drafter])
            #expect(asModel.status == 2)
            #expect(asModel.standardError == "error: \(drafter) is a learned-drafter checkpoint, not a model; " +
                    "pass it as --checkpoint and the model it was trained for as --model\n")

            let asCheckpoint = try CommandLineTests.runBenchmark(["drafter-eval", "--model", model, "--checkpoint", model, "--threads", "1"])
            #expect(asCheckpoint.status == 2)
            #expect(asCheckpoint.standardError == "error: \(model) is not a drafter checkpoint but a GGUF file of a 'llama' model; " +
                    "pass a checkpoint that 'taildraft train-drafter' wrote as --checkpoint\n")
        }
    }

    /// --replay-mb takes a whole number of megabytes in 1...65536 and names itself, the
    /// value and the range when it is invalid.
    @Test(arguments: ["0", "lots", "65537", "1.5"])
    func invalidReplayMegabytesIsRejected(value: String) throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--max-tokens", "4",
                                            "--speculate", "learned", "--replay-mb", value])
        #expect(run.status == 2)
        #expect(run.standardOutput.isEmpty)
        #expect(run.standardError == "error: invalid value '\(value)' for --replay-mb: expected a whole number of megabytes in 1...65536\n")
    }

    @Test func replayMegabytesWithoutDrafterIsRejected() throws {
        let generate = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--replay-mb", "8"])
        #expect(generate.status == 2)
        #expect(generate.standardError.contains("--replay-mb need --speculate learned"))
        let rollout = try CommandLineTests.run(["rollout", "--model", Fixtures.smolLMPath, "--prompts", "none.jsonl", "--replay-mb", "8"])
        #expect(rollout.status == 2)
        #expect(rollout.standardError == "error: --replay-mb needs --drafter PATH, the checkpoint the rollout trains\n")
    }

    /// A learned drafter with a 1 MB replay buffer trains and keeps the plain greedy text.
    @Test func smallReplayBufferTrains() throws {
        let common = ["generate", "--model", Fixtures.smolLMPath, "--prompt", "The capital of France is", "--temperature", "0",
                      "--max-tokens", "16", "--json"]
        let plain = try CommandLineTests.run(common)
        let learned = try CommandLineTests.run(common + ["--speculate", "learned", "--replay-mb", "1"])
        #expect(learned.status == 0, "stderr: \(learned.standardError)")
        let a = try #require(try JSONSerialization.jsonObject(with: Data(plain.standardOutput.utf8)) as? [String: Any])
        let b = try #require(try JSONSerialization.jsonObject(with: Data(learned.standardOutput.utf8)) as? [String: Any])
        #expect((a["token_ids"] as? [Int]) == (b["token_ids"] as? [Int]))
        let training = try #require(b["drafter_training"] as? [String: Any])
        #expect((training["positions_received"] as? Int ?? 0) > 0)
        #expect(training["duplicate_rows"] as? Int == 0)
    }

    @Test(arguments: ["generate", "rollout", "train-drafter"])
    func helpDocumentsReplayMegabytes(command: String) throws {
        let run = try CommandLineTests.run([command, "--help"])
        #expect(run.status == 0)
        #expect(run.standardOutput.contains("--replay-mb N"))
        #expect(run.standardOutput.contains("megabytes (10^6 bytes)"))
    }

    @Test func trainCoreBeyondMachineIsRejected() throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--max-tokens", "4",
                                            "--speculate", "learned", "--train-cores", "0,4096"])
        #expect(run.status == 2)
        #expect(run.standardOutput.isEmpty)
        #expect(run.standardError.contains("invalid core 4096 for --train-cores: this machine has cores 0 to "))
    }

    @Test func trainCoresWithEmptyEntryIsRejected() throws {
        let run = try CommandLineTests.run(["generate", "--model", Fixtures.smolLMPath, "--prompt", "hi", "--max-tokens", "4",
                                            "--speculate", "learned", "--train-cores", "0,1,"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("invalid value '0,1,' for --train-cores"))
    }
}
