import Kernels

/// The Llama-family forward pass: token embedding, decoder layers (RMSNorm, grouped-query
/// attention with RoPE and optional Q, K and V biases, SwiGLU MLP) and the output head, for any
/// `ForwardBatch`.
///
/// Batch invariance: each row's hidden state and logits are bitwise identical whether the row
/// is computed alone, in a prefill batch, in a verification tree or at another thread count,
/// because every kernel computes each output element in a fixed order (see td_kernels.h).
/// Not thread-safe: one `forward` call at a time per instance (it reuses scratch buffers).
public final class Transformer: @unchecked Sendable {
    public let config: ModelConfig
    public let weights: ModelWeights
    /// OpenMP threads per kernel call; results do not depend on it.
    public var threads: Int

    private let workspace = Workspace()

    public init(config: ModelConfig, weights: ModelWeights, threads: Int) {
        precondition(threads >= 1, "threads must be at least 1, got \(threads)")
        self.config = config
        self.weights = weights
        self.threads = threads
        td_set_blocktime_ms(1)
    }

    /// Opens `path` and builds the model (weights stay memory-mapped).
    public convenience init(path: String, threads: Int) throws {
        let file = try GGUFFile.openModel(path: path)
        let config = try ModelConfig(file: file)
        try self.init(config: config, weights: ModelWeights(file: file, config: config), threads: threads)
    }

    /// Lets the kernels' worker threads spin `milliseconds` after a parallel region before they
    /// sleep (1 ms by default), for the kernels the calling thread runs. When an idle-priority
    /// thread such as the drafter trainer shares the inference cores, Linux gives it the core
    /// of a worker that sleeps or yields, until the scheduler's next tick. With two inference
    /// threads on two cores that made decode more than twice as slow. A longer spin covers the
    /// sleeping. The yields stop only with `KMP_USE_YIELD=0` in the environment
    /// before libomp starts, which the `taildraft` and `taildraft-bench` commands set.
    public func keepWorkersSpinning(milliseconds: Int = 200) {
        td_set_blocktime_ms(Int32(clamping: milliseconds))
    }

    /// Runs `batch` through the model, appending its rows to `caches`.
    ///
    /// On success each sequence's cache `count` grows by its number of rows; on a thrown
    /// error nothing is written. Cost: O(rows * parameters) multiply-adds plus attention over
    /// the visible slots; weights are streamed from memory once per call.
    /// - Throws: `ForwardError` for invalid tokens, positions, sequences, masks or a full cache.
    public func forward(_ batch: ForwardBatch, caches: [KVCache]) throws -> ForwardOutput {
        let plan = try AttentionPlan(batch: batch, caches: caches, config: config)
        let logitRows = batch.logitRows ?? Array(0..<batch.count)
        let m = batch.count, h = config.hiddenSize

        // Residual stream and per-layer buffers.
        let x = workspace.floats(0, count: m * h)
        let normed = workspace.floats(1, count: m * h)
        let q = workspace.floats(2, count: m * config.queryDim)
        let k = workspace.floats(3, count: m * config.kvDim)
        let v = workspace.floats(4, count: m * config.kvDim)
        let attended = workspace.floats(5, count: m * config.queryDim)
        let gate = workspace.floats(6, count: m * config.feedForwardSize)
        let up = workspace.floats(7, count: m * config.feedForwardSize)
        let delta = workspace.floats(8, count: m * h)
        let scratch = workspace.buffer(9, bytes: td_matmul_scratch_bytes(Int64(m), Int64(max(h, config.feedForwardSize, config.queryDim))))

        for (row, token) in batch.tokens.enumerated() {
            weights.tokenEmbedding.dequantizeRow(Int(token), into: x + row * h)
        }

        for (index, layer) in weights.layers.enumerated() {
            // Attention block.
            rmsNorm(x, layer.attentionNorm, into: normed, rows: m)
            matmul([(layer.query, q), (layer.key, k), (layer.value, v)], input: normed, rows: m, scratch: scratch)
            addBias(layer.queryBias, to: q, rows: m)
            addBias(layer.keyBias, to: k, rows: m)
            addBias(layer.valueBias, to: v, rows: m)
            rope(q, rows: m, heads: config.headCount, positions: plan.positions)
            rope(k, rows: m, heads: config.kvHeadCount, positions: plan.positions)
            plan.store(keys: k, values: v, layer: index, caches: caches)
            plan.attend(queries: q, layer: index, caches: caches, into: attended, config: config, threads: threads)
            matmul([(layer.attentionOutput, delta)], input: attended, rows: m, scratch: scratch)
            addInPlace(x, delta, count: m * h)

            // MLP block.
            rmsNorm(x, layer.feedForwardNorm, into: normed, rows: m)
            matmul([(layer.gate, gate), (layer.up, up)], input: normed, rows: m, scratch: scratch)
            check(td_swiglu(gate, up, gate, Int64(m * config.feedForwardSize)), "td_swiglu")
            matmul([(layer.down, delta)], input: gate, rows: m, scratch: scratch)
            addInPlace(x, delta, count: m * h)
        }

        // Final norm, then the output head for the requested rows only.
        rmsNorm(x, weights.outputNorm, into: normed, rows: m)
        let hidden = Array(UnsafeBufferPointer(start: normed, count: m * h))
        let selected = workspace.floats(10, count: max(1, logitRows.count) * h)
        for (index, row) in logitRows.enumerated() {
            (selected + index * h).update(from: normed + row * h, count: h)
        }
        var logits = [Float](repeating: 0, count: logitRows.count * config.vocabularySize)
        if !logitRows.isEmpty {
            logits.withUnsafeMutableBufferPointer { out in
                matmul([(weights.output, out.baseAddress!)], input: selected, rows: logitRows.count, scratch: scratch)
            }
        }
        plan.commit(caches: caches)
        return ForwardOutput(logitRows: logitRows, logits: logits, hidden: hidden,
                             vocabularySize: config.vocabularySize, hiddenSize: h)
    }

    private func rmsNorm(_ input: UnsafePointer<Float>, _ weight: [Float], into output: UnsafeMutablePointer<Float>, rows: Int) {
        weight.withUnsafeBufferPointer { w in
            check(td_rmsnorm(input, w.baseAddress!, output, Int64(rows), Int64(config.hiddenSize), config.rmsNormEpsilon), "td_rmsnorm")
        }
    }

    /// Adds `bias` to each of `rows` rows of `x` (rows of `bias.count` floats); nothing when nil.
    private func addBias(_ bias: [Float]?, to x: UnsafeMutablePointer<Float>, rows: Int) {
        guard let bias else { return }
        check(td_add_bias(x, Int64(rows), Int64(bias.count), bias, Int64(bias.count)), "td_add_bias")
    }

    /// Rotates `rows` rows of `heads` heads in place for their positions, in the model's RoPE style.
    private func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions: [Int32]) {
        let stride = Int64(heads * config.headDim)
        switch config.ropeStyle {
        case .adjacentPairs:
            check(td_rope_pairs(x, Int64(rows), stride, Int32(heads), Int32(config.headDim), positions, config.ropeBase), "td_rope_pairs")
        case .halves:
            check(td_rope_halves(x, Int64(rows), stride, Int32(heads), Int32(config.headDim), positions, config.ropeBase), "td_rope_halves")
        }
    }

    /// Multiplies `input` (rows x cols) by matrices that share it, in one kernel call.
    private func matmul(_ jobs: [(WeightMatrix, UnsafeMutablePointer<Float>)], input: UnsafePointer<Float>,
                        rows: Int, scratch: UnsafeMutableRawPointer) {
        let cols = jobs[0].0.cols
        let matrices = jobs.map { matrix, out in
            td_matrix(type: matrix.kernelType, rows: Int64(matrix.rows), data: matrix.kernelData,
                      out: out, out_stride: Int64(matrix.rows))
        }
        let status = matrices.withUnsafeBufferPointer {
            td_matmul($0.baseAddress!, Int32($0.count), input, Int64(rows), Int64(cols), Int64(cols), scratch, Int32(threads))
        }
        check(status, "td_matmul(\(jobs[0].0.name))")
    }

    /// x += delta, element by element (the residual connection), 16 lanes at a time.
    private func addInPlace(_ x: UnsafeMutablePointer<Float>, _ delta: UnsafePointer<Float>, count: Int) {
        let lanes = 16, stride = MemoryLayout<Float>.stride
        var i = 0
        while i + lanes <= count {
            let sum = UnsafeRawPointer(x).loadUnaligned(fromByteOffset: i * stride, as: SIMD16<Float>.self)
                + UnsafeRawPointer(delta).loadUnaligned(fromByteOffset: i * stride, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(x).storeBytes(of: sum, toByteOffset: i * stride, as: SIMD16<Float>.self)
            i += lanes
        }
        while i < count {
            x[i] += delta[i]
            i += 1
        }
    }
}

/// Kernel failures after validation are programming errors, not input errors.
func check(_ status: Int32, _ kernel: String) {
    precondition(status == TD_OK, "\(kernel) failed with status \(status)")
}
