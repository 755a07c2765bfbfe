/// The accepted path of a verified draft tree.
struct VerificationOutcome: Equatable {
    /// Accepted drafted nodes, root's child first.
    var acceptedNodes: [Int]
    /// The target's own token after the accepted path.
    var next: Int32
}

/// Decides which drafted tokens the target accepts, so that output keeps exactly the
/// target's distribution.
///
/// Children are treated as deterministic drafts (the drafter chose them, it did not sample
/// them): at a node whose target distribution is p, child x is accepted with probability
/// p(x); on rejection p(x) is set to 0 and p renormalized before the next child, and when no
/// child is accepted the next token is drawn from what remains. With greedy sampling p is one
/// token with probability 1, so a child is accepted exactly when it is the target's argmax
/// and the output equals plain greedy decoding.
enum Verifier {
    /// Walks `tree` from the root using `logits(node)`, the target's logits at each node.
    static func verify(tree: DraftTree, logits: (Int) -> ArraySlice<Float>, sampler: inout Sampler) -> VerificationOutcome {
        var accepted: [Int] = []
        var node = 0
        while true {
            var distribution = sampler.distribution(logits(node))
            var chosen: Int? = nil
            for child in tree.children(of: node) {
                let token = tree.tokens[child]
                guard let index = distribution.firstIndex(where: { $0.token == token }) else { continue }
                let total = distribution.reduce(0) { $0 + $1.probability }
                let probability = distribution[index].probability / total
                if probability >= 1 || sampler.nextUnit() < probability {
                    chosen = child
                    break
                }
                distribution.remove(at: index)
            }
            guard let child = chosen else {
                let next = distribution.count == 1 ? distribution[0].token : Sampler.draw(from: distribution, unit: sampler.nextUnit())
                return VerificationOutcome(acceptedNodes: accepted, next: next)
            }
            accepted.append(child)
            node = child
        }
    }
}
