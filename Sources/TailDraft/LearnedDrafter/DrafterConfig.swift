/// Shape of the learned drafter: an input projection of [token embedding, target hidden
/// state] (2H -> H), one Llama decoder layer, a final RMSNorm and a head over a reduced
/// draft vocabulary whose rows are copied from the target's output matrix.
public struct DrafterConfig: Sendable, Equatable {
    /// H, equal to the target's hidden size.
    public var hiddenSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    /// Inner width of the SwiGLU MLP.
    public var feedForwardSize: Int
    /// V, the number of target tokens the drafter can propose.
    public var draftVocabularySize: Int
    public var rmsNormEpsilon: Float
    public var ropeBase: Float

    public var headDim: Int { hiddenSize / headCount }
    public var queryDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    public init(hiddenSize: Int, headCount: Int, kvHeadCount: Int, feedForwardSize: Int, draftVocabularySize: Int,
                rmsNormEpsilon: Float = 1e-5, ropeBase: Float = 10_000) {
        self.hiddenSize = hiddenSize
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.feedForwardSize = feedForwardSize
        self.draftVocabularySize = draftVocabularySize
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeBase = ropeBase
    }

    /// Creates the shape of one of the target's decoder layers, with `draftVocabularySize` tokens
    /// (at most the target's vocabulary). For SmolLM2-135M (H = 576, 9 heads, 3 KV heads,
    /// MLP 1536) that is 4.2M trainable parameters.
    public init(target: ModelConfig, draftVocabularySize: Int = 2048) {
        self.init(hiddenSize: target.hiddenSize, headCount: target.headCount, kvHeadCount: target.kvHeadCount,
                  feedForwardSize: target.feedForwardSize,
                  draftVocabularySize: min(draftVocabularySize, target.vocabularySize),
                  rmsNormEpsilon: target.rmsNormEpsilon, ropeBase: target.ropeBase)
    }

    /// Checks the shape against the target it drafts for.
    /// - Throws: `DrafterError.invalidConfig` naming the bad value and the rule.
    public func validate(for target: ModelConfig) throws {
        func require(_ ok: Bool, _ name: String, _ value: Int, _ expected: String) throws {
            if !ok { throw DrafterError.invalidConfig(name: name, value: value, expected: expected) }
        }
        try require(hiddenSize == target.hiddenSize, "hidden size", hiddenSize, "the target's hidden size \(target.hiddenSize)")
        try require(headCount >= 1 && hiddenSize % headCount == 0 && headDim % 2 == 0, "head count", headCount,
                    "a divisor of \(hiddenSize) that gives an even head size")
        try require(kvHeadCount >= 1 && headCount % kvHeadCount == 0, "KV head count", kvHeadCount,
                    "a divisor of the head count \(headCount)")
        try require(feedForwardSize >= 1, "MLP size", feedForwardSize, "at least 1")
        try require((1...target.vocabularySize).contains(draftVocabularySize), "draft vocabulary size",
                    draftVocabularySize, "1...\(target.vocabularySize), the target's vocabulary")
    }

    /// Trainable parameters (the head is copied from the target and frozen).
    public var parameterCount: Int { DrafterLayout(config: self).count }
}

/// An invalid drafter setting or checkpoint, with the value at fault and the rule.
public enum DrafterError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(name: String, value: Int, expected: String)
    case checkpointUnreadable(path: String, reason: String)
    case checkpointCorrupt(path: String, problem: String)
    case checkpointForAnotherTarget(path: String, targetPath: String)
    /// A file that is not a drafter checkpoint, with `found` describing what it is.
    case notADrafterCheckpoint(path: String, found: String)
    /// A drafter checkpoint, in either format, given where a model file is expected.
    case checkpointGivenAsModel(path: String)
    case checkpointWriteFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfig(name, value, expected):
            return "invalid drafter \(name) \(value): expected \(expected)"
        case let .checkpointUnreadable(path, reason):
            return "cannot read drafter checkpoint \(path): \(reason)"
        case let .checkpointCorrupt(path, problem):
            return "invalid drafter checkpoint \(path): \(problem); use an intact checkpoint, or delete this one so a training run starts a new drafter there"
        case let .checkpointForAnotherTarget(path, targetPath):
            return "drafter checkpoint \(path) was trained for another model file than \(targetPath); pass the model it was made for, or a checkpoint path where none exists yet to train a new drafter"
        case let .notADrafterCheckpoint(path, found):
            // The two messages for swapped files name no option, because the option that
            // takes a checkpoint differs between commands. The CLI and the benchmark runner
            // print their own messages, which name the option of the command at hand.
            return "\(path) is not a drafter checkpoint but \(found); pass the path of a drafter checkpoint instead"
        case let .checkpointGivenAsModel(path):
            return "\(path) is a learned-drafter checkpoint, not a model; pass the model file it was trained for instead"
        case let .checkpointWriteFailed(path, reason):
            return "cannot write drafter checkpoint \(path): \(reason)"
        }
    }
}
