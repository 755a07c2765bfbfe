/// One forward pass's input: rows of tokens, each with an explicit position and sequence.
///
/// Rows of a sequence are appended to that sequence's KV cache in row order, at slots
/// `cache.count`, `cache.count + 1`, ... Every row sees all committed slots of its sequence,
/// plus the batch rows of its sequence that `mask` allows (causal when `mask` is nil: rows
/// up to and including itself). Prefill, decode, verification trees and multi-sequence
/// batches are all expressed this way.
public struct ForwardBatch: Sendable {
    public var tokens: [Int32]
    /// RoPE positions, one per row.
    public var positions: [Int32]
    /// Index into the `caches` array passed to `forward`, one per row.
    public var sequences: [Int]
    /// `mask[i][j]`: row i may attend to row j (same sequence only). Each row must allow
    /// itself. nil means causal within each sequence.
    public var mask: [[Bool]]?
    /// Rows whose logits are needed, increasing; nil means every row. Prefill needs only the
    /// last row, which saves the output head's cost (vocabulary x hidden size per row).
    public var logitRows: [Int]?

    public init(tokens: [Int32], positions: [Int32], sequences: [Int]? = nil,
                mask: [[Bool]]? = nil, logitRows: [Int]? = nil) {
        self.tokens = tokens
        self.positions = positions
        self.sequences = sequences ?? Array(repeating: 0, count: tokens.count)
        self.mask = mask
        self.logitRows = logitRows
    }

    /// Returns a causal batch of one sequence starting at `startPosition`.
    public static func causal(tokens: [Int32], startPosition: Int, logitRows: [Int]? = nil) -> ForwardBatch {
        let positions = (0..<tokens.count).map { Int32(startPosition + $0) }
        return ForwardBatch(tokens: tokens, positions: positions, logitRows: logitRows)
    }

    public var count: Int { tokens.count }
}

/// One forward pass's output.
public struct ForwardOutput: Sendable {
    /// The rows that have logits, in the order of `logits`.
    public var logitRows: [Int]
    /// `logitRows.count * vocabularySize` floats, row-major.
    public var logits: [Float]
    /// `count * hiddenSize` floats: each row's final hidden state after the final RMSNorm,
    /// the vector the output head multiplies.
    public var hidden: [Float]
    public let vocabularySize: Int
    public let hiddenSize: Int

    /// The logits of batch row `row` (which must be in `logitRows`).
    public func logits(row: Int) -> ArraySlice<Float> {
        guard let index = logitRows.firstIndex(of: row) else {
            preconditionFailure("row \(row) has no logits; request it in ForwardBatch.logitRows")
        }
        return logits[index * vocabularySize ..< (index + 1) * vocabularySize]
    }

    public func hidden(row: Int) -> ArraySlice<Float> {
        hidden[row * hiddenSize ..< (row + 1) * hiddenSize]
    }
}

/// An invalid forward request, with the value at fault and the limit.
public enum ForwardError: Error, CustomStringConvertible, Equatable {
    case emptyBatch
    case mismatchedLengths(tokens: Int, positions: Int, sequences: Int)
    case tokenOutOfRange(row: Int, token: Int32, vocabularySize: Int)
    case positionOutOfRange(row: Int, position: Int32, contextLength: Int)
    case unknownSequence(row: Int, sequence: Int, cacheCount: Int)
    case contextFull(sequence: Int, used: Int, adding: Int, capacity: Int)
    case badMask(String)
    case badLogitRows([Int])
    case mixedCachePrecisions([String])

    public var description: String {
        switch self {
        case .emptyBatch:
            return "forward batch is empty; pass at least one token"
        case let .mismatchedLengths(t, p, s):
            return "forward batch has \(t) tokens, \(p) positions and \(s) sequence ids; they must be equal"
        case let .tokenOutOfRange(row, token, vocabularySize):
            return "token id \(token) in row \(row) is outside the vocabulary 0..<\(vocabularySize)"
        case let .positionOutOfRange(row, position, contextLength):
            return "position \(position) in row \(row) is outside the context 0..<\(contextLength); use a longer --context or a shorter prompt"
        case let .unknownSequence(row, sequence, cacheCount):
            return "row \(row) names sequence \(sequence), but only \(cacheCount) KV caches were passed"
        case let .contextFull(sequence, used, adding, capacity):
            return "sequence \(sequence) has \(used) tokens in its KV cache and the batch adds \(adding), more than its capacity of \(capacity) tokens; use a longer --context or a shorter prompt"
        case let .badMask(problem):
            return "invalid attention mask: \(problem)"
        case let .badLogitRows(rows):
            return "logit rows \(rows) must be increasing batch row indices"
        case let .mixedCachePrecisions(precisions):
            return "the batch uses KV caches of different precisions (\(precisions.joined(separator: ", "))); run sequences with different cache precisions in separate forward passes"
        }
    }
}
