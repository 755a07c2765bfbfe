/// A tree of drafted tokens to verify in one forward pass, stored as flat arrays in
/// topological order (every parent before its children).
///
/// Node 0 is the root: the newest token of the sequence, already chosen but not yet in the
/// KV cache. A node at depth d sits at position `rootPosition + d`. Its attention row sees
/// the committed prefix, its ancestors and itself, never its siblings or their subtrees.
public struct DraftTree: Sendable, Equatable {
    /// Token of each node.
    public private(set) var tokens: [Int32]
    /// Parent index of each node; -1 for the root.
    public private(set) var parents: [Int]
    /// Depth of each node; 0 for the root.
    public private(set) var depths: [Int]
    /// The drafter's probability of each node given its parent (1 for the root).
    public private(set) var drafterProbabilities: [Double]
    /// For nodes whose children were sampled from the drafter's distribution q: that q, by
    /// token id. Verification then accepts a child x with probability min(1, p(x) / q(x)).
    /// Nodes without an entry have deterministic children (chosen, not sampled).
    public private(set) var sampledFrom: [Int: [Int32: Double]] = [:]

    /// Creates a tree that contains only `root`.
    public init(root: Int32) {
        tokens = [root]
        parents = [-1]
        depths = [0]
        drafterProbabilities = [1]
    }

    /// Creates a chain: `root`, then `drafted` one after another.
    public init(root: Int32, chain drafted: [Int32]) {
        self.init(root: root)
        var parent = 0
        for token in drafted { parent = addChild(token, to: parent) }
    }

    public var count: Int { tokens.count }
    /// Number of drafted nodes (all but the root).
    public var draftedCount: Int { tokens.count - 1 }
    public var maxDepth: Int { depths.max() ?? 0 }

    /// Appends a child of `parent` and returns its index. O(1).
    @discardableResult
    public mutating func addChild(_ token: Int32, to parent: Int, probability: Double = 1) -> Int {
        precondition(parent >= 0 && parent < count, "parent \(parent) is not a node of a tree with \(count) nodes")
        tokens.append(token)
        parents.append(parent)
        depths.append(depths[parent] + 1)
        drafterProbabilities.append(probability)
        return count - 1
    }

    /// Records that the children of `node` were sampled independently from `distribution`
    /// (token id to probability, summing to 1).
    public mutating func setSampledDistribution(_ distribution: [Int32: Double], of node: Int) {
        precondition(node >= 0 && node < count, "node \(node) is not in a tree of \(count) nodes")
        sampledFrom[node] = distribution
    }

    /// Children of `node` in the order they were added. O(count).
    public func children(of node: Int) -> [Int] {
        parents.indices.filter { parents[$0] == node }
    }

    /// `mask[i][j]`: node i attends to node j (j is i or one of its ancestors). O(count x depth).
    public var ancestorMask: [[Bool]] {
        var mask = [[Bool]](repeating: [Bool](repeating: false, count: count), count: count)
        for node in 0..<count {
            var current = node
            while current >= 0 {
                mask[node][current] = true
                current = parents[current]
            }
        }
        return mask
    }

    /// RoPE positions of the nodes for a root at `rootPosition`: root position plus depth.
    public func positions(rootPosition: Int) -> [Int32] {
        depths.map { Int32(rootPosition + $0) }
    }

    /// Returns the forward batch that verifies this tree for a sequence whose committed
    /// prefix has `rootPosition` tokens. Every node gets logits.
    public func batch(rootPosition: Int) -> ForwardBatch {
        ForwardBatch(tokens: tokens, positions: positions(rootPosition: rootPosition), mask: ancestorMask)
    }

    /// Keeps the first `limit` nodes, which are closed under parents because the order is
    /// topological.
    public mutating func truncate(toNodes limit: Int) {
        guard limit < count else { return }
        precondition(limit >= 1, "a draft tree keeps at least its root")
        sampledFrom = sampledFrom.filter { $0.key < limit }
        tokens.removeLast(count - limit)
        parents.removeLast(parents.count - limit)
        depths.removeLast(depths.count - limit)
        drafterProbabilities.removeLast(drafterProbabilities.count - limit)
    }

    /// Returns the first violated invariant, or nil: a single root at index 0, parents before
    /// children, depth = parent's depth + 1, no two deterministic siblings with the same
    /// token, and probabilities in [0, 1].
    public func checkInvariants() -> String? {
        guard !tokens.isEmpty, parents.count == count, depths.count == count, drafterProbabilities.count == count else {
            return "arrays have different lengths or the tree is empty"
        }
        guard parents[0] == -1, depths[0] == 0 else { return "node 0 is not a root" }
        var seen: Set<[Int32]> = []
        for node in 1..<count {
            let parent = parents[node]
            guard parent >= 0 && parent < node else { return "node \(node) has parent \(parent), expected an earlier node" }
            guard depths[node] == depths[parent] + 1 else { return "node \(node) has depth \(depths[node]), expected \(depths[parent] + 1)" }
            guard sampledFrom[parent] != nil || seen.insert([Int32(parent), tokens[node]]).inserted else {
                return "node \(node) repeats token \(tokens[node]) among the deterministic children of \(parent)"
            }
            guard (0...1).contains(drafterProbabilities[node]) else {
                return "node \(node) has drafter probability \(drafterProbabilities[node]), expected 0...1"
            }
        }
        return nil
    }
}
