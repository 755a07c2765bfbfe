import Kernels

extension LearnedDrafter {
    /// A drafted node before the tree is chosen: its parent (an index into the node list, or
    /// -1 for the root), target token, the drafter's probability given the parent, and the
    /// product of probabilities along its path.
    struct Candidate {
        var parent: Int
        var token: Int32
        var probability: Double
        var pathProbability: Double
    }

    /// Grows candidates level by level as EAGLE-2 does, then keeps the `budget` candidates
    /// with the highest path probability.
    ///
    /// Each level runs the drafter once on the `beamWidth` most probable new candidates (at
    /// position committed - 1 + depth, each row attending to the committed slots, its
    /// ancestors' slots and its own) and adds their top `childrenPerNode` tokens. A level stops
    /// the growth when none of its candidates beats the budget-th best path probability so far,
    /// because a child's path probability never exceeds its parent's. The kept set is closed
    /// under parents for the same reason (ties go to the earlier candidate, which parents are).
    func growTree(_ tree: inout DraftTree, rootState: [Float], rootLogits: [Float], committed: Int, budget: Int, maxDepth: Int) {
        var candidates = children(of: -1, logits: rootLogits[...], pathProbability: 1)
        var states: [Int: [Float]] = [-1: rootState]
        var ancestorSlots: [Int: [Int32]] = [-1: []]
        var level = 0 ..< candidates.count

        for depth in 1 ..< min(maxDepth, budget) {
            let threshold = Self.kthLargest(candidates.map(\.pathProbability), budget)
            let expanded = level.filter { candidates[$0].pathProbability > threshold }
                .sorted { candidates[$0].pathProbability > candidates[$1].pathProbability }
                .prefix(beamWidth)
            guard !expanded.isEmpty else { break }
            let rows = runLevel(Array(expanded), candidates: candidates, states: &states, ancestorSlots: &ancestorSlots,
                                committed: committed, position: committed - 1 + depth)
            let start = candidates.count
            for (node, logits) in rows {
                candidates += children(of: node, logits: logits[...], pathProbability: candidates[node].pathProbability)
            }
            level = start ..< candidates.count
        }

        // Keep the best `budget` candidates, then add them in creation (topological) order.
        let kept = candidates.indices.sorted {
            candidates[$0].pathProbability != candidates[$1].pathProbability
                ? candidates[$0].pathProbability > candidates[$1].pathProbability : $0 < $1
        }.prefix(budget).sorted()
        var treeIndex: [Int: Int] = [-1: 0]
        for index in kept {
            let candidate = candidates[index]
            guard let parent = treeIndex[candidate.parent] else { continue }
            treeIndex[index] = tree.addChild(candidate.token, to: parent, probability: candidate.probability)
        }
    }

    /// Runs the drafter on the candidates `nodes` as one batch appended to the cache, and
    /// returns each node with its draft logits. Records each node's predicted state and slots.
    private func runLevel(_ nodes: [Int], candidates: [Candidate], states: inout [Int: [Float]],
                          ancestorSlots: inout [Int: [Int32]], committed: Int, position: Int) -> [(Int, [Float])] {
        let h = weights.config.hiddenSize, v = weights.config.draftVocabularySize
        let m = nodes.count
        let firstSlot = cache.count
        let input = network.floats(.input, rows: m)
        var offsets: [Int32] = [0], slots: [Int32] = []
        for (row, node) in nodes.enumerated() {
            let parent = candidates[node].parent
            target.embed(candidates[node].token, into: input + row * 2 * h)
            states[parent]!.withUnsafeBufferPointer { (input + row * 2 * h + h).update(from: $0.baseAddress!, count: h) }
            let own = ancestorSlots[parent]! + [Int32(firstSlot + row)]
            ancestorSlots[node] = own
            slots.append(contentsOf: Int32(min(firstVisible(position: position), committed)) ..< Int32(committed))
            slots.append(contentsOf: own)
            offsets.append(Int32(slots.count))
        }
        cache.reserve(firstSlot + m)
        let span = DrafterNetwork.AttentionSpan(keys: cache.keys, values: cache.values, firstSlot: firstSlot,
                                                slotOffsets: offsets, slots: slots)
        network.forward(weights, rows: m, positions: [Int32](repeating: Int32(position), count: m), attention: span, logitsFrom: 0,
                        inference: inferenceWeights)
        cache.commit(m)

        let predicted = network.floats(.predicted, rows: m), logits = network.floats(.logits, rows: m)
        var result: [(Int, [Float])] = []
        for (row, node) in nodes.enumerated() {
            states[node] = Array(UnsafeBufferPointer(start: predicted + row * h, count: h))
            result.append((node, Array(UnsafeBufferPointer(start: logits + row * v, count: v))))
        }
        return result
    }

    /// Returns the drafter's top `childrenPerNode` tokens after `node` as candidates.
    private func children(of node: Int, logits: ArraySlice<Float>, pathProbability: Double) -> [Candidate] {
        let k = min(childrenPerNode, logits.count)
        var indices = [Int32](repeating: 0, count: k)
        var probabilities = [Float](repeating: 0, count: k)
        let status = logits.withUnsafeBufferPointer {
            td_drafter_top_k($0.baseAddress, Int64($0.count), Int32(k), &indices, &probabilities)
        }
        check(status, "td_drafter_top_k")
        return zip(indices, probabilities).map { index, probability in
            Candidate(parent: node, token: weights.vocabulary.tokens[Int(index)], probability: Double(probability),
                      pathProbability: pathProbability * Double(probability))
        }
    }

    /// Returns the k-th largest value, or 0 when there are fewer than k.
    static func kthLargest(_ values: [Double], _ k: Int) -> Double {
        guard values.count >= k, k >= 1 else { return 0 }
        return values.sorted(by: >)[k - 1]
    }
}
