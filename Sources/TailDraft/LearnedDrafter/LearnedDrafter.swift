/// Drafts trees with the learned drafter: one drafter forward per tree level for the
/// level's most probable nodes, children taken from the drafter's top-k over the draft
/// vocabulary, and the most probable paths kept up to the budget.
///
/// The drafter reads the target's final hidden states through `observeHidden`. It keeps its
/// own KV cache of one slot per committed position (slot t from token t + 1 and the target's
/// state at t) and truncates it back to the committed positions after every draft, so it
/// rolls back with the target. Rows attend to the last `attentionWindow` positions only, and
/// slots behind that window are never computed. With a `trainer`, it adopts the trainer's
/// newest weights at the start of a draft (a step boundary) and feeds it every committed
/// position.
///
/// Output never depends on the drafter: verification keeps exactly the target's tokens.
/// Not thread-safe: the decode loop calls it from one thread.
///
/// Drafting reads the snapshot's Q8_0 copy (`DrafterInferenceWeights`, about 5.6 MB with the
/// head for SmolLM2 against 21 MB in F32) when it has one, and training keeps the F32
/// parameters; `usesQuantizedWeights` switches drafting back to F32.
public final class LearnedDrafter: Drafter {
    public let name = "learned"
    public let target: DrafterTarget
    /// The snapshot drafting uses now.
    public private(set) var weights: DrafterWeights
    /// The id the trainer files this drafter's positions under. Drafters of sequences decoded
    /// side by side that share one trainer need different ids.
    public let stream: Int
    /// Trains the drafter in the background, when set.
    public let trainer: DrafterTrainer?
    /// Children drafted per expanded node (the drafter's top-k).
    public var childrenPerNode: Int
    /// Candidates expanded per tree level (one drafter row each).
    public var beamWidth: Int
    /// When new weights arrive, the last this many cached positions are recomputed with
    /// them. Recomputing reads all weights once per 32 positions, so the default is small.
    /// NOTE: older slots keep keys and values of earlier weights, which the new weights
    /// never saw in training; how much that costs in acceptance is not measured.
    public var refreshPositions: Int
    /// Whether drafting multiplies by the snapshot's Q8_0 copy (when it has one) instead of the
    /// F32 parameters. Proposals differ slightly between the two,
    /// but the generated output does not.
    public var usesQuantizedWeights = true
    /// Weight snapshots adopted from the trainer.
    public private(set) var weightSwaps = 0
    /// Most positions a drafter row attends to, itself included; nil for every committed
    /// position. The trainer trains on windows of `DrafterTrainerOptions.windowLength`
    /// positions (64 by default), so no row attended further back in training, and a
    /// catch-up after a long context computes at most this many positions.
    public var attentionWindow: Int? = DrafterTrainerOptions().windowLength

    let network: DrafterNetwork
    let cache: DrafterKVCache
    /// The target's hidden state of every committed position, H floats each.
    private var features: [Float] = []
    /// Input token (token t + 1) of each cached slot t, to notice a changed context.
    private var cachedInputs: [Int32] = []
    /// False after a gap in the observed positions, until a sequence restarts at 0.
    private var featuresContiguous = true
    /// Cache slots below this one may hold no keys and values: a catch-up skipped them
    /// because they were behind the attention window.
    private var unwrittenBelow = 0
    /// Positions catch-ups have run the network on, for tests of their cost.
    private(set) var caughtUpPositions = 0

    /// Creates a drafter with fixed `weights`, or, with `trainer`, with the trainer's
    /// weights as they improve.
    public init(weights: DrafterWeights, target: DrafterTarget, trainer: DrafterTrainer? = nil, childrenPerNode: Int = 4,
                beamWidth: Int = 4, refreshPositions: Int = 16, threads: Int = 1, stream: Int = 0) {
        self.stream = stream
        self.weights = weights
        self.target = target
        self.trainer = trainer
        self.childrenPerNode = max(1, childrenPerNode)
        self.beamWidth = max(1, beamWidth)
        self.refreshPositions = max(0, refreshPositions)
        network = DrafterNetwork(config: weights.config, threads: threads)
        cache = DrafterKVCache(kvDim: weights.config.kvDim)
    }

    public var observesHiddenStates: Bool { true }

    /// A draft runs the network over new positions and a tree level at a time, several
    /// percent of a target step, so a gated-off decoder scores one draft in four.
    public var shadowInterval: Int { 4 }

    /// Fresh rows the trainer must have evaluated since the last estimate before
    /// `recentAccuracy` takes a new one.
    public var accuracyRows = 512
    /// The trainer's fresh-row counters at the last estimate, and that estimate.
    private var accuracyBase = (rows: 0, matches: 0)
    private var accuracyEstimate: Double?

    /// Returns the trainer's test-then-train accuracy (`DrafterTrainerStatistics.freshAccuracy`)
    /// over the rows it evaluated since the previous estimate, once there are `accuracyRows`
    /// of them, and until then the previous estimate. Nil without a trainer and before the
    /// first estimate. Reads the trainer's counters under their lock.
    public func recentAccuracy() -> Double? {
        guard let trainer else { return nil }
        let statistics = trainer.statistics
        let rows = statistics.freshRows - accuracyBase.rows
        if rows >= accuracyRows {
            accuracyEstimate = Double(statistics.freshMatches - accuracyBase.matches) / Double(rows)
            accuracyBase = (statistics.freshRows, statistics.freshMatches)
        }
        return accuracyEstimate
    }

    /// The Q8_0 copy drafting multiplies by, or nil for the F32 parameters.
    var inferenceWeights: DrafterInferenceWeights? { usesQuantizedWeights ? weights.inference : nil }

    public func observeHidden(tokens: ArraySlice<Int32>, hidden: ArraySlice<Float>, startPosition: Int) {
        let h = weights.config.hiddenSize
        precondition(hidden.count == tokens.count * h, "observeHidden got \(hidden.count) floats for \(tokens.count) tokens of \(h)")
        trainer?.record(tokens: tokens, hidden: hidden, startPosition: startPosition, stream: stream)
        let known = features.count / h
        if startPosition == 0 { featuresContiguous = true }
        guard startPosition <= known else {
            featuresContiguous = false
            return
        }
        features.removeLast((known - startPosition) * h)
        features.append(contentsOf: hidden)
        cache.truncate(to: startPosition)
        cachedInputs.removeLast(max(0, cachedInputs.count - cache.count))
    }

    public func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        guard let root = context.last else { preconditionFailure("the learned drafter needs a non-empty context") }
        adoptNewWeights()
        var tree = DraftTree(root: root)
        let committed = context.count - 1
        guard budget > 0, maxDepth > 0, committed >= 1, featuresContiguous,
              features.count / weights.config.hiddenSize >= committed else { return tree }

        let (rootState, rootLogits) = catchUp(context: context, committed: committed)
        growTree(&tree, rootState: rootState, rootLogits: rootLogits, committed: committed, budget: budget, maxDepth: maxDepth)
        cache.truncate(to: committed)
        return tree
    }

    /// Swaps in the trainer's newest snapshot, and drops the newest cached slots so they are
    /// recomputed with it.
    private func adoptNewWeights() {
        guard let newer = trainer?.mailbox.take() else { return }
        adopt(newer)
    }

    /// Switches to `newer` weights for the next draft, for drafters without a trainer of their
    /// own whose owner shares one trainer's snapshots among several drafters. The newest
    /// `refreshPositions` cached positions are recomputed with them. Nothing happens when
    /// `newer` is the snapshot in use.
    public func adopt(_ newer: DrafterWeights) {
        guard newer.version != weights.version else { return }
        weights = newer
        weightSwaps += 1
        cache.truncate(to: cache.count - refreshPositions)
        cachedInputs.removeLast(cachedInputs.count - cache.count)
    }

    /// Returns the first slot a row at `position` attends to: 0, or the start of the attention
    /// window.
    func firstVisible(position: Int) -> Int {
        attentionWindow.map { max(0, position - $0 + 1) } ?? 0
    }

    /// Brings the cache to slots 0..<committed and returns the last slot's predicted hidden
    /// state and draft logits: the state at the root's position and the root's children.
    ///
    /// Only the last slot runs the whole layer. A slot's key and value depend only on its own
    /// input, so the slots before it run `DrafterNetwork.keysAndValues`, and slots before the
    /// attention window are not computed at all: no row attends to them from here on.
    /// Cost: about a fifth of a drafter row per new position (at most `attentionWindow` of
    /// them), plus one whole row.
    private func catchUp(context: [Int32], committed: Int) -> ([Float], [Float]) {
        // Keep the slots whose input token still matches the context, and always recompute
        // the last one, whose outputs the tree starts from.
        var valid = min(cache.count, committed - 1)
        for slot in 0..<valid where cachedInputs[slot] != context[slot + 1] {
            valid = slot
            break
        }
        let windowStart = firstVisible(position: committed - 1)
        if unwrittenBelow > windowStart {
            // The window reaches back into slots an earlier catch-up skipped.
            valid = min(valid, windowStart)
            unwrittenBelow = windowStart
        }
        cache.truncate(to: valid)
        cachedInputs.removeLast(cachedInputs.count - valid)
        cache.reserve(committed)
        if valid < windowStart {
            cache.commit(windowStart - valid)
            cachedInputs.append(contentsOf: context[valid + 1 ... windowStart])
            unwrittenBelow = windowStart
            valid = windowStart
        }

        let h = weights.config.hiddenSize, v = weights.config.draftVocabularySize
        let chunk = 32
        var start = valid
        while start < committed {
            // Rows before the last in chunks of keys and values, then the last row whole.
            let end = start < committed - 1 ? min(start + chunk, committed - 1) : committed
            let m = end - start
            fillInputs(context: context, from: start, rows: m)
            let positions = (start..<end).map { Int32($0) }
            if end < committed {
                network.keysAndValues(weights, rows: m, positions: positions, keys: cache.keys + start * cache.kvDim,
                                      values: cache.values + start * cache.kvDim, inference: inferenceWeights)
            } else {
                let slots = Array(Int32(windowStart)...Int32(start))
                let span = DrafterNetwork.AttentionSpan(keys: cache.keys, values: cache.values, firstSlot: start,
                                                        slotOffsets: [0, Int32(slots.count)], slots: slots)
                network.forward(weights, rows: 1, positions: positions, attention: span, logitsFrom: 0, inference: inferenceWeights)
            }
            cache.commit(m)
            cachedInputs.append(contentsOf: context[start + 1 ... end])
            caughtUpPositions += m
            start = end
        }
        let state = Array(UnsafeBufferPointer(start: network.floats(.predicted, rows: 1), count: h))
        let logits = Array(UnsafeBufferPointer(start: network.floats(.logits, rows: 1), count: v))
        return (state, logits)
    }

    /// Writes the drafter inputs of slots `start ..< start + rows` into the network's input
    /// rows: the embedding of token t + 1, then the target's hidden state at t.
    private func fillInputs(context: [Int32], from start: Int, rows m: Int) {
        let h = weights.config.hiddenSize
        let input = network.floats(.input, rows: m)
        features.withUnsafeBufferPointer { f in
            for row in 0..<m {
                target.embed(context[start + row + 1], into: input + row * 2 * h)
                (input + row * 2 * h + h).update(from: f.baseAddress! + (start + row) * h, count: h)
            }
        }
    }
}
