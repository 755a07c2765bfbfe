/// Settings of a rollout: limits and sampling shared by every response, batching limits, and
/// speculation in the long tail.
public struct RolloutOptions {
    /// Maximum number of tokens per response, not counting the prompt.
    public var maxTokens: Int
    /// Sampling shared by all responses. Its `seed` is ignored: each response's sampler is
    /// seeded with `RolloutSeed.response(...)` from `seed`.
    public var sampling: SamplingParameters
    public var seed: UInt64
    /// Tokens that end a response; nil means the model's end-of-generation tokens.
    public var stopTokens: Set<Int32>?
    /// Largest number of tokens (prompt plus response) per sequence; nil means the model's
    /// trained context, at most 4096, as `Engine` uses.
    public var contextLength: Int?
    /// Most sequences decoding or prefilling at once.
    public var maxRunningSequences: Int
    /// Maximum KV-cache slots, in tokens, of all running sequences together; nil means
    /// `maxRunningSequences` full sequences. Each sequence's cache has room for the longest
    /// prompt plus `maxTokens` plus a draft tree, so this caps the running sequences at
    /// budget / that size. Memory per slot: `KVCache.byteCount(config:capacity:precision:)` at
    /// capacity 1, which is 23 KB for SmolLM2-135M with the default half-precision cache.
    public var kvBudgetTokens: Int?
    /// Most prompt tokens prefilled per forward pass, shared by the sequences that join.
    /// Results do not depend on it (batch invariance).
    public var prefillChunk: Int
    public var speculation: RolloutSpeculation

    public init(maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(), seed: UInt64 = 0,
                stopTokens: Set<Int32>? = nil, contextLength: Int? = nil, maxRunningSequences: Int = 64,
                kvBudgetTokens: Int? = nil, prefillChunk: Int = 256, speculation: RolloutSpeculation = RolloutSpeculation()) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.seed = seed
        self.stopTokens = stopTokens
        self.contextLength = contextLength
        self.maxRunningSequences = maxRunningSequences
        self.kvBudgetTokens = kvBudgetTokens
        self.prefillChunk = prefillChunk
        self.speculation = speculation
    }
}

/// Speculative decoding for the last sequences of a rollout.
public struct RolloutSpeculation {
    public enum Mode: String, Sendable, CaseIterable {
        /// One token per sequence and forward pass throughout.
        case none
        /// `LookupDrafter` with an adaptive draft size, as `generate --speculate lookup`.
        case lookup
        /// `SuffixDrafter` over the context and all finished responses, adaptive draft size.
        case suffix
        /// `StrategyBandit` chooses among no speculation and the drafters of `arms` with fixed
        /// budgets.
        case auto
        /// Each sequence's own `LearnedDrafter`, fed with the sequence's hidden states, with
        /// an adaptive draft size. Needs `RolloutEngine.useLearnedDrafter`.
        case learned
    }

    public var mode: Mode
    /// Speculation runs in passes with at most this many running sequences: the long tail,
    /// or every pass when `maxRunningSequences` is this small.
    public var tailThreshold: Int
    /// Largest number of drafted tokens per sequence and step in `lookup` and `suffix` mode.
    public var draftBudget: Int
    /// Largest number of levels below a tree's root.
    public var maxDepth: Int
    /// Verification cost on this machine for the adaptive budget; nil uses the estimate.
    public var cost: VerificationCost?
    /// The strategies of `auto` mode.
    public var arms: [SpeculationStrategy]
    public var bandit: StrategyBandit.Configuration

    public init(mode: Mode = .none, tailThreshold: Int = 4, draftBudget: Int = 3, maxDepth: Int = 8,
                cost: VerificationCost? = nil, arms: [SpeculationStrategy] = SpeculationStrategy.arms(),
                bandit: StrategyBandit.Configuration = StrategyBandit.Configuration()) {
        self.mode = mode
        self.tailThreshold = tailThreshold
        self.draftBudget = draftBudget
        self.maxDepth = maxDepth
        self.cost = cost
        self.arms = arms
        self.bandit = bandit
    }

    /// The largest draft any step may verify per sequence, which sizes the KV caches.
    var largestBudget: Int {
        switch mode {
        case .none: return 0
        case .lookup, .suffix, .learned: return draftBudget
        case .auto: return arms.map(\.budget).max() ?? 0
        }
    }
}

/// Seeds of the per-response random generators.
public enum RolloutSeed {
    /// Returns the sampler seed of one response, mixed from the rollout seed, the step (from
    /// 0), the prompt's index in the file (from 0) and the sample index (from 0).
    ///
    /// A response's tokens depend only on this seed, its prompt and the options, never on the
    /// other sequences in its batch: `taildraft generate --seed` with this seed and the same
    /// prompt and options gives the same tokens.
    public static func response(seed: UInt64, step: Int, promptIndex: Int, sampleIndex: Int) -> UInt64 {
        var state = mix(seed)
        for value in [step, promptIndex, sampleIndex] {
            state = mix(state ^ UInt64(truncatingIfNeeded: value))
        }
        return state
    }

    /// SplitMix64's output function after one increment.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One response to generate: a prompt's tokens and which sample of it this is.
public struct RolloutRequest: Sendable, Equatable {
    /// Index of the prompt in the prompt list, from 0.
    public var promptIndex: Int
    /// The prompt's id from the prompt file.
    public var promptId: JSONValue
    /// Index among the samples of the same prompt, from 0.
    public var sampleIndex: Int
    public var promptTokens: [Int32]

    public init(promptIndex: Int, promptId: JSONValue, sampleIndex: Int, promptTokens: [Int32]) {
        self.promptIndex = promptIndex
        self.promptId = promptId
        self.sampleIndex = sampleIndex
        self.promptTokens = promptTokens
    }

    /// Returns `samplesPerPrompt` requests per prompt, prompt by prompt.
    /// - Throws: `TokenizerError.unsupportedChatTemplate` for a chat prompt when the model's
    ///   template is not ChatML.
    public static func expand(_ prompts: [RolloutPrompt], samplesPerPrompt: Int, tokenizer: BPETokenizer) throws -> [RolloutRequest] {
        precondition(samplesPerPrompt >= 1, "samples per prompt must be at least 1, got \(samplesPerPrompt)")
        var requests: [RolloutRequest] = []
        for (index, prompt) in prompts.enumerated() {
            let tokens = try prompt.tokens(tokenizer: tokenizer)
            for sample in 0..<samplesPerPrompt {
                requests.append(RolloutRequest(promptIndex: index, promptId: prompt.id, sampleIndex: sample, promptTokens: tokens))
            }
        }
        return requests
    }
}

/// One finished response.
public struct RolloutResponse: Sendable {
    public var request: RolloutRequest
    /// The rollout step (from 0) that produced it. The JSON line counts steps from 1.
    public var step: Int
    /// The seed its sampler started from.
    public var seed: UInt64
    /// Generated tokens, without the stop token.
    public var tokenIds: [Int32]
    public var text: String
    public var finishReason: FinishReason
    /// Seconds from the start of the step until the sequence joined the batch and until it
    /// finished.
    public var joinedSeconds: Double
    public var finishedSeconds: Double
    /// Drafted and accepted tokens of this response's speculative steps.
    public var drafted: Int
    public var accepted: Int
}

/// A rollout that cannot run, with the value at fault and what to do.
public enum RolloutError: Error, CustomStringConvertible, Equatable {
    case noRequests
    case emptyPrompt(promptId: String)
    case promptTooLong(promptId: String, promptTokens: Int, contextLength: Int)
    case kvBudgetTooSmall(budgetTokens: Int, sequenceTokens: Int)
    case invalidOption(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .noRequests:
            return "the rollout has no prompts; pass at least one prompt"
        case let .emptyPrompt(id):
            return "prompt \(id) has no tokens; give it some text"
        case let .promptTooLong(id, promptTokens, contextLength):
            return "prompt \(id) has \(promptTokens) tokens, but the context length is \(contextLength) tokens and the response needs at least one more; shorten the prompt or raise the context length"
        case let .kvBudgetTooSmall(budget, sequence):
            return "the KV budget of \(budget) tokens is smaller than one sequence, which needs \(sequence) tokens (the longest prompt, max tokens and draft room); raise the KV budget to at least \(sequence) or lower max tokens"
        case let .invalidOption(name, value, expected):
            return "invalid \(name) \(value): expected \(expected)"
        }
    }
}
