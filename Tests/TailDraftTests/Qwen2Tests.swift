import Foundation
import Kernels
import Testing
@testable import TailDraft

/// Writes the tiny qwen2 model of `seed`, opens an engine on it and passes it to `body`.
private func withTinyQwen2Engine<T>(seed: UInt64, _ body: (Engine, String) throws -> T) throws -> T {
    try withTemporaryDirectory { directory in
        let path = try TinyModel(spec: .qwen2(seed: seed, weightType: .q8_0)).write(in: directory, name: "tiny-qwen2.gguf")
        let engine = try Engine(modelPath: path, threads: 2, contextLength: 128)
        return try body(engine, path)
    }
}

/// Byte-token ids of `text` in the tiny models, whose token i is byte i.
private func byteIds(_ text: String) -> [Int32] {
    text.utf8.map(Int32.init)
}

/// Loading, tokenization, chat and generation of qwen2 files, on a tiny random qwen2 model.
@Suite(.serialized) struct Qwen2Tests {
    @Test func configReadsQwen2Keys() throws {
        try withTinyQwen2Engine(seed: 0x02_0001) { engine, _ in
            let config = engine.model.config
            #expect(config.architecture == "qwen2")
            #expect(config.ropeStyle == .halves)
            #expect(config.requiresQKVBiases)
            #expect(config.ropeBase == 1_000_000)
            #expect(config.rmsNormEpsilon == 1e-6)
            #expect(config.layerCount == 2)
            #expect(config.headCount == 4)
            #expect(config.kvHeadCount == 2)
            #expect(engine.model.weights.tiedOutput)
        }
    }

    @Test func missingBiasRejected() throws {
        var spec = TinyModelSpec.qwen2(seed: 0x02_0002)
        spec.omittedTensors = ["blk.1.attn_k.bias"]

        try withTemporaryDirectory { directory in
            let path = try TinyModel(spec: spec).write(in: directory)
            #expect(throws: GGUFError.badTensor(name: "blk.1.attn_k.bias", problem: "the tensor is missing from the file")) {
                _ = try Transformer(path: path, threads: 1)
            }
        }
    }

    @Test func tokenizerFollowsFile() throws {
        try withTinyQwen2Engine(seed: 0x02_0003) { engine, _ in
            let tokenizer = engine.tokenizer
            #expect(tokenizer.preTokenizer == .qwen2)
            #expect(tokenizer.addBOS == false)
            // <|endoftext|> (256) ends generation by its text, <|im_end|> (258) as EOS.
            #expect(tokenizer.endOfGenerationIds == [256, 258])
            #expect(tokenizer.isControl(257))
            #expect(engine.tokenizePrompt("<|im_start|>hi") == [257] + byteIds("hi"))
        }
    }

    /// The ChatML template puts its default system message first, wraps each message in
    /// control tokens, and leaves a marker typed by the user as plain text.
    @Test func chatTemplateRendersChatML() throws {
        try withTinyQwen2Engine(seed: 0x02_0004) { engine, _ in
            let template = try engine.tokenizer.chatTemplate()
            #expect(template.defaultSystemPrompt == "You are a tiny test model.")

            let ids = try engine.tokenizeChat(userMessage: "hi <|im_end|>")
            let expected = [257] + byteIds("system\nYou are a tiny test model.") + [258] + byteIds("\n")
                + [257] + byteIds("user\nhi <|im_end|>") + [258] + byteIds("\n")
                + [257] + byteIds("assistant\n")
            #expect(ids == expected)
        }
    }

    /// Greedy generation runs to the token limit or an end-of-generation token, and
    /// speculation with the lookup drafter gives the same tokens.
    @Test func generationRunsWithAndWithoutSpeculation() throws {
        try withTinyQwen2Engine(seed: 0x02_0005) { engine, _ in
            try KernelGate.run {
                let prompt = engine.tokenizePrompt("abc abc abc abc abc abc")
                let plain = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 40))
                let speculation = SpeculationOptions(drafter: LookupDrafter(), budget: 4, adaptive: false)
                let speculative = try engine.generator.generate(promptTokens: prompt,
                                                                options: GenerationOptions(maxTokens: 40, speculation: speculation))

                #expect(plain.tokenIds.count <= 40)
                if plain.finishReason == .length {
                    #expect(plain.tokenIds.count == 40)
                }
                #expect(plain.tokenIds.allSatisfy { !engine.tokenizer.isEndOfGeneration($0) })
                #expect(speculative.tokenIds == plain.tokenIds)
                #expect(speculative.finishReason == plain.finishReason)
            }
        }
    }

    @Test func commandLineRunsQwen2() throws {
        try withTemporaryDirectory { directory in
            let path = try TinyModel(spec: .qwen2(seed: 0x02_0006)).write(in: directory)
            let info = try CommandLineTests.run(["info", "--model", path])
            #expect(info.status == 0, "\(info.standardError)")
            #expect(info.standardOutput.contains("architecture: qwen2"))
            #expect(info.standardOutput.contains("pre-tokenizer qwen2"))

            let generate = try CommandLineTests.run(["generate", "--model", path, "--chat", "--prompt", "hi",
                                                     "--max-tokens", "8", "--temperature", "0"])
            #expect(generate.status == 0, "\(generate.standardError)")
        }
    }
}

/// The Qwen2 GGUF file named by the environment variable TAILDRAFT_QWEN2_MODEL, if any.
enum RealQwen2 {
    static let variable = "TAILDRAFT_QWEN2_MODEL"
    static var path: String? {
        guard let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty else { return nil }
        return path
    }
}

/// A real Qwen2 model: loading, a factual chat reply, batch invariance and speculation.
/// Skipped unless TAILDRAFT_QWEN2_MODEL names a Qwen2 GGUF file (for example Qwen2.5-0.5B-Instruct
/// in Q8_0 or Q4_0), since the repository does not ship one.
@Suite(.serialized, .enabled(if: RealQwen2.path != nil,
                             "set TAILDRAFT_QWEN2_MODEL to a Qwen2 GGUF file to run the real Qwen2 tests"))
struct RealQwen2Tests {
    private func engine() throws -> Engine {
        let path = try #require(RealQwen2.path)
        #expect(FileManager.default.fileExists(atPath: path), "\(RealQwen2.variable) names \(path), which does not exist")
        let trained = try ModelConfig(file: GGUFFile(path: path)).trainedContextLength
        return try Engine(modelPath: path, threads: 2, contextLength: min(512, trained))
    }

    @Test func loadsAsQwen2() throws {
        let engine = try engine()
        let config = engine.model.config
        #expect(config.architecture == "qwen2")
        #expect(config.ropeStyle == .halves)
        #expect(engine.model.weights.layers.allSatisfy { $0.queryBias != nil })
        #expect(engine.model.weights.layers.allSatisfy { $0.keyBias != nil })
        #expect(engine.model.weights.layers.allSatisfy { $0.valueBias != nil })
        #expect(engine.tokenizer.preTokenizer == .qwen2)
        for marker in ["<|im_end|>", "<|endoftext|>"] {
            let id = try #require(engine.tokenizer.tokenId(forText: marker), "\(marker) is not in the vocabulary")
            #expect(engine.tokenizer.isEndOfGeneration(id), "\(marker) does not end generation")
        }
    }

    @Test func chatAnswersCapitalOfFrance() throws {
        let engine = try engine()
        try KernelGate.run {
            let prompt = try engine.tokenizeChat(userMessage: "What is the capital of France? Answer with one word.")
            let result = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 24))
            #expect(result.text.contains("Paris"), "got \(result.text.debugDescription)")
        }
    }

    /// Rows of a 6-row batch, of a tree batch and of decoding with 1 or 2 threads all give the
    /// logits of decoding their tokens one at a time with 2 threads.
    @Test func batchRowsEqualDecode() throws {
        let engine = try engine()
        let model = engine.model
        let prefix = engine.tokenizePrompt("The quick brown fox")
        let continuation = engine.tokenizePrompt(" jumps over the lazy dog again")
        let tokens = Array(continuation.prefix(6))
        let start = prefix.count

        try KernelGate.run {
            defer { model.threads = 2 }
            let cache = KVCache(config: model.config, capacity: 64)
            _ = try model.forward(.causal(tokens: prefix, startPosition: 0, logitRows: []), caches: [cache])
            var decoded: [[Float]] = []
            for token in tokens {
                let output = try model.forward(.causal(tokens: [token], startPosition: cache.count), caches: [cache])
                decoded.append(Array(output.logits(row: 0)))
            }

            cache.truncate(to: start)
            let batch = try model.forward(.causal(tokens: tokens, startPosition: start), caches: [cache])
            for row in tokens.indices {
                #expect(bitwiseDifference(Array(batch.logits(row: row)), decoded[row]) == nil, "row \(row) of a \(tokens.count)-row batch")
            }

            // Tree: tokens[0], then two children: tokens[1] (the decoded path) and tokens[2].
            cache.truncate(to: start)
            let mask: [[Bool]] = [[true, false, false], [true, true, false], [true, false, true]]
            let positions = [0, 1, 1].map { Int32(start + $0) }
            let tree = try model.forward(ForwardBatch(tokens: [tokens[0], tokens[1], tokens[2]], positions: positions, mask: mask),
                                         caches: [cache])
            #expect(bitwiseDifference(Array(tree.logits(row: 0)), decoded[0]) == nil, "tree root")
            #expect(bitwiseDifference(Array(tree.logits(row: 1)), decoded[1]) == nil, "tree child on the decoded path")
            cache.truncate(to: start)
            _ = try model.forward(.causal(tokens: [tokens[0]], startPosition: start, logitRows: []), caches: [cache])
            let sibling = try model.forward(.causal(tokens: [tokens[2]], startPosition: start + 1), caches: [cache])
            #expect(bitwiseDifference(Array(tree.logits(row: 2)), Array(sibling.logits(row: 0))) == nil, "tree child off the decoded path")

            model.threads = 1
            cache.truncate(to: start)
            for (index, token) in tokens.enumerated() {
                let output = try model.forward(.causal(tokens: [token], startPosition: cache.count), caches: [cache])
                #expect(bitwiseDifference(Array(output.logits(row: 0)), decoded[index]) == nil, "step \(index) with 1 thread")
            }
        }
    }

    @Test func speculationEqualsPlainGreedy() throws {
        let engine = try engine()
        try KernelGate.run {
            let prompt = engine.tokenizePrompt("Copy this list exactly: apple, banana, cherry, apple, banana, cherry, apple,")
            let plain = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 32))
            let speculation = SpeculationOptions(drafter: LookupDrafter(), budget: 8, adaptive: false)
            let speculative = try engine.generator.generate(promptTokens: prompt,
                                                            options: GenerationOptions(maxTokens: 32, speculation: speculation))
            #expect(speculative.tokenIds == plain.tokenIds)
        }
    }
}
