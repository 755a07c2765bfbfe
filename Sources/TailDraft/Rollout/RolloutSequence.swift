/// The decoding settings of one sequence for the current pass.
struct DecodePlan {
    /// The drafter, or nil for one token without drafts.
    var drafter: (any Drafter)?
    /// The sequence's own drafter to draft with instead of `drafter`, if any.
    var ownDrafter: OwnDrafter?
    /// Largest number of drafted tokens.
    var budget: Int
    /// Whether the sequence's `SpeculationGate` sizes the draft (down to none) from its
    /// acceptance so far; when false every step drafts up to `budget`.
    var adaptive: Bool
    var maxDepth: Int
    /// The cost of the pass when every decoding sequence verifies n rows, relative to one
    /// row each, which the gate weighs against the expected accepted tokens.
    var cost: VerificationCost

    static func plain(cost: VerificationCost) -> DecodePlan {
        DecodePlan(drafter: nil, budget: 0, adaptive: false, maxDepth: 0, cost: cost)
    }
}

/// A drafter each sequence of a rollout has for itself, because it follows that sequence's
/// hidden states.
enum OwnDrafter {
    /// `RolloutSequence.learned`.
    case learned
    /// `RolloutSequence.merged`: the shared suffix drafter with the learned drafter's branches.
    case merged
}

/// The result of one sequence's rows in a pass.
struct SequenceStepOutcome {
    /// Response tokens emitted.
    var committed = 0
    /// Whether the sequence decoded (rather than prefilled) in this pass.
    var decoded = false
    var drafted = 0
    var accepted = 0
}

/// One response being generated: its KV cache, sampler and output, and the step logic of
/// the decode loop in `Generator`, split into planning the rows of a pass and consuming its
/// logits so many sequences can share one forward pass.
///
/// Invariant between passes, once the prompt is prefilled: `context` is the prompt plus
/// every emitted token, and the KV cache contains all of `context` but its last token, which
/// the next pass runs as its first row. With the same seed, prompt and options, the emitted
/// tokens equal `Generator.generate`'s, because every row's logits are bitwise the same in any
/// batch and each sequence has its own sampler. With drafts they are equal when greedy and
/// equal in distribution when sampling.
final class RolloutSequence {
    let request: RolloutRequest
    let seed: UInt64
    let cache: KVCache
    /// Seconds from the start of the step until the sequence was admitted.
    let joinedSeconds: Double
    private(set) var context: [Int32]
    private(set) var prefilled = 0
    private(set) var finished = false
    private(set) var drafted = 0
    private(set) var accepted = 0

    private var sampler: Sampler
    private var output: TokenEmitter
    private var gate: SpeculationGate?
    /// The pass being planned or consumed.
    private var pendingTree: DraftTree?
    private var pendingPlan: DecodePlan?
    private var pendingGated = false
    private var pendingPrefillEnd = 0
    /// The trainer that receives committed positions with their hidden states, and this
    /// sequence's stream id there; nil sends none.
    var training: (trainer: DrafterTrainer, stream: Int)?
    /// This sequence's learned drafter, fed with its hidden states, when the rollout drafts
    /// with learned drafters.
    var learned: LearnedDrafter?
    /// The suffix drafter merging `learned`'s branches, for the bandit's `merged` arms.
    var merged: AutoDrafter?

    init(request: RolloutRequest, seed: UInt64, cache: KVCache, options: RolloutOptions,
         tokenizer: BPETokenizer, joinedSeconds: Double) {
        precondition(cache.count == 0, "a sequence needs an empty KV cache, got \(cache.count) slots")
        self.request = request
        self.seed = seed
        self.cache = cache
        self.joinedSeconds = joinedSeconds
        context = request.promptTokens
        var sampling = options.sampling
        sampling.seed = seed
        sampler = Sampler(sampling)
        output = TokenEmitter(tokenizer: tokenizer, stopTokens: options.stopTokens ?? tokenizer.endOfGenerationIds,
                              maxTokens: options.maxTokens, onText: nil)
    }

    var isPrefilling: Bool { prefilled < request.promptTokens.count }
    var tokens: [Int32] { output.tokens }
    var finishReason: FinishReason { output.finishReason }

    /// Plans up to `limit` prompt tokens; the last prompt token's row gets logits.
    func planPrefill(limit: Int) -> RowGroup {
        precondition(isPrefilling && limit > 0, "planPrefill needs prompt tokens left and a positive limit")
        let end = min(request.promptTokens.count, prefilled + limit)
        pendingPrefillEnd = end
        pendingTree = nil
        let last = end == request.promptTokens.count
        return RowGroup(tokens: Array(request.promptTokens[prefilled..<end]),
                        positions: (prefilled..<end).map { Int32($0) }, mask: nil,
                        logitRows: last ? [end - prefilled - 1] : [])
    }

    /// Plans a decode step: the newest token alone, or a draft tree rooted at it.
    func planDecode(_ plan: DecodePlan) -> RowGroup {
        precondition(!isPrefilling && !finished, "planDecode needs a prefilled, unfinished sequence")
        let rootSlot = cache.count
        let room = cache.capacity - rootSlot
        let root = context[context.count - 1]
        var tree = DraftTree(root: root)
        pendingGated = false
        // A step emits its accepted drafts and one token of the target's, so drafts past the
        // tokens this response has left could never be kept.
        let useful = output.maxTokens - output.tokens.count - 1
        if let drafter = drafter(for: plan), plan.budget > 0, useful > 0 {
            var budget = plan.budget
            if plan.adaptive {
                if gate == nil { gate = SpeculationGate(maxBudget: plan.budget, cost: plan.cost, initialAcceptance: 1) }
                budget = gate!.budget(cost: plan.cost)
            }
            // With drafting off, an expensive drafter is asked for a shadow draft only now and then.
            let proposed = budget > 0 || gate!.takesShadow(interval: drafter.shadowInterval)
            if proposed {
                // Clamp so every node's position and KV slot stays inside the cache. The drafter
                // fits its tree to the gate's budget, and a shadow draft requests the full one.
                let draftBudget = min(budget > 0 ? budget : plan.budget, room - 1, useful)
                let maxDepth = min(plan.maxDepth, room - 1, useful)
                tree = budget > 0 ? drafter.propose(context: context, budget: draftBudget, maxDepth: maxDepth)
                                  : drafter.proposeShadow(context: context, budget: draftBudget, maxDepth: maxDepth)
            }
            if budget > 0 {
                tree.truncate(toNodes: min(tree.count, room, budget + 1))
            } else {
                if proposed { gate!.shadow(Generator.firstChain(of: tree)) }
                tree.truncate(toNodes: 1)
                pendingGated = true
            }
            precondition(tree.checkInvariants() == nil && tree.tokens[0] == root,
                         "drafter \(drafter.name) returned an invalid tree: \(tree.checkInvariants() ?? "wrong root")")
        }
        pendingTree = tree
        pendingPlan = plan
        let mask = tree.count > 1 ? tree.ancestorMask : nil
        return RowGroup(tokens: tree.tokens, positions: tree.positions(rootPosition: rootSlot), mask: mask,
                        logitRows: Array(0..<tree.count))
    }

    /// Consumes the logits of the planned rows, which start at batch row `firstRow`.
    func consume(_ result: ForwardOutput, firstRow: Int) -> SequenceStepOutcome {
        guard let tree = pendingTree else { return consumePrefill(result, firstRow: firstRow) }
        pendingTree = nil
        var outcome = SequenceStepOutcome(decoded: true)
        let rootSlot = cache.count - tree.count

        // A tree without drafts samples as plain decoding does, so its tokens match generate's.
        let acceptedNodes: [Int]
        let next: Int32
        if tree.count == 1 {
            acceptedNodes = []
            next = sampler.sample(result.logits(row: firstRow))
        } else {
            let verified = Verifier.verify(tree: tree, logits: { result.logits(row: firstRow + $0) }, sampler: &sampler)
            acceptedNodes = verified.acceptedNodes
            next = verified.next
            cache.keepSlots(acceptedNodes.map { rootSlot + $0 }, from: rootSlot + 1)
        }
        let acceptedTokens = acceptedNodes.map { tree.tokens[$0] }

        let before = output.tokens.count
        var consumed = 0
        var open = true
        for token in acceptedTokens + [next] where open {
            open = output.emit(token)
            consumed += 1
        }
        outcome.committed = output.tokens.count - before
        outcome.drafted = tree.draftedCount
        outcome.accepted = min(acceptedTokens.count, consumed)
        if training != nil || learned != nil {
            // The root and the accepted drafts now sit in the KV cache from rootSlot on.
            let rows = [0] + acceptedNodes.prefix(outcome.accepted)
            var hidden: [Float] = []
            hidden.reserveCapacity(rows.count * result.hiddenSize)
            for row in rows { hidden.append(contentsOf: result.hidden(row: firstRow + row)) }
            report(tokens: rows.map { tree.tokens[$0] }[...], hidden: hidden[...], startPosition: rootSlot)
        }
        drafted += outcome.drafted
        accepted += outcome.accepted

        if let plan = pendingPlan, let drafter = drafter(for: plan) {
            if pendingGated {
                gate?.observe(token: next)
            } else if plan.adaptive {
                gate?.record(depth: tree.maxDepth, accepted: acceptedNodes.count)
            }
            drafter.observe(context: context, accepted: acceptedTokens, next: next)
        }
        pendingPlan = nil
        context += acceptedTokens + [next]
        // A token that fills the cache is emitted but never run: nothing can follow it.
        if !open || cache.count >= cache.capacity { finish() }
        return outcome
    }

    private func consumePrefill(_ result: ForwardOutput, firstRow: Int) -> SequenceStepOutcome {
        let chunk = pendingPrefillEnd - prefilled
        let h = result.hiddenSize
        let chunkTokens = request.promptTokens[prefilled..<pendingPrefillEnd]
        let chunkHidden = result.hidden[firstRow * h..<(firstRow + chunk) * h]
        report(tokens: chunkTokens, hidden: chunkHidden, startPosition: prefilled)
        prefilled = pendingPrefillEnd
        guard !isPrefilling else { return SequenceStepOutcome() }
        let first = sampler.sample(result.logits(row: firstRow + chunk - 1))
        let open = output.emit(first)
        let outcome = SequenceStepOutcome(committed: output.tokens.count)
        context.append(first)
        if !open || cache.count >= cache.capacity { finish() }
        return outcome
    }

    /// Returns the drafter `plan` drafts with for this sequence: one of its own or the plan's
    /// shared one.
    private func drafter(for plan: DecodePlan) -> (any Drafter)? {
        switch plan.ownDrafter {
        case .learned: return learned
        case .merged: return merged
        case nil: return plan.drafter
        }
    }

    /// Passes positions that now sit in the KV cache, with their hidden states, to the trainer
    /// and to this sequence's learned drafter.
    private func report(tokens: ArraySlice<Int32>, hidden: ArraySlice<Float>, startPosition: Int) {
        if let training {
            training.trainer.record(tokens: tokens, hidden: hidden, startPosition: startPosition, stream: training.stream)
        }
        learned?.observeHidden(tokens: tokens, hidden: hidden, startPosition: startPosition)
    }

    private func finish() {
        output.finish()
        finished = true
    }
}
