/// Prompt lookup: drafts what followed earlier occurrences of the context's last tokens.
///
/// The drafter looks for the longest suffix of the context (up to `maxMatch` tokens, at least
/// `minMatch`) that occurred earlier, and drafts the tokens that followed the most recent
/// occurrences, merging continuations with a common prefix into one tree. It costs
/// O(context x maxMatch) per step and no model evaluation, and wins on text that repeats
/// its input: code edits, summaries, extraction.
public final class LookupDrafter: Drafter {
    public let name = "lookup"
    public let minMatch: Int
    public let maxMatch: Int
    /// Largest number of distinct continuations merged into one tree.
    public let maxBranches: Int

    public init(minMatch: Int = 1, maxMatch: Int = 4, maxBranches: Int = 2) {
        precondition(minMatch >= 1 && maxMatch >= minMatch, "lookup needs 1 <= minMatch <= maxMatch")
        self.minMatch = minMatch
        self.maxMatch = maxMatch
        self.maxBranches = max(1, maxBranches)
    }

    public func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        guard let root = context.last else { preconditionFailure("lookup needs a non-empty context") }
        var tree = DraftTree(root: root)
        guard budget > 0, maxDepth > 0 else { return tree }

        for length in stride(from: min(maxMatch, context.count - 1), through: minMatch, by: -1) {
            let continuations = self.continuations(context: context, matchLength: length, maxLength: maxDepth)
            guard !continuations.isEmpty else { continue }
            for continuation in continuations {
                var node = 0
                for token in continuation {
                    if let existing = tree.children(of: node).first(where: { tree.tokens[$0] == token }) {
                        node = existing
                        continue
                    }
                    guard tree.draftedCount < budget else { break }
                    node = tree.addChild(token, to: node)
                }
            }
            return tree
        }
        return tree
    }

    /// Returns the tokens after the most recent earlier occurrences of the last `matchLength`
    /// tokens, one continuation per distinct first token, most recent first.
    private func continuations(context: [Int32], matchLength: Int, maxLength: Int) -> [[Int32]] {
        let end = context.count
        let suffixStart = end - matchLength
        var result: [[Int32]] = []
        var firstTokens: Set<Int32> = []
        var start = suffixStart - 1
        while start >= 0 && result.count < maxBranches {
            defer { start -= 1 }
            let follow = start + matchLength
            guard follow < end else { continue }
            var matches = true
            for offset in 0..<matchLength where context[start + offset] != context[suffixStart + offset] {
                matches = false
                break
            }
            guard matches, firstTokens.insert(context[follow]).inserted else { continue }
            result.append(Array(context[follow..<min(end, follow + maxLength)]))
        }
        return result
    }
}
