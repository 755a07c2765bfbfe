#if canImport(Glibc)
import Glibc
#endif
import Kernels

/// A Q8_0 copy of a drafter snapshot's large matrices, interleaved for `td_matmul`, that
/// drafting reads instead of the F32 parameters.
///
/// Q8_0 takes 8.5 bits per weight against 32, so one tree level reads about a quarter of the
/// bytes, and the products run on the int8 kernels the target uses. Training never reads this
/// copy, because it needs the F32 parameters. The norms stay F32, and so does a matrix whose
/// column count is not a multiple of 32 (a Q8_0 block).
/// Immutable after creation, so any thread may read it.
public final class DrafterInferenceWeights: @unchecked Sendable {
    /// Interleaved data of each tensor with a copy, by `DrafterTensor.rawValue`.
    private let tensorData: [UnsafeRawPointer?]
    /// Interleaved data of the V x H head, when H is a multiple of 32.
    let head: UnsafeRawPointer?
    /// Bytes of all copies together.
    public let byteCount: Int
    private let base: UnsafeMutableRawPointer

    /// The weight type `td_matmul` reads from these copies.
    static let kernelType = Int32(TD_TYPE_Q8_0_X16.rawValue)

    /// Quantizes and interleaves the large matrices of `weights`. Cost: one pass over the
    /// parameters and head, plus a temporary row-major copy of the largest matrix.
    /// Returns nil when no matrix has a column count that is a multiple of 32, or memory is short.
    init?(_ weights: DrafterWeights) {
        let config = weights.config
        var sources: [(tensor: DrafterTensor?, floats: UnsafePointer<Float>, rows: Int, cols: Int)] = []
        for tensor in DrafterTensor.allCases where !tensor.isNorm {
            let shape = tensor.shape(config)
            sources.append((tensor, weights.pointer(tensor), shape.rows, shape.cols))
        }
        sources.append((nil, UnsafePointer(weights.head.pointer), config.draftVocabularySize, config.hiddenSize))
        sources.removeAll { $0.cols % Int(TD_QK) != 0 }
        guard !sources.isEmpty else { return nil }

        // One allocation, with every copy starting on a cache line.
        let type = Int32(TD_TYPE_Q8_0.rawValue)
        let sizes = sources.map { (td_repacked_bytes(type, Int64($0.rows), Int64($0.cols)) + 63) / 64 * 64 }
        let total = sizes.reduce(0, +)
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, total) == 0, let base = raw else { return nil }
        self.base = base
        byteCount = total

        var data = [UnsafeRawPointer?](repeating: nil, count: DrafterTensor.allCases.count)
        var head: UnsafeRawPointer?
        let largest = sources.map { td_row_bytes(type, Int64($0.cols)) * $0.rows }.max()!
        let rowMajor = UnsafeMutableRawPointer.allocate(byteCount: largest, alignment: 64)
        defer { rowMajor.deallocate() }
        var offset = 0
        for (source, size) in zip(sources, sizes) {
            let rowBytes = td_row_bytes(type, Int64(source.cols))
            for row in 0..<source.rows {
                let status = td_quantize_row_q8_0(source.floats + row * source.cols, rowMajor + row * rowBytes, Int64(source.cols))
                precondition(status == TD_OK, "td_quantize_row_q8_0 failed with status \(status)")
            }
            let status = td_repack(type, rowMajor, Int64(source.rows), Int64(source.cols), base + offset)
            precondition(status == TD_OK, "td_repack failed with status \(status)")
            if let tensor = source.tensor { data[tensor.rawValue] = UnsafeRawPointer(base + offset) } else { head = UnsafeRawPointer(base + offset) }
            offset += size
        }
        tensorData = data
        self.head = head
    }

    deinit { free(base) }

    /// Returns the interleaved copy of `tensor`, or nil when it stays F32.
    func data(_ tensor: DrafterTensor) -> UnsafeRawPointer? { tensorData[tensor.rawValue] }
}
