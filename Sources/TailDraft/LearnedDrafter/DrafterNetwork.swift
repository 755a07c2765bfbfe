import Kernels

/// The drafter's forward pass over a batch of rows, with every intermediate kept for the
/// backward pass.
///
/// A row at position t takes [embedding of token t + 1, target hidden state at t] (2H
/// floats) and returns the predicted hidden state at t + 1 (after the drafter's final
/// RMSNorm) and logits over the draft vocabulary. Each row's results are bitwise the same
/// whatever the batch size and thread count, because every kernel computes each output in a
/// fixed order. Not thread-safe: one forward (and backward) at a time per instance.
final class DrafterNetwork {
    let config: DrafterConfig
    /// OpenMP threads for the products; results do not depend on it.
    var threads: Int
    private let workspace = Workspace()
    /// Quantized activations of `td_matmul`.
    private let scratchSpace = Workspace()

    /// Buffers of the last forward pass, each `rows` rows wide.
    enum Buffer: Int, CaseIterable {
        case input, x0, n1, rstd1, q, attended, x1, n2, rstd2, gate, up, activated, x2, rstd3, predicted, delta, logits
        // Gradient buffers of `DrafterBackward`.
        case dPredicted, dLogits, dx2, dActivated, dGate, dUp, dn2, dx1, dAttended, dq, dk, dv, dn1, dx0, targetLogits
    }

    init(config: DrafterConfig, threads: Int = 1) {
        self.config = config
        self.threads = threads
    }

    /// Floats per row of each buffer.
    func width(_ buffer: Buffer) -> Int {
        let c = config
        switch buffer {
        case .input: return 2 * c.hiddenSize
        case .rstd1, .rstd2, .rstd3: return 1
        case .q, .attended, .dAttended, .dq: return c.queryDim
        case .dk, .dv: return c.kvDim
        case .gate, .up, .activated, .dActivated, .dGate, .dUp: return c.feedForwardSize
        case .logits, .dLogits, .targetLogits: return c.draftVocabularySize
        default: return c.hiddenSize
        }
    }

    /// Buffer `buffer` with room for `rows` rows. The address stays valid until a later call
    /// requests more rows.
    func floats(_ buffer: Buffer, rows: Int) -> UnsafeMutablePointer<Float> {
        workspace.floats(buffer.rawValue, count: max(1, rows) * width(buffer))
    }

    /// The keys and values attention reads and writes: `keys` and `values` contain `kvDim`
    /// floats per slot, the batch's rows are stored at slots `firstSlot`, `firstSlot + 1`, ...,
    /// and row i attends to `slots[slotOffsets[i] ..< slotOffsets[i + 1]]` (increasing).
    struct AttentionSpan {
        var keys: UnsafeMutablePointer<Float>
        var values: UnsafeMutablePointer<Float>
        var firstSlot: Int
        var slotOffsets: [Int32]
        var slots: [Int32]
    }

    /// Runs `rows` rows whose inputs are already in `floats(.input, rows:)`, with RoPE
    /// positions `positions`, and computes logits for rows `logitsFrom..<rows` into
    /// `floats(.logits, ...)` starting at row 0 of that buffer.
    ///
    /// With `inference` (the snapshot's Q8_0 copy), the matrices that have a copy are
    /// multiplied by `td_matmul` instead of the F32 product. Results are then close to the
    /// F32 ones and still batch-invariant. They are not the values the backward pass expects,
    /// so training passes nil.
    /// Cost: O(rows x parameters + (rows - logitsFrom) x V x H) multiply-adds plus attention.
    func forward(_ weights: DrafterWeights, rows m: Int, positions: [Int32], attention: AttentionSpan, logitsFrom: Int,
                 inference: DrafterInferenceWeights? = nil) {
        precondition(positions.count == m && attention.slotOffsets.count == m + 1, "forward needs one position and slot range per row")
        let c = config, h = c.hiddenSize
        let input = floats(.input, rows: m), x0 = floats(.x0, rows: m), n1 = floats(.n1, rows: m)
        let q = floats(.q, rows: m), attended = floats(.attended, rows: m), x1 = floats(.x1, rows: m)
        let n2 = floats(.n2, rows: m), gate = floats(.gate, rows: m), up = floats(.up, rows: m)
        let activated = floats(.activated, rows: m), x2 = floats(.x2, rows: m), predicted = floats(.predicted, rows: m)
        let delta = floats(.delta, rows: m)
        let keys = attention.keys + attention.firstSlot * c.kvDim, values = attention.values + attention.firstSlot * c.kvDim

        // Input projection and attention block.
        project(input, rows: m, weights, inference, [(.inputProjection, x0)])
        check(td_drafter_rmsnorm(x0, weights.pointer(.attentionNorm), n1, floats(.rstd1, rows: m), Int64(m), Int64(h),
                                 c.rmsNormEpsilon), "td_drafter_rmsnorm")
        project(n1, rows: m, weights, inference, [(.query, q), (.key, keys), (.value, values)])
        rope(q, rows: m, heads: c.headCount, positions: positions)
        rope(keys, rows: m, heads: c.kvHeadCount, positions: positions)
        attend(q, rows: m, attention, into: attended)
        project(attended, rows: m, weights, inference, [(.attentionOutput, delta)])
        x1.update(from: x0, count: m * h)
        check(td_drafter_add(delta, x1, Int64(m * h)), "td_drafter_add")

        // MLP block and final norm.
        check(td_drafter_rmsnorm(x1, weights.pointer(.feedForwardNorm), n2, floats(.rstd2, rows: m), Int64(m), Int64(h),
                                 c.rmsNormEpsilon), "td_drafter_rmsnorm")
        project(n2, rows: m, weights, inference, [(.gate, gate), (.up, up)])
        check(td_swiglu(gate, up, activated, Int64(m * c.feedForwardSize)), "td_swiglu")
        project(activated, rows: m, weights, inference, [(.down, delta)])
        x2.update(from: x1, count: m * h)
        check(td_drafter_add(delta, x2, Int64(m * h)), "td_drafter_add")
        check(td_drafter_rmsnorm(x2, weights.pointer(.outputNorm), predicted, floats(.rstd3, rows: m), Int64(m), Int64(h),
                                 c.rmsNormEpsilon), "td_drafter_rmsnorm")

        // Head over the draft vocabulary.
        if logitsFrom < m, let head = inference?.head {
            let rows = m - logitsFrom, v = c.draftVocabularySize
            quantizedProduct(predicted + logitsFrom * h, rows: rows, cols: h,
                             [td_matrix(type: DrafterInferenceWeights.kernelType, rows: Int64(v), data: head,
                                        out: floats(.logits, rows: rows), out_stride: Int64(v))], name: "head")
        } else if logitsFrom < m {
            check(td_drafter_linear(predicted + logitsFrom * h, Int64(m - logitsFrom), Int64(h), weights.head.pointer,
                                    Int64(c.draftVocabularySize), floats(.logits, rows: m - logitsFrom), Int32(threads)),
                  "td_drafter_linear(head)")
        }
    }

    /// Computes only the keys and values of `rows` rows whose inputs are in
    /// `floats(.input, rows:)`, at RoPE positions `positions`, into `keys` and `values`
    /// (`kvDim` floats per row). They are bitwise the ones `forward` stores for the same rows,
    /// because a row's key and value depend only on its own input: this is the part of
    /// `forward` before attention. Cost: about a fifth of `forward`'s multiply-adds per row
    /// for SmolLM2's drafter (the input projection and the key and value matrices).
    func keysAndValues(_ weights: DrafterWeights, rows m: Int, positions: [Int32], keys: UnsafeMutablePointer<Float>,
                       values: UnsafeMutablePointer<Float>, inference: DrafterInferenceWeights? = nil) {
        precondition(positions.count == m, "keysAndValues needs one position per row")
        let c = config
        let input = floats(.input, rows: m), x0 = floats(.x0, rows: m), n1 = floats(.n1, rows: m)
        project(input, rows: m, weights, inference, [(.inputProjection, x0)])
        check(td_drafter_rmsnorm(x0, weights.pointer(.attentionNorm), n1, floats(.rstd1, rows: m), Int64(m), Int64(c.hiddenSize),
                                 c.rmsNormEpsilon), "td_drafter_rmsnorm")
        project(n1, rows: m, weights, inference, [(.key, keys), (.value, values)])
        rope(keys, rows: m, heads: c.kvHeadCount, positions: positions)
    }

    /// out = x * W^T for each (tensor, out) pair of tensors that share the input `x`: one fused
    /// `td_matmul` call over their Q8_0 copies when `inference` has all of them, else F32
    /// products.
    private func project(_ x: UnsafePointer<Float>, rows m: Int, _ weights: DrafterWeights, _ inference: DrafterInferenceWeights?,
                         _ jobs: [(DrafterTensor, UnsafeMutablePointer<Float>)]) {
        let quantized = jobs.compactMap { tensor, out in
            inference?.data(tensor).map { data in
                td_matrix(type: DrafterInferenceWeights.kernelType, rows: Int64(tensor.shape(config).rows), data: data,
                          out: out, out_stride: Int64(tensor.shape(config).rows))
            }
        }
        if quantized.count == jobs.count {
            quantizedProduct(x, rows: m, cols: jobs[0].0.shape(config).cols, quantized, name: "\(jobs[0].0)")
            return
        }
        for (tensor, out) in jobs {
            linear(x, rows: m, weights.pointer(tensor), tensor, into: out)
        }
    }

    /// Runs `td_matmul` for `matrices`, which share the rows x cols input `x`.
    private func quantizedProduct(_ x: UnsafePointer<Float>, rows m: Int, cols: Int, _ matrices: [td_matrix], name: String) {
        let scratch = scratchSpace.buffer(0, bytes: td_matmul_scratch_bytes(Int64(m), Int64(cols)))
        let status = matrices.withUnsafeBufferPointer {
            td_matmul($0.baseAddress!, Int32($0.count), x, Int64(m), Int64(cols), Int64(cols), scratch, Int32(threads))
        }
        check(status, "td_matmul(\(name))")
    }

    /// out = x * W^T for the rows x cols matrix `tensor`.
    func linear(_ x: UnsafePointer<Float>, rows m: Int, _ w: UnsafePointer<Float>, _ tensor: DrafterTensor,
                into out: UnsafeMutablePointer<Float>) {
        let shape = tensor.shape(config)
        check(td_drafter_linear(x, Int64(m), Int64(shape.cols), w, Int64(shape.rows), out, Int32(threads)),
              "td_drafter_linear(\(tensor))")
    }

    func rope(_ x: UnsafeMutablePointer<Float>, rows m: Int, heads: Int, positions: [Int32]) {
        let c = config
        let status = positions.withUnsafeBufferPointer {
            td_rope_pairs(x, Int64(m), Int64(heads * c.headDim), Int32(heads), Int32(c.headDim), $0.baseAddress, c.ropeBase)
        }
        check(status, "td_rope_pairs")
    }

    private func attend(_ q: UnsafePointer<Float>, rows m: Int, _ span: AttentionSpan, into out: UnsafeMutablePointer<Float>) {
        let c = config
        let keyBases = [UnsafeRawPointer?](repeating: UnsafeRawPointer(span.keys), count: m)
        let valueBases = [UnsafeRawPointer?](repeating: UnsafeRawPointer(span.values), count: m)
        let status = span.slotOffsets.withUnsafeBufferPointer { offsets in
            span.slots.withUnsafeBufferPointer { slots in
                td_attention(q, Int64(c.queryDim), Int64(m), Int32(c.headCount), Int32(c.kvHeadCount), Int32(c.headDim),
                             Int32(TD_TYPE_F32.rawValue), keyBases, valueBases, Int64(c.kvDim), offsets.baseAddress, slots.baseAddress,
                             out, Int64(c.queryDim), Int32(threads))
            }
        }
        check(status, "td_attention")
    }
}
