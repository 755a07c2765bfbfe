#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain autoregressive generation: prefill the prompt, then one forward pass per token.
///
/// Not thread-safe: one generation at a time per instance (the model reuses its buffers).
public final class Generator: @unchecked Sendable {
    public let model: Transformer
    public let tokenizer: BPETokenizer
    /// KV cache capacity in tokens (prompt plus generated).
    public let contextLength: Int
    /// Largest number of prompt tokens per prefill forward pass; bounds scratch memory.
    /// Results do not depend on it (batch invariance).
    public var prefillChunk = 256

    let cache: KVCache

    public init(model: Transformer, tokenizer: BPETokenizer, contextLength: Int) {
        precondition(contextLength >= 2, "context length must be at least 2 tokens, got \(contextLength)")
        self.model = model
        self.tokenizer = tokenizer
        self.contextLength = contextLength
        self.cache = KVCache(config: model.config, capacity: contextLength)
    }

    /// Generates from `promptTokens`, calling `onText` with each complete piece of text as it
    /// is decoded (never half a UTF-8 character).
    ///
    /// - Throws: `GenerationError` for an empty or too long prompt or invalid options.
    ///   `onPrefillProgress` receives (prompt tokens done, prompt tokens in all) after each
    ///   prefill chunk, for progress reports on long prompts.
    public func generate(promptTokens: [Int32], options: GenerationOptions,
                         onPrefillProgress: ((Int, Int) -> Void)? = nil,
                         onText: ((String) -> Void)? = nil) throws -> GenerationResult {
        try validate(promptTokens: promptTokens, options: options)
        var sampler = Sampler(options.sampling)
        var output = TokenEmitter(tokenizer: tokenizer, stopTokens: options.stopTokens ?? tokenizer.endOfGenerationIds,
                                  maxTokens: options.maxTokens, onText: onText, shouldStop: options.shouldStop)
        var timings = GenerationTimings(promptTokens: promptTokens.count)
        cache.truncate(to: 0)

        let prefillStart = Self.now()
        let hiddenObserver = options.speculation.flatMap { $0.drafter.observesHiddenStates ? $0.drafter : nil }
        let logits = try prefill(promptTokens, hiddenObserver: hiddenObserver, onProgress: onPrefillProgress)
        timings.prefillSeconds = Self.now() - prefillStart

        let decodeStart = Self.now()
        var statistics: SpeculationStatistics? = nil
        if let speculation = options.speculation {
            statistics = try decodeSpeculative(prompt: promptTokens, logits: logits, speculation: speculation,
                                               sampler: &sampler, output: &output, timings: &timings)
        } else {
            try decodePlain(logits: logits, sampler: &sampler, output: &output, timings: &timings)
        }
        output.finish()
        timings.decodeSeconds = Self.now() - decodeStart

        return GenerationResult(promptTokenIds: promptTokens, tokenIds: output.tokens, text: tokenizer.decode(output.tokens),
                                finishReason: output.finishReason, timings: timings, speculation: statistics)
    }

    /// Runs the prompt in chunks and returns the logits of its last token. `hiddenObserver`
    /// receives each chunk's hidden states.
    private func prefill(_ promptTokens: [Int32], hiddenObserver: (any Drafter)?, onProgress: ((Int, Int) -> Void)?) throws -> [Float] {
        var logits: [Float] = []
        var start = 0
        while start < promptTokens.count {
            let end = min(start + prefillChunk, promptTokens.count)
            let last = end == promptTokens.count
            let batch = ForwardBatch.causal(tokens: Array(promptTokens[start..<end]), startPosition: start,
                                            logitRows: last ? [end - start - 1] : [])
            let result = try model.forward(batch, caches: [cache])
            logits = result.logits
            hiddenObserver?.observeHidden(tokens: promptTokens[start..<end], hidden: result.hidden[...], startPosition: start)
            start = end
            onProgress?(end, promptTokens.count)
        }
        return logits
    }

    /// Decodes one token per forward pass: sample, emit, then run the new token.
    private func decodePlain(logits initial: [Float], sampler: inout Sampler, output: inout TokenEmitter,
                             timings: inout GenerationTimings) throws {
        var logits = initial
        while true {
            let token = sampler.sample(logits)
            guard output.emit(token) else { return }
            // A token that fills the context is emitted but never run: nothing follows it.
            if cache.count >= contextLength { return }
            logits = try model.forward(.causal(tokens: [token], startPosition: cache.count, logitRows: [0]), caches: [cache]).logits
            timings.decodeSteps += 1
            timings.decodeTokens += 1
        }
    }

    private func validate(promptTokens: [Int32], options: GenerationOptions) throws {
        guard !promptTokens.isEmpty else { throw GenerationError.emptyPrompt }
        guard promptTokens.count < contextLength else {
            throw GenerationError.promptTooLong(promptTokens: promptTokens.count, contextLength: contextLength)
        }
        try Self.validate(options: options)
    }

    /// Checks the token limit and the sampling parameters.
    /// - Throws: `GenerationError.invalidOption` naming the first invalid value.
    static func validate(options: GenerationOptions) throws {
        guard options.maxTokens >= 0 else {
            throw GenerationError.invalidOption(name: "max tokens", value: String(options.maxTokens), expected: "0 or more")
        }
        let s = options.sampling
        guard s.temperature >= 0, s.temperature.isFinite else {
            throw GenerationError.invalidOption(name: "temperature", value: String(s.temperature), expected: "a finite value >= 0")
        }
        guard s.topK >= 0 else {
            throw GenerationError.invalidOption(name: "top-k", value: String(s.topK), expected: "0 (off) or more")
        }
        guard s.topP > 0, s.topP <= 1 else {
            throw GenerationError.invalidOption(name: "top-p", value: String(s.topP), expected: "a value in (0, 1]")
        }
        guard s.minP >= 0, s.minP <= 1 else {
            throw GenerationError.invalidOption(name: "min-p", value: String(s.minP), expected: "a value in [0, 1]")
        }
    }

    /// Monotonic time in seconds.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
