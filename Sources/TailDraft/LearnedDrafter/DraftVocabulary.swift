/// The reduced vocabulary the drafter proposes from: V target token ids, most frequent
/// first, and the map back from target ids.
public struct DraftVocabulary: Sendable, Equatable {
    /// Target token id of each draft index.
    public let tokens: [Int32]
    /// Draft index of each target token id, or -1 for tokens outside the vocabulary.
    let draftIndex: [Int32]

    /// Creates a vocabulary of the listed target ids (distinct, each below `targetVocabularySize`).
    public init(tokens: [Int32], targetVocabularySize: Int) {
        var index = [Int32](repeating: -1, count: targetVocabularySize)
        for (draft, token) in tokens.enumerated() {
            precondition(token >= 0 && Int(token) < targetVocabularySize, "token \(token) is outside 0..<\(targetVocabularySize)")
            precondition(index[Int(token)] < 0, "token \(token) is listed twice in a draft vocabulary")
            index[Int(token)] = Int32(draft)
        }
        self.tokens = tokens
        draftIndex = index
    }

    /// Returns the `size` most frequent tokens by `counts` (indexed by target id); ties and unseen
    /// tokens go by increasing id, so with no counts at all it is ids 0..<size. Cost:
    /// O(vocabulary x log vocabulary).
    public static func mostFrequent(counts: [Int], size: Int) -> DraftVocabulary {
        precondition((1...counts.count).contains(size), "draft vocabulary size \(size) is outside 1...\(counts.count)")
        let ranked = counts.indices.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        return DraftVocabulary(tokens: ranked.prefix(size).map { Int32($0) }, targetVocabularySize: counts.count)
    }

    public var count: Int { tokens.count }

    /// Returns the draft index of target token `token`, or nil when the drafter cannot propose it.
    public func index(of token: Int32) -> Int? {
        guard token >= 0 && Int(token) < draftIndex.count else { return nil }
        let index = draftIndex[Int(token)]
        return index >= 0 ? Int(index) : nil
    }
}

/// The parts of the target model the drafter reads: token embeddings for its input and the
/// output matrix for its head. Keeps the target's weights (and their file) alive.
public struct DrafterTarget: Sendable {
    public let config: ModelConfig
    public let weights: ModelWeights

    public init(model: Transformer) {
        config = model.config
        weights = model.weights
    }

    /// Dequantizes the embedding of `token` into `destination` (H floats).
    func embed(_ token: Int32, into destination: UnsafeMutablePointer<Float>) {
        weights.tokenEmbedding.dequantizeRow(Int(token), into: destination)
    }

    /// Dequantizes the output matrix's rows of the vocabulary's tokens: V x H floats.
    func headRows(_ vocabulary: DraftVocabulary) -> FloatBuffer {
        let h = config.hiddenSize
        let rows = FloatBuffer(count: vocabulary.count * h)
        for (index, token) in vocabulary.tokens.enumerated() {
            weights.output.dequantizeRow(Int(token), into: rows.pointer + index * h)
        }
        return rows
    }
}
