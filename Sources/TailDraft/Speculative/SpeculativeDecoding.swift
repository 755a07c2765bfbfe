/// The speculative decode loop: draft a tree after the newest token, verify it in one
/// forward pass, keep the accepted path in the KV cache and roll back the rest.
extension Generator {
    /// Decodes from the prompt's last logits with speculation, writing tokens to `output`.
    ///
    /// Invariant at the top of each step: `context` is the prompt plus every emitted token,
    /// and the KV cache contains all of `context` but its last token (the tree's root).
    func decodeSpeculative(prompt: [Int32], logits: [Float], speculation: SpeculationOptions,
                           sampler: inout Sampler, output: inout TokenEmitter,
                           timings: inout GenerationTimings) throws -> SpeculationStatistics {
        var statistics = SpeculationStatistics(drafterName: speculation.drafter.name)
        let first = sampler.sample(logits)
        guard output.emit(first) else { return statistics }
        var context = prompt + [first]
        var gate = SpeculationGate(maxBudget: speculation.budget,
                                   cost: speculation.cost ?? .estimated(maxRows: speculation.budget + 1))

        while cache.count < contextLength {
            // Draft, clamped so every node's position and KV slot stays inside the context.
            // While the gate is off the draft is only scored, and the step runs the root alone.
            let rootSlot = cache.count
            let room = contextLength - rootSlot
            let draftStart = Self.now()
            let budget = speculation.adaptive ? gate.budget : speculation.budget
            let speculating = budget > 0
            var tree = DraftTree(root: context[context.count - 1])
            let proposed = speculating || gate.takesShadow(interval: speculation.drafter.shadowInterval)
            if proposed {
                // The drafter fits its tree to the gate's budget, so a merged tree keeps branches of
                // both drafters and a neural drafter runs no levels that would be cut. A shadow
                // draft requests the full budget, so every depth's estimate stays current.
                let draftBudget = min(speculating ? budget : speculation.budget, room - 1)
                let maxDepth = min(speculation.maxDepth, room - 1)
                tree = speculating
                    ? speculation.drafter.propose(context: context, budget: draftBudget, maxDepth: maxDepth)
                    : speculation.drafter.proposeShadow(context: context, budget: draftBudget, maxDepth: maxDepth)
            }
            if speculating {
                tree.truncate(toNodes: min(tree.count, room, budget + 1))
            } else {
                if proposed { gate.shadow(Self.firstChain(of: tree)) }
                tree.truncate(toNodes: 1)
            }
            statistics.draftSeconds += Self.now() - draftStart
            precondition(tree.checkInvariants() == nil && tree.tokens[0] == context.last!,
                         "drafter \(speculation.drafter.name) returned an invalid tree: \(tree.checkInvariants() ?? "wrong root")")

            // Verify every node in one pass, then keep the root and the accepted path.
            let verifyStart = Self.now()
            let result = try model.forward(tree.batch(rootPosition: rootSlot), caches: [cache])
            let outcome = Verifier.verify(tree: tree, logits: { result.logits(row: $0) }, sampler: &sampler)
            cache.keepSlots(outcome.acceptedNodes.map { rootSlot + $0 }, from: rootSlot + 1)
            statistics.verifySeconds += Self.now() - verifyStart
            if speculation.drafter.observesHiddenStates {
                Self.reportHidden(of: [0] + outcome.acceptedNodes, tree: tree, result: result, rootSlot: rootSlot, to: speculation.drafter)
            }
            timings.decodeSteps += 1

            // Emit the accepted tokens and the target's own token, stopping where output ends.
            let acceptedTokens = outcome.acceptedNodes.map { tree.tokens[$0] }
            statistics.steps += 1
            statistics.drafted += tree.draftedCount
            // `consumed` counts tokens offered to the output, a stop token included; accepted
            // drafts past the end of output are not counted.
            let returnedBefore = output.tokens.count
            var consumed = 0
            var open = true
            for token in acceptedTokens + [outcome.next] where open {
                open = output.emit(token)
                consumed += 1
            }
            let acceptedUsed = min(acceptedTokens.count, consumed)
            if speculating {
                gate.record(depth: tree.maxDepth, accepted: outcome.acceptedNodes.count)
            } else {
                gate.observe(token: outcome.next)
                statistics.switchedOffSteps += 1
            }
            statistics.accepted += acceptedUsed
            statistics.emitted += output.tokens.count - returnedBefore
            timings.decodeTokens += output.tokens.count - returnedBefore
            if statistics.acceptedAtDepth.count < acceptedUsed {
                statistics.acceptedAtDepth += Array(repeating: 0, count: acceptedUsed - statistics.acceptedAtDepth.count)
            }
            for depth in 0..<acceptedUsed { statistics.acceptedAtDepth[depth] += 1 }
            speculation.drafter.observe(context: context, accepted: acceptedTokens, next: outcome.next)
            guard open else {
                // Accepted drafts past the end of output leave the cache, which then holds
                // only returned tokens, as after plain decoding.
                cache.truncate(to: min(cache.count, prompt.count + output.tokens.count))
                break
            }
            context += acceptedTokens + [outcome.next]
        }
        return statistics
    }

    /// Passes the hidden states of the committed tree rows (the root, then the accepted path)
    /// to the drafter; they now sit in the KV cache from `rootSlot` on.
    static func reportHidden(of rows: [Int], tree: DraftTree, result: ForwardOutput, rootSlot: Int, to drafter: any Drafter) {
        var hidden: [Float] = []
        hidden.reserveCapacity(rows.count * result.hiddenSize)
        for row in rows { hidden.append(contentsOf: result.hidden(row: row)) }
        drafter.observeHidden(tokens: rows.map { tree.tokens[$0] }[...], hidden: hidden[...], startPosition: rootSlot)
    }

    /// Returns the tokens along the first child of each node, from the root's first child down.
    static func firstChain(of tree: DraftTree) -> [Int32] {
        var chain: [Int32] = []
        var node = 0
        while let child = tree.children(of: node).first {
            chain.append(tree.tokens[child])
            node = child
        }
        return chain
    }
}
