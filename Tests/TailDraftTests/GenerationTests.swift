import Testing
@testable import TailDraft

/// The decode loop on the real SmolLM2 model: stop tokens, limits, streaming and seeds.
@Suite(.serialized) struct GenerationTests {
    static let prompt = "The capital of France is"

    @Test func greedyContinuesWithParis() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let result = try engine.generate(prompt: Self.prompt, options: GenerationOptions(maxTokens: 16))
            #expect(result.text.hasPrefix(" Paris"), "got \(result.text.debugDescription)")
            #expect(result.tokenIds.count == 16)
            #expect(result.finishReason == .length)
        }
    }

    @Test func streamedTextEqualsResultText() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            var streamed = ""
            let result = try engine.generate(prompt: "Write the word café three times:", options: GenerationOptions(maxTokens: 24)) {
                streamed += $0
            }
            #expect(streamed == result.text)
            #expect(result.text == engine.tokenizer.decode(result.tokenIds))
        }
    }

    @Test(arguments: [0, 1, 5, 10])
    func plantedStopEndsAtFirstOccurrence(_ index: Int) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let plain = try engine.generate(prompt: Self.prompt, options: GenerationOptions(maxTokens: 24))
            let stop = plain.tokenIds[index]
            let first = plain.tokenIds.firstIndex(of: stop)!
            var streamed = ""
            let stopped = try engine.generate(prompt: Self.prompt, options: GenerationOptions(maxTokens: 24, stopTokens: [stop])) {
                streamed += $0
            }
            #expect(stopped.tokenIds == Array(plain.tokenIds[..<first]))
            #expect(stopped.finishReason == .stop)
            #expect(streamed == stopped.text)
        }
    }

    @Test func maxTokensIsNeverExceeded() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            for limit in [0, 1, 7] {
                let result = try engine.generate(prompt: Self.prompt, options: GenerationOptions(maxTokens: limit))
                #expect(result.tokenIds.count == limit)
                #expect(result.finishReason == .length)
            }
        }
    }

    /// shouldStop ends generation before the token it is asked for, with plain decoding and
    /// with speculation, which may have accepted drafts past that point.
    @Test(arguments: [false, true])
    func shouldStopEndsAtRequestedToken(speculate: Bool) throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = engine.tokenizePrompt("1, 2, 3, 4, 5, 6, 7, 8,")
            let full = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 24))
            var calls = 0
            var options = GenerationOptions(maxTokens: 24, shouldStop: {
                calls += 1
                return calls > 5
            })
            if speculate { options.speculation = SpeculationOptions(drafter: LookupDrafter(), budget: 4) }
            let stopped = try engine.generator.generate(promptTokens: prompt, options: options)
            #expect(stopped.tokenIds == Array(full.tokenIds.prefix(5)))
            #expect(stopped.finishReason == .interrupted)
        }
    }

    @Test func chatAnswerEndsAtEndOfTurn() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let prompt = try engine.tokenizeChat(userMessage: "What is the capital of France? Answer in one word.")
            let result = try engine.generator.generate(promptTokens: prompt, options: GenerationOptions(maxTokens: 64))
            #expect(result.finishReason == .stop)
            #expect(!result.tokenIds.contains(where: engine.tokenizer.endOfGenerationIds.contains))
            #expect(result.text.contains("Paris"), "got \(result.text.debugDescription)")
        }
    }

    @Test func sameSeedGivesSameText() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let options = GenerationOptions(maxTokens: 24, sampling: SamplingParameters(temperature: 0.8, seed: 42))
            let first = try engine.generate(prompt: "Once upon a time", options: options)
            let second = try engine.generate(prompt: "Once upon a time", options: options)
            #expect(first.tokenIds == second.tokenIds)
        }
    }

    @Test(arguments: [SamplingParameters.greedy, SamplingParameters(temperature: 0.8, seed: 42)])
    func outputIgnoresThreadCount(_ sampling: SamplingParameters) throws {
        try KernelGate.run {
            let options = GenerationOptions(maxTokens: 128, sampling: sampling)
            var outputs: [[Int32]] = []
            for threads in 1...4 {
                let engine = try Fixtures.smolLMEngine(threads: threads)
                outputs.append(try engine.generate(prompt: "Once upon a time", options: options).tokenIds)
            }
            for threads in 2...4 {
                #expect(outputs[threads - 1] == outputs[0], "\(threads) threads vs 1")
            }
        }
    }

    @Test func contextEndStopsCleanly() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine(contextLength: 12)
            let result = try engine.generate(prompt: Self.prompt, options: GenerationOptions(maxTokens: 100))
            #expect(result.finishReason == .length)
            // 5 prompt tokens fill slots 0...4; tokens fill the rest, and the last needs no slot.
            #expect(result.tokenIds.count == 12 - 5 + 1)
        }
    }

    @Test func promptLongerThanContextIsRejected() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine(contextLength: 8)
            let prompt = String(repeating: "word ", count: 20)
            #expect(throws: GenerationError.promptTooLong(promptTokens: engine.tokenizePrompt(prompt).count, contextLength: 8)) {
                try engine.generate(prompt: prompt, options: GenerationOptions(maxTokens: 4))
            }
            let error = GenerationError.promptTooLong(promptTokens: 20, contextLength: 8)
            #expect(error.description.contains("20 tokens"))
            #expect(error.description.contains("--context"))
        }
    }

    @Test func emptyPromptIsRejected() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            #expect(throws: GenerationError.emptyPrompt) {
                try engine.generate(prompt: "", options: GenerationOptions(maxTokens: 4))
            }
        }
    }

    @Test func invalidSamplingIsRejected() throws {
        try KernelGate.run {
            let engine = try Fixtures.smolLMEngine()
            let cases: [SamplingParameters] = [
                SamplingParameters(temperature: -1), SamplingParameters(topK: -3),
                SamplingParameters(topP: 0), SamplingParameters(minP: 1.5),
            ]
            for sampling in cases {
                #expect(throws: GenerationError.self) {
                    try engine.generate(prompt: Self.prompt, options: GenerationOptions(maxTokens: 2, sampling: sampling))
                }
            }
        }
    }
}
