#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

/// Consecutive committed positions of one sequence: each token with the target's final
/// hidden state at its position. A sample of n positions gives n - 1 training rows (input
/// token t + 1 and state t, target state t + 1).
public struct DrafterSample: Sendable, Equatable {
    public var tokens: [Int32]
    /// tokens.count x H floats.
    public var hidden: [Float]
    /// Position of tokens[0] in its sequence.
    public var startPosition: Int

    public init(tokens: [Int32], hidden: [Float], startPosition: Int) {
        self.tokens = tokens
        self.hidden = hidden
        self.startPosition = startPosition
    }
}

/// AdamW settings of drafter training.
public struct DrafterOptimizerOptions: Sendable, Equatable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    /// Decoupled weight decay of the matrices (norm weights are not decayed).
    public var weightDecay: Float
    /// Largest L2 norm of the whole gradient; larger gradients are scaled down to it.
    public var maxGradientNorm: Float
    public var lossWeights: DrafterLossWeights
    /// Weight of the unrolled step ("training-time test"): each sample also trains the
    /// drafter one position ahead from its own predicted hidden states, as drafting beyond the
    /// first token feeds them, with the loss scaled by this weight. 0 turns it off; on, a step
    /// costs about twice the time.
    public var unrolledWeight: Float

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8,
                weightDecay: Float = 0.01, maxGradientNorm: Float = 1, lossWeights: DrafterLossWeights = .init(),
                unrolledWeight: Float = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.maxGradientNorm = maxGradientNorm
        self.lossWeights = lossWeights
        self.unrolledWeight = unrolledWeight
    }
}

/// Trains a private copy of the drafter's parameters with AdamW on `DrafterSample`s and
/// hands out immutable snapshots of them.
///
/// Not thread-safe: the trainer thread owns an instance. Memory: parameters, gradients and
/// two moments (4 x 4.2M floats for SmolLM2, 67 MB) plus activations of one sample.
final class DrafterLearner {
    let target: DrafterTarget
    let config: DrafterConfig
    var options: DrafterOptimizerOptions
    let network: DrafterNetwork
    /// The live parameters, wrapped with the current vocabulary and head. Never published:
    /// `snapshot()` copies it.
    private(set) var working: DrafterWeights
    let gradients: FloatBuffer
    let firstMoment: FloatBuffer
    let secondMoment: FloatBuffer
    /// Optimizer steps taken.
    private(set) var step: Int
    private var keys = FloatBuffer(count: 0)
    private var values = FloatBuffer(count: 0)

    /// Starts from `initial`, and from saved optimizer `moments` when given (a checkpoint's).
    init(initial: DrafterWeights, target: DrafterTarget, options: DrafterOptimizerOptions = .init(),
         moments: (first: FloatBuffer, second: FloatBuffer)? = nil, threads: Int = 1) {
        self.target = target
        config = initial.config
        self.options = options
        network = DrafterNetwork(config: initial.config, threads: threads)
        working = DrafterWeights(config: initial.config, vocabulary: initial.vocabulary, head: initial.head,
                                 parameters: FloatBuffer(copying: initial.parameters), version: initial.version)
        gradients = FloatBuffer(count: working.layout.count)
        if let moments, moments.first.count == working.layout.count, moments.second.count == working.layout.count {
            firstMoment = FloatBuffer(copying: moments.first)
            secondMoment = FloatBuffer(copying: moments.second)
        } else {
            firstMoment = FloatBuffer(count: working.layout.count)
            secondMoment = FloatBuffer(count: working.layout.count)
        }
        step = initial.version
    }

    var parameters: FloatBuffer { working.parameters }

    /// Returns an immutable copy of the current parameters, vocabulary and head, with the Q8_0
    /// copy drafting reads when `forInference` (built here, on the trainer's thread, not the
    /// decode loop's).
    func snapshot(forInference: Bool = true) -> DrafterWeights {
        DrafterWeights(config: config, vocabulary: working.vocabulary, head: working.head,
                       parameters: FloatBuffer(copying: working.parameters), version: step, forInference: forInference)
    }

    /// Switches to another draft vocabulary (the head rows follow it; no parameter changes).
    func setVocabulary(_ vocabulary: DraftVocabulary) {
        guard vocabulary != working.vocabulary else { return }
        working = DrafterWeights(config: config, vocabulary: vocabulary, head: target.headRows(vocabulary),
                                 parameters: working.parameters, version: step)
    }

    /// Returns the loss on `sample` without changing anything (test-then-train evaluation).
    func evaluate(_ sample: DrafterSample) -> DrafterLoss {
        let (m, span, positions) = prepare(sample)
        network.forward(working, rows: m, positions: positions, attention: span, logitsFrom: 0)
        let h = config.hiddenSize, v = config.draftVocabularySize
        let targetLogits = network.floats(.targetLogits, rows: m)
        var results = [Double](repeating: 0, count: 3)
        sample.hidden.withUnsafeBufferPointer { hidden in
            let next = hidden.baseAddress! + h
            check(td_drafter_linear(next, Int64(m), Int64(h), working.head.pointer, Int64(v), targetLogits, Int32(network.threads)),
                  "td_drafter_linear(target head)")
            check(td_drafter_loss(network.floats(.predicted, rows: m), next, network.floats(.logits, rows: m), targetLogits,
                                  Int64(m), Int64(h), Int64(v), 0, 0, nil, nil, &results), "td_drafter_loss")
        }
        let w = options.lossWeights
        return DrafterLoss(feature: results[0], crossEntropy: results[1],
                           total: Double(w.feature) * results[0] + Double(w.crossEntropy) * results[1],
                           matches: Int(results[2]), rows: m)
    }

    /// Sets `gradients` to the gradient of the loss on `sample` and returns the loss. With an
    /// `unrolledWeight`, adds the gradient of the unrolled step, whose loss is not returned.
    func computeGradients(_ sample: DrafterSample) -> DrafterLoss {
        let h = config.hiddenSize
        let (m, span, positions) = prepare(sample)
        gradients.zero()
        network.forward(working, rows: m, positions: positions, attention: span, logitsFrom: 0)
        // Row r predicted the state at position r + 1: the unrolled step's input there.
        let unroll = options.unrolledWeight > 0 && m >= 2
        let predicted = unroll ? Array(UnsafeBufferPointer(start: network.floats(.predicted, rows: m), count: (m - 1) * h)) : []
        let loss = sample.hidden.withUnsafeBufferPointer { hidden in
            network.backward(working, rows: m, positions: positions, span: span, targetHidden: hidden.baseAddress! + h,
                             lossWeights: options.lossWeights, gradients: gradients)
        }
        guard unroll else { return loss }

        // The same targets one position on, from predicted instead of actual states. The
        // predictions count as inputs, so no gradient flows back through the first step.
        let ahead = DrafterSample(tokens: Array(sample.tokens[1...]), hidden: Array(sample.hidden[h...]),
                                  startPosition: sample.startPosition + 1)
        let (m2, span2, positions2) = prepare(ahead, inputStates: predicted)
        network.forward(working, rows: m2, positions: positions2, attention: span2, logitsFrom: 0)
        let weights = DrafterLossWeights(feature: options.lossWeights.feature * options.unrolledWeight,
                                         crossEntropy: options.lossWeights.crossEntropy * options.unrolledWeight)
        _ = ahead.hidden.withUnsafeBufferPointer { hidden in
            network.backward(working, rows: m2, positions: positions2, span: span2, targetHidden: hidden.baseAddress! + h,
                             lossWeights: weights, gradients: gradients)
        }
        return loss
    }

    /// Takes one AdamW step on `sample` with the gradient clipped to `maxGradientNorm`, and
    /// returns the loss before the step.
    @discardableResult
    func train(on sample: DrafterSample) -> DrafterLoss {
        let loss = computeGradients(sample)
        let norm = Float(td_drafter_sum_squares(gradients.pointer, Int64(gradients.count)).squareRoot())
        step += 1
        let o = options
        var settings = td_adamw_step(
            learning_rate: o.learningRate, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weight_decay: o.weightDecay,
            grad_scale: norm > o.maxGradientNorm && norm.isFinite ? o.maxGradientNorm / norm : 1,
            bias_correction1: 1 - powf(o.beta1, Float(step)), bias_correction2: 1 - powf(o.beta2, Float(step)))
        if !norm.isFinite { settings.grad_scale = 0 }
        for tensor in DrafterTensor.allCases {
            let range = working.layout.range(tensor, config)
            settings.weight_decay = tensor.isNorm ? 0 : o.weightDecay
            check(td_drafter_adamw(parameters.pointer + range.lowerBound, gradients.pointer + range.lowerBound,
                                   firstMoment.pointer + range.lowerBound, secondMoment.pointer + range.lowerBound,
                                   Int64(range.count), &settings), "td_drafter_adamw")
        }
        return loss
    }

    /// Fills the network's input rows and returns the row count, the causal attention span
    /// over the sample's own rows, and the rows' positions. Each row's state input is the
    /// sample's hidden state, or the row of `inputStates` when given (one per row).
    private func prepare(_ sample: DrafterSample, inputStates: [Float]? = nil) -> (Int, DrafterNetwork.AttentionSpan, [Int32]) {
        let h = config.hiddenSize, kv = config.kvDim
        let m = sample.tokens.count - 1
        precondition(m >= 1, "a training sample needs at least 2 positions, got \(sample.tokens.count)")
        precondition(sample.hidden.count == sample.tokens.count * h, "sample has \(sample.hidden.count) hidden floats, expected \(sample.tokens.count) x \(h)")
        precondition(inputStates.map { $0.count == m * h } ?? true, "input states must hold \(m) x \(h) floats")
        let input = network.floats(.input, rows: m)
        (inputStates ?? sample.hidden).withUnsafeBufferPointer { states in
            for row in 0..<m {
                target.embed(sample.tokens[row + 1], into: input + row * 2 * h)
                (input + row * 2 * h + h).update(from: states.baseAddress! + row * h, count: h)
            }
        }
        if keys.count < m * kv {
            keys = FloatBuffer(count: m * kv)
            values = FloatBuffer(count: m * kv)
        }
        var offsets: [Int32] = [0]
        var slots: [Int32] = []
        slots.reserveCapacity(m * (m + 1) / 2)
        for row in 0..<m {
            slots.append(contentsOf: 0...Int32(row))
            offsets.append(Int32(slots.count))
        }
        let span = DrafterNetwork.AttentionSpan(keys: keys.pointer, values: values.pointer, firstSlot: 0,
                                                slotOffsets: offsets, slots: slots)
        let positions = (0..<m).map { Int32(sample.startPosition + $0) }
        return (m, span, positions)
    }
}
