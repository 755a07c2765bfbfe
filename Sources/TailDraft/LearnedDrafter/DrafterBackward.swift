import Kernels

/// The training loss of one batch of drafter rows.
public struct DrafterLoss: Sendable, Equatable {
    /// Mean SmoothL1 (beta 1) between predicted and actual next hidden states, per element.
    public var feature: Double
    /// Mean cross-entropy against the target's distribution over the draft vocabulary.
    public var crossEntropy: Double
    /// The weighted sum that gradients descend.
    public var total: Double
    /// Rows whose top draft token is the target's top token within the draft vocabulary.
    public var matches: Int
    public var rows: Int
}

/// Weights of the two loss terms.
public struct DrafterLossWeights: Sendable, Equatable {
    public var feature: Float
    public var crossEntropy: Float

    public init(feature: Float = 0.5, crossEntropy: Float = 0.5) {
        self.feature = feature
        self.crossEntropy = crossEntropy
    }
}

extension DrafterNetwork {
    /// Computes the loss of the last `forward` (which must have computed logits for every
    /// row) against `targetHidden` (the target's hidden states at t + 1, rows x H) and adds
    /// the parameters' gradients to `gradients` (layout `DrafterLayout`).
    ///
    /// The soft labels are softmax(head x target hidden state): the target's own distribution
    /// restricted to the draft vocabulary, because the head rows are the target's output rows.
    /// `span` must be the one the forward pass used, with slots indexing the batch's own rows
    /// (training attends only within the batch). Cost: about twice the forward's.
    func backward(_ weights: DrafterWeights, rows m: Int, positions: [Int32], span: AttentionSpan,
                  targetHidden: UnsafePointer<Float>, lossWeights: DrafterLossWeights, gradients: FloatBuffer) -> DrafterLoss {
        let c = config, h = c.hiddenSize, v = c.draftVocabularySize
        precondition(span.firstSlot == 0, "training batches attend within themselves, from slot 0")
        let layout = weights.layout
        func grad(_ tensor: DrafterTensor) -> UnsafeMutablePointer<Float> { gradients.pointer + layout.offset(tensor) }

        // Loss and its gradient at the predicted hidden state.
        let predicted = floats(.predicted, rows: m), logits = floats(.logits, rows: m)
        let targetLogits = floats(.targetLogits, rows: m)
        check(td_drafter_linear(targetHidden, Int64(m), Int64(h), weights.head.pointer, Int64(v), targetLogits, Int32(threads)),
              "td_drafter_linear(target head)")
        let dPredicted = floats(.dPredicted, rows: m), dLogits = floats(.dLogits, rows: m)
        var results = [Double](repeating: 0, count: 3)
        check(td_drafter_loss(predicted, targetHidden, logits, targetLogits, Int64(m), Int64(h), Int64(v),
                              lossWeights.feature, lossWeights.crossEntropy, dPredicted, dLogits, &results), "td_drafter_loss")
        check(td_drafter_linear_backward(dLogits, predicted, Int64(m), Int64(h), weights.head.pointer, Int64(v),
                                         dPredicted, 1, nil, Int32(threads)), "td_drafter_linear_backward(head)")

        // Final norm, then the MLP block; its residual passes dx2 on to x1.
        let dx2 = floats(.dx2, rows: m)
        check(td_drafter_rmsnorm_backward(dPredicted, floats(.x2, rows: m), weights.pointer(.outputNorm), floats(.rstd3, rows: m),
                                          Int64(m), Int64(h), dx2, 0, grad(.outputNorm)), "td_drafter_rmsnorm_backward")
        let dActivated = floats(.dActivated, rows: m), dGate = floats(.dGate, rows: m), dUp = floats(.dUp, rows: m)
        linearBackward(dx2, input: floats(.activated, rows: m), rows: m, weights, .down, dx: dActivated, accumulate: false, gradients: gradients)
        check(td_drafter_swiglu_backward(dActivated, floats(.gate, rows: m), floats(.up, rows: m), dGate, dUp,
                                         Int64(m * c.feedForwardSize)), "td_drafter_swiglu_backward")
        let n2 = floats(.n2, rows: m), dn2 = floats(.dn2, rows: m)
        linearBackward(dGate, input: n2, rows: m, weights, .gate, dx: dn2, accumulate: false, gradients: gradients)
        linearBackward(dUp, input: n2, rows: m, weights, .up, dx: dn2, accumulate: true, gradients: gradients)
        let dx1 = floats(.dx1, rows: m)
        dx1.update(from: dx2, count: m * h)
        check(td_drafter_rmsnorm_backward(dn2, floats(.x1, rows: m), weights.pointer(.feedForwardNorm), floats(.rstd2, rows: m),
                                          Int64(m), Int64(h), dx1, 1, grad(.feedForwardNorm)), "td_drafter_rmsnorm_backward")

        // Attention block; RoPE's gradient is the rotation by the negated angle.
        let dAttended = floats(.dAttended, rows: m)
        linearBackward(dx1, input: floats(.attended, rows: m), rows: m, weights, .attentionOutput, dx: dAttended,
                       accumulate: false, gradients: gradients)
        let dq = floats(.dq, rows: m), dk = floats(.dk, rows: m), dv = floats(.dv, rows: m)
        let status = span.slotOffsets.withUnsafeBufferPointer { offsets in
            span.slots.withUnsafeBufferPointer { slots in
                td_drafter_attention_backward(floats(.q, rows: m), span.keys, span.values, dAttended, Int64(m), Int32(c.headCount),
                                              Int32(c.kvHeadCount), Int32(c.headDim), offsets.baseAddress, slots.baseAddress, dq, dk, dv)
            }
        }
        check(status, "td_drafter_attention_backward")
        let negated = positions.map { -$0 }
        rope(dq, rows: m, heads: c.headCount, positions: negated)
        rope(dk, rows: m, heads: c.kvHeadCount, positions: negated)
        let n1 = floats(.n1, rows: m), dn1 = floats(.dn1, rows: m)
        linearBackward(dq, input: n1, rows: m, weights, .query, dx: dn1, accumulate: false, gradients: gradients)
        linearBackward(dk, input: n1, rows: m, weights, .key, dx: dn1, accumulate: true, gradients: gradients)
        linearBackward(dv, input: n1, rows: m, weights, .value, dx: dn1, accumulate: true, gradients: gradients)
        let dx0 = floats(.dx0, rows: m)
        dx0.update(from: dx1, count: m * h)
        check(td_drafter_rmsnorm_backward(dn1, floats(.x0, rows: m), weights.pointer(.attentionNorm), floats(.rstd1, rows: m),
                                          Int64(m), Int64(h), dx0, 1, grad(.attentionNorm)), "td_drafter_rmsnorm_backward")

        // Input projection: its inputs (embeddings, target states) are not trained.
        linearBackward(dx0, input: floats(.input, rows: m), rows: m, weights, .inputProjection, dx: nil, accumulate: false,
                       gradients: gradients)

        let feature = results[0], crossEntropy = results[1]
        return DrafterLoss(feature: feature, crossEntropy: crossEntropy,
                           total: Double(lossWeights.feature) * feature + Double(lossWeights.crossEntropy) * crossEntropy,
                           matches: Int(results[2]), rows: m)
    }

    private func linearBackward(_ dy: UnsafePointer<Float>, input: UnsafePointer<Float>, rows m: Int, _ weights: DrafterWeights,
                                _ tensor: DrafterTensor, dx: UnsafeMutablePointer<Float>?, accumulate: Bool, gradients: FloatBuffer) {
        let shape = tensor.shape(config)
        let dw = gradients.pointer + weights.layout.offset(tensor)
        check(td_drafter_linear_backward(dy, input, Int64(m), Int64(shape.cols), weights.pointer(tensor), Int64(shape.rows),
                                         dx, accumulate ? 1 : 0, dw, Int32(threads)), "td_drafter_linear_backward(\(tensor))")
    }
}
