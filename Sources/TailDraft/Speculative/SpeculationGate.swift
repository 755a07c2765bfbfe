/// Switches speculation off when drafts are not accepted often enough to pay for their
/// verification, and back on when they would.
///
/// The gate keeps a moving average of accepted drafted tokens per step. While speculation is
/// on, verified steps feed it. While it is off, the decoder still asks the drafter for a
/// chain each step (drafting costs microseconds) and `observe(token:)` scores those chains
/// against the tokens that plain decoding produces, so the gate notices when drafts would be
/// accepted again. Decisions depend only on tokens, never on timing, so a seeded sampled run
/// is reproducible.
struct SpeculationGate {
    /// Accepted drafted tokens per step needed for speculation to pay.
    let threshold: Double
    /// Weight of the newest step in the moving average.
    let smoothing = 0.25
    private(set) var expectedAccepted: Double
    /// Chains drafted while off, with how many of their tokens matched so far.
    private var shadows: [(chain: [Int32], matched: Int)] = []

    /// A gate for trees of `budget` drafted tokens. A verification pass of n rows is taken to
    /// cost 1 + 0.33 (n - 1) single-row passes, so a step pays when it accepts more than
    /// 0.33 budget drafts.
    /// NOTE: 0.33 per extra row is an estimate from `taildraft-bench verify-cost` with the
    /// AVX-512 kernels at up to 4 rows. The curve is not yet measured at start-up.
    init(budget: Int) {
        threshold = 0.33 * Double(budget)
        expectedAccepted = threshold + 1
    }

    var isOn: Bool { expectedAccepted >= threshold }

    /// Records a verified step that accepted `accepted` drafted tokens.
    mutating func record(accepted: Int) {
        expectedAccepted += smoothing * (Double(accepted) - expectedAccepted)
    }

    /// Remembers a chain drafted while speculation is off, to be scored by later tokens.
    mutating func shadow(_ chain: [Int32]) {
        guard !chain.isEmpty else {
            record(accepted: 0)
            return
        }
        shadows.append((chain, 0))
    }

    /// Scores the shadow chains against the next token plain decoding produced.
    mutating func observe(token: Int32) {
        var remaining: [(chain: [Int32], matched: Int)] = []
        for var shadow in shadows {
            if shadow.chain[shadow.matched] == token {
                shadow.matched += 1
                if shadow.matched < shadow.chain.count {
                    remaining.append(shadow)
                    continue
                }
            }
            record(accepted: shadow.matched)
        }
        shadows = remaining
    }
}
