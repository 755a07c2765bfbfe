/// The trainable tensors of the drafter, in the order they sit in one flat float buffer.
public enum DrafterTensor: Int, CaseIterable, Sendable {
    /// Input projection, H x 2H; the input is [token embedding, target hidden state].
    case inputProjection
    case attentionNorm
    case query
    case key
    case value
    case attentionOutput
    case feedForwardNorm
    case gate
    case up
    case down
    case outputNorm

    /// (rows, cols) of the tensor; norms are one row.
    func shape(_ c: DrafterConfig) -> (rows: Int, cols: Int) {
        let h = c.hiddenSize
        switch self {
        case .inputProjection: return (h, 2 * h)
        case .attentionNorm, .feedForwardNorm, .outputNorm: return (1, h)
        case .query: return (c.queryDim, h)
        case .key, .value: return (c.kvDim, h)
        case .attentionOutput: return (h, c.queryDim)
        case .gate, .up: return (c.feedForwardSize, h)
        case .down: return (h, c.feedForwardSize)
        }
    }

    var isNorm: Bool { self == .attentionNorm || self == .feedForwardNorm || self == .outputNorm }
}

/// Offsets of each `DrafterTensor` in the flat parameter buffer; gradients and optimizer
/// moments use the same layout.
struct DrafterLayout: Sendable, Equatable {
    let offsets: [Int]
    let count: Int

    init(config: DrafterConfig) {
        var offsets: [Int] = []
        var total = 0
        for tensor in DrafterTensor.allCases {
            offsets.append(total)
            let shape = tensor.shape(config)
            total += shape.rows * shape.cols
        }
        self.offsets = offsets
        count = total
    }

    func offset(_ tensor: DrafterTensor) -> Int { offsets[tensor.rawValue] }

    func range(_ tensor: DrafterTensor, _ config: DrafterConfig) -> Range<Int> {
        let shape = tensor.shape(config)
        return offset(tensor) ..< offset(tensor) + shape.rows * shape.cols
    }
}

/// A fixed-size float array with a stable address, for parameters, gradients and moments.
final class FloatBuffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(count: Int, repeating value: Float = 0) {
        self.count = count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: value, count: max(1, count))
    }

    /// Creates a copy of `other`.
    init(copying other: FloatBuffer) {
        count = other.count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(from: other.pointer, count: max(1, count))
    }

    deinit { pointer.deallocate() }

    func zero() { pointer.update(repeating: 0, count: count) }

    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
