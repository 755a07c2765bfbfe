/// The reason generation ended.
public enum FinishReason: String, Sendable, Equatable {
    /// An end-of-generation token was produced (it is not part of the output).
    case stop
    /// The token limit or the end of the context was reached.
    case length
    /// `GenerationOptions.shouldStop` asked generation to end, for example on Ctrl-C.
    case interrupted
}

/// Limits and sampling for one generation.
public struct GenerationOptions {
    /// Maximum number of tokens to generate, not counting the prompt.
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Tokens that end generation; nil means the model's end-of-generation tokens.
    public var stopTokens: Set<Int32>?
    /// Speculative decoding settings; nil decodes one token per forward pass. Output is the
    /// same either way: token for token when greedy, in distribution when sampling.
    public var speculation: SpeculationOptions?
    /// Asked before each token is emitted; when it returns true, generation ends with the
    /// tokens emitted so far and `FinishReason.interrupted`. Must be cheap: it runs once per
    /// token.
    public var shouldStop: (() -> Bool)?

    public init(maxTokens: Int = 128, sampling: SamplingParameters = .greedy, stopTokens: Set<Int32>? = nil,
                speculation: SpeculationOptions? = nil, shouldStop: (() -> Bool)? = nil) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
        self.speculation = speculation
        self.shouldStop = shouldStop
    }
}

/// Wall-clock timings of one generation.
public struct GenerationTimings: Sendable, Equatable {
    public var promptTokens = 0
    public var prefillSeconds = 0.0
    /// Forward passes after the prefill.
    public var decodeSteps = 0
    /// Tokens those passes produced: one per pass in plain decoding, the accepted drafts plus
    /// one per pass with speculation. The first token comes from the prefill and is not counted.
    public var decodeTokens = 0
    public var decodeSeconds = 0.0

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(decodeTokens) / decodeSeconds : 0 }
}

/// The outcome of one generation.
public struct GenerationResult: Sendable {
    public var promptTokenIds: [Int32]
    /// Generated tokens, without the stop token.
    public var tokenIds: [Int32]
    /// Decoded text of `tokenIds`.
    public var text: String
    public var finishReason: FinishReason
    public var timings: GenerationTimings
    /// Drafting and verification figures when speculation was on.
    public var speculation: SpeculationStatistics?
}

/// A generation request that cannot run, with the value at fault and what to do.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case emptyPrompt
    case promptTooLong(promptTokens: Int, contextLength: Int)
    case invalidOption(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .emptyPrompt:
            return "the prompt is empty; pass at least one token of text"
        case let .promptTooLong(promptTokens, contextLength):
            return "the prompt has \(promptTokens) tokens, but the context holds \(contextLength) and generation needs at least one more; use a shorter prompt or a larger --context"
        case let .invalidOption(name, value, expected):
            return "invalid \(name) \(value): expected \(expected)"
        }
    }
}
