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

    private let cache: KVCache

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
        let stopTokens = options.stopTokens ?? tokenizer.endOfGenerationIds
        var sampler = Sampler(options.sampling)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var timings = GenerationTimings(promptTokens: promptTokens.count)
        cache.truncate(to: 0)

        // Prefill in chunks; only the last prompt row needs logits.
        let prefillStart = Self.now()
        var logits: [Float] = []
        var start = 0
        while start < promptTokens.count {
            let end = min(start + prefillChunk, promptTokens.count)
            let last = end == promptTokens.count
            let batch = ForwardBatch.causal(tokens: Array(promptTokens[start..<end]), startPosition: start,
                                            logitRows: last ? [end - start - 1] : [])
            logits = try model.forward(batch, caches: [cache]).logits
            start = end
            onPrefillProgress?(end, promptTokens.count)
        }
        timings.prefillSeconds = Self.now() - prefillStart

        // Decode: sample, stop or emit, then run the new token.
        let decodeStart = Self.now()
        var generated: [Int32] = []
        var finish = FinishReason.length
        while generated.count < options.maxTokens {
            let token = sampler.sample(logits)
            if stopTokens.contains(token) { finish = .stop; break }
            generated.append(token)
            let piece = detokenizer.append(token)
            if !piece.isEmpty { onText?(piece) }
            // The last token needs no forward pass: nothing is sampled after it.
            if generated.count == options.maxTokens || cache.count >= contextLength { break }
            logits = try model.forward(.causal(tokens: [token], startPosition: cache.count, logitRows: [0]), caches: [cache]).logits
            timings.decodeSteps += 1
        }
        let tail = detokenizer.finish()
        if !tail.isEmpty { onText?(tail) }
        timings.decodeSeconds = Self.now() - decodeStart

        return GenerationResult(promptTokenIds: promptTokens, tokenIds: generated, text: tokenizer.decode(generated),
                                finishReason: finish, timings: timings)
    }

    private func validate(promptTokens: [Int32], options: GenerationOptions) throws {
        guard !promptTokens.isEmpty else { throw GenerationError.emptyPrompt }
        guard promptTokens.count < contextLength else {
            throw GenerationError.promptTooLong(promptTokens: promptTokens.count, contextLength: contextLength)
        }
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
