/// The accepted path of a verified draft tree.
struct VerificationOutcome: Equatable {
    /// Accepted drafted nodes, root's child first.
    var acceptedNodes: [Int]
    /// The target's own token after the accepted path.
    var next: Int32
}

/// Decides which drafted tokens the target accepts, so that output keeps exactly the
/// target's distribution p (after the sampler's filters and temperature).
///
/// Two kinds of children, per expanded node:
/// - Deterministic (chosen by the drafter): child x is accepted with probability p(x); on
///   rejection p(x) is set to 0 and p renormalized before the next child.
/// - Sampled from the drafter's q (`DraftTree.sampledFrom`): child x is accepted with
///   probability min(1, p(x) / q(x)); on rejection p becomes normalize(max(0, p - q)),
///   computed by token id, before the next child.
/// When no child is accepted the next token is drawn from what remains of p. With greedy
/// sampling p is one token with probability 1, so a child is accepted exactly when it is the
/// target's argmax and the output equals plain greedy decoding.
enum Verifier {
    /// Walks `tree` from the root using `logits(node)`, the target's logits at each node.
    static func verify(tree: DraftTree, logits: (Int) -> ArraySlice<Float>, sampler: inout Sampler) -> VerificationOutcome {
        var accepted: [Int] = []
        var node = 0
        while true {
            var p = Dictionary(uniqueKeysWithValues: sampler.distribution(logits(node)).map { ($0.token, $0.probability) })
            guard let child = chooseChild(of: node, in: tree, p: &p, sampler: &sampler) else {
                return VerificationOutcome(acceptedNodes: accepted, next: drawResidual(p, sampler: &sampler))
            }
            accepted.append(child)
            node = child
        }
    }

    /// Tries the children of `node` in order; returns the accepted one, or nil with `p` left
    /// as the residual distribution (unnormalized).
    static func chooseChild(of node: Int, in tree: DraftTree, p: inout [Int32: Double], sampler: inout Sampler) -> Int? {
        let q = tree.sampledFrom[node]
        for child in tree.children(of: node) {
            let token = tree.tokens[child]
            let total = p.values.reduce(0, +)
            guard total > 0 else { return nil }
            let target = (p[token] ?? 0) / total
            if let q {
                let draft = q[token] ?? 0
                guard draft > 0 else { continue }
                let ratio = target / draft
                if ratio >= 1 || sampler.nextUnit() < ratio { return child }
                // Residual max(0, p - q) by token id, on the normalized p.
                var residual: [Int32: Double] = [:]
                for (id, probability) in p {
                    let rest = probability / total - (q[id] ?? 0)
                    if rest > 0 { residual[id] = rest }
                }
                // Rounding can leave nothing when p and q agree; p itself is then the limit.
                if !residual.isEmpty { p = residual }
            } else {
                guard target > 0 else { continue }
                if target >= 1 || sampler.nextUnit() < target { return child }
                p[token] = nil
            }
        }
        return nil
    }

    /// Draws from an unnormalized distribution, lowest token id first for a stable order;
    /// a single candidate needs no random draw.
    static func drawResidual(_ p: [Int32: Double], sampler: inout Sampler) -> Int32 {
        let candidates = p.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { TokenProbability(token: $0.key, probability: $0.value) }
        precondition(!candidates.isEmpty, "the residual distribution is empty")
        if candidates.count == 1 { return candidates[0].token }
        return Sampler.draw(from: candidates, unit: sampler.nextUnit())
    }
}
