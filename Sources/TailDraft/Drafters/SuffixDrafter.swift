/// Drafts from the continuations of the context's longest repeated suffix, in the current
/// context and in a bounded history of earlier generations, as SuffixDecoding does.
///
/// Every occurrence of the longest matching suffix (up to `maxMatch` tokens) adds its
/// continuation to a trie with counts. The tree keeps the most frequent paths: nodes are
/// taken best-first by the product of count ratios along their path, up to the budget.
/// Longer matches allow deeper trees (match length + 2 levels). Cost per step:
/// O((context + history) x maxMatch) comparisons, no model evaluation.
public final class SuffixDrafter: Drafter {
    public let name = "suffix"
    public let minMatch: Int
    public let maxMatch: Int
    /// Tokens of earlier generations kept for matching; the oldest are dropped first.
    public let historyCapacity: Int
    /// Most occurrences whose continuations are counted per step (most recent first).
    public let maxOccurrences: Int
    /// Whether `propose` archives the previous context when a new generation starts. Callers
    /// that interleave several sequences turn it off and call `addToHistory` instead.
    public let archivesAutomatically: Bool

    /// Earlier contexts (prompt and output), oldest first.
    private(set) var history: [[Int32]] = []
    private var historyCount = 0
    /// The context seen last, to notice when a new generation starts.
    private var lastContext: [Int32] = []

    public init(minMatch: Int = 1, maxMatch: Int = 8, historyCapacity: Int = 65_536, maxOccurrences: Int = 64,
                archivesAutomatically: Bool = true) {
        precondition(minMatch >= 1 && maxMatch >= minMatch, "suffix drafter needs 1 <= minMatch <= maxMatch")
        self.minMatch = minMatch
        self.maxMatch = maxMatch
        self.historyCapacity = historyCapacity
        self.maxOccurrences = maxOccurrences
        self.archivesAutomatically = archivesAutomatically
    }

    /// Adds a finished sequence (prompt and output) to the history; the oldest sequences are
    /// dropped once the history has more than `historyCapacity` tokens.
    public func addToHistory(_ tokens: [Int32]) {
        guard !tokens.isEmpty else { return }
        history.append(tokens)
        historyCount += tokens.count
        while historyCount > historyCapacity, !history.isEmpty {
            historyCount -= history.removeFirst().count
        }
    }

    public func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        guard let root = context.last else { preconditionFailure("the suffix drafter needs a non-empty context") }
        if archivesAutomatically {
            archiveIfNewGeneration(context)
            lastContext = context
        }
        var tree = DraftTree(root: root)
        guard budget > 0, maxDepth > 0, context.count >= 2 else { return tree }

        for length in stride(from: min(maxMatch, context.count - 1), through: minMatch, by: -1) {
            let depth = min(maxDepth, length + 2)
            let continuations = occurrences(of: context.suffix(length), in: context, depth: depth)
            guard !continuations.isEmpty else { continue }
            buildTree(&tree, from: continuations, budget: budget)
            return tree
        }
        return tree
    }

    /// Adds the finished generation to the history when `context` does not extend it.
    private func archiveIfNewGeneration(_ context: [Int32]) {
        guard !lastContext.isEmpty, !context.starts(with: lastContext) else { return }
        addToHistory(lastContext)
    }

    /// Continuations (up to `depth` tokens) after occurrences of `suffix`: first in the
    /// context before its own suffix, then in the history, newest first.
    private func occurrences(of suffix: ArraySlice<Int32>, in context: [Int32], depth: Int) -> [ArraySlice<Int32>] {
        var result: [ArraySlice<Int32>] = []
        for (index, document) in ([context] + history.reversed()).enumerated() {
            // In the context, the suffix's own position has no continuation yet.
            var start = document.count - suffix.count - (index == 0 ? 1 : 0)
            while start >= 0 && result.count < maxOccurrences {
                defer { start -= 1 }
                let follow = start + suffix.count
                guard follow < document.count, document[start..<follow].elementsEqual(suffix) else { continue }
                result.append(document[follow..<min(document.count, follow + depth)])
            }
            if result.count >= maxOccurrences { break }
        }
        return result
    }

    /// Fills `tree` with the most frequent continuation paths, best-first.
    private func buildTree(_ tree: inout DraftTree, from continuations: [ArraySlice<Int32>], budget: Int) {
        // Trie of continuations with occurrence counts; node 0 is the root.
        var trieToken: [Int32] = [0], trieCount: [Int] = [continuations.count], trieChildren: [[Int]] = [[]]
        for continuation in continuations {
            var node = 0
            for token in continuation {
                if let child = trieChildren[node].first(where: { trieToken[$0] == token }) {
                    trieCount[child] += 1
                    node = child
                } else {
                    trieToken.append(token)
                    trieCount.append(1)
                    trieChildren.append([])
                    trieChildren[node].append(trieToken.count - 1)
                    node = trieToken.count - 1
                }
            }
        }

        // Best-first selection: a node becomes eligible once its parent is in the tree, so
        // the tree stays in topological order.
        var frontier: [(trie: Int, trieParent: Int, treeParent: Int, pathProbability: Double)] =
            trieChildren[0].map { ($0, 0, 0, Double(trieCount[$0]) / Double(trieCount[0])) }
        while tree.draftedCount < budget, !frontier.isEmpty {
            // Ties go to the earliest entry, so proposals are deterministic.
            var best = 0
            for index in frontier.indices where frontier[index].pathProbability > frontier[best].pathProbability { best = index }
            let pick = frontier.remove(at: best)
            let ratio = Double(trieCount[pick.trie]) / Double(trieCount[pick.trieParent])
            let node = tree.addChild(trieToken[pick.trie], to: pick.treeParent, probability: ratio)
            for child in trieChildren[pick.trie] {
                let probability = pick.pathProbability * Double(trieCount[child]) / Double(trieCount[pick.trie])
                frontier.append((child, pick.trie, node, probability))
            }
        }
    }
}
