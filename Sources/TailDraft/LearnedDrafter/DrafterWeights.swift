import Synchronization

/// An immutable snapshot of the drafter: trainable parameters, draft vocabulary and its
/// frozen head rows. The trainer publishes a new snapshot at step boundaries, and the drafter
/// keeps using its current one until it adopts the next. So a snapshot is never modified
/// while read and needs no lock.
public final class DrafterWeights: @unchecked Sendable {
    public let config: DrafterConfig
    public let vocabulary: DraftVocabulary
    /// Training steps that produced these parameters (0 for a fresh random drafter).
    public let version: Int
    let layout: DrafterLayout
    let parameters: FloatBuffer
    /// V x H rows of the target's output matrix, in draft vocabulary order.
    let head: FloatBuffer
    /// The Q8_0 copy drafting reads, built for snapshots that draft (published by the trainer,
    /// loaded or created), not for the trainer's working copy.
    /// Set only in `init` (it needs the finished snapshot), so it never changes while read.
    public private(set) var inference: DrafterInferenceWeights?

    /// Creates a snapshot; with `forInference`, also builds its Q8_0 copy for drafting.
    init(config: DrafterConfig, vocabulary: DraftVocabulary, head: FloatBuffer, parameters: FloatBuffer, version: Int,
         forInference: Bool = false) {
        precondition(vocabulary.count == config.draftVocabularySize, "vocabulary has \(vocabulary.count) tokens, config expects \(config.draftVocabularySize)")
        precondition(head.count == vocabulary.count * config.hiddenSize, "head has \(head.count) floats, expected V x H")
        self.config = config
        self.vocabulary = vocabulary
        self.head = head
        self.parameters = parameters
        self.version = version
        layout = DrafterLayout(config: config)
        precondition(parameters.count == layout.count, "parameters have \(parameters.count) floats, the layout needs \(layout.count)")
        if forInference { inference = DrafterInferenceWeights(self) }
    }

    /// Creates a randomly initialised drafter for `target`: matrices uniform in +-1/sqrt(fan-in)
    /// from a SplitMix64 stream of `seed`, norms 1, and the vocabulary `vocabulary` (by
    /// default the target's first V token ids).
    /// - Throws: `DrafterError` when `config` does not fit the target.
    public static func random(config: DrafterConfig, target: DrafterTarget, seed: UInt64 = 1,
                              vocabulary: DraftVocabulary? = nil) throws -> DrafterWeights {
        try config.validate(for: target.config)
        let vocabulary = vocabulary ?? DraftVocabulary(tokens: (0..<config.draftVocabularySize).map { Int32($0) },
                                                       targetVocabularySize: target.config.vocabularySize)
        let layout = DrafterLayout(config: config)
        let parameters = FloatBuffer(count: layout.count)
        var rng = SplitMixGenerator(seed: seed)
        for tensor in DrafterTensor.allCases {
            let range = layout.range(tensor, config)
            if tensor.isNorm {
                (parameters.pointer + range.lowerBound).update(repeating: 1, count: range.count)
                continue
            }
            let bound = 1 / Float(tensor.shape(config).cols).squareRoot()
            for index in range {
                parameters.pointer[index] = Float.random(in: -bound ..< bound, using: &rng)
            }
        }
        return DrafterWeights(config: config, vocabulary: vocabulary, head: target.headRows(vocabulary),
                              parameters: parameters, version: 0, forInference: true)
    }

    func pointer(_ tensor: DrafterTensor) -> UnsafePointer<Float> {
        UnsafePointer(parameters.pointer + layout.offset(tensor))
    }

    /// The trainable parameters as one array in `DrafterTensor` order.
    public var parameterValues: [Float] { parameters.array }
}

/// A one-slot handoff of weight snapshots from the trainer thread to the drafter, lock-free
/// and wait-free on both sides.
///
/// `post` swaps the new snapshot into the slot (releasing any snapshot the drafter had not
/// taken yet) and `take` swaps the slot empty. Each snapshot reference is owned by exactly
/// one side at a time, so no reference count is shared across threads without a handoff.
public final class DrafterWeightsMailbox: Sendable {
    private let slot = Atomic<UInt>(0)

    public init() {}

    /// Publishes `weights`, replacing an untaken earlier snapshot.
    public func post(_ weights: DrafterWeights) {
        let bits = UInt(bitPattern: Unmanaged.passRetained(weights).toOpaque())
        let previous = slot.exchange(bits, ordering: .acquiringAndReleasing)
        Self.release(previous)
    }

    /// Returns the newest posted snapshot, or nil when none arrived since the last call.
    public func take() -> DrafterWeights? {
        let bits = slot.exchange(0, ordering: .acquiringAndReleasing)
        guard let raw = UnsafeRawPointer(bitPattern: bits) else { return nil }
        return Unmanaged<DrafterWeights>.fromOpaque(raw).takeRetainedValue()
    }

    deinit { Self.release(slot.load(ordering: .acquiring)) }

    private static func release(_ bits: UInt) {
        guard let raw = UnsafeRawPointer(bitPattern: bits) else { return }
        Unmanaged<DrafterWeights>.fromOpaque(raw).release()
    }
}
