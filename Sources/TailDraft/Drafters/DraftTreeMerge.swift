extension DraftTree {
    /// Returns the union of this tree and `other` (same root token) with at most `budget`
    /// drafted nodes, of which up to `reserved` are left for `other`'s nodes.
    ///
    /// This tree keeps its first `budget - min(reserved, other.draftedCount)` drafted nodes.
    /// Then `other`'s nodes follow in their order: a node whose path is already in the
    /// result maps to the existing node, and a new node is added while room remains. Both
    /// orders are topological, so the result is closed under parents and has no repeated
    /// sibling tokens. Sampled distributions are not merged, so both trees must have
    /// deterministic children. Cost: O((count + other.count) x branching).
    public func merging(_ other: DraftTree, budget: Int, reserved: Int) -> DraftTree {
        precondition(other.tokens[0] == tokens[0], "merged trees need the same root, got \(tokens[0]) and \(other.tokens[0])")
        precondition(sampledFrom.isEmpty && other.sampledFrom.isEmpty, "only trees with deterministic children can be merged")
        var merged = self
        merged.truncate(toNodes: 1 + max(0, min(draftedCount, budget - min(reserved, other.draftedCount))))

        // Map each of `other`'s nodes to a node of the result, adding the missing ones.
        var mapped = [Int?](repeating: nil, count: other.count)
        mapped[0] = 0
        for node in 1..<other.count {
            guard let parent = mapped[other.parents[node]] else { continue }
            if let existing = merged.children(of: parent).first(where: { merged.tokens[$0] == other.tokens[node] }) {
                mapped[node] = existing
            } else if merged.draftedCount < budget {
                mapped[node] = merged.addChild(other.tokens[node], to: parent, probability: other.drafterProbabilities[node])
            }
        }
        return merged
    }

    /// Returns how many leading tokens of `path` form a path below the root: 0 when no child
    /// of the root is `path[0]`. O(count x length).
    public func matchedLength(of path: [Int32]) -> Int {
        var node = 0
        for (index, token) in path.enumerated() {
            guard let child = children(of: node).first(where: { tokens[$0] == token }) else { return index }
            node = child
        }
        return path.count
    }
}
