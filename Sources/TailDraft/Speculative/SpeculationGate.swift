/// Sizes each speculative step from measured acceptance and verification cost, down to no
/// draft at all when drafting does not pay.
///
/// The gate keeps, for each depth d, a moving average of how often the accepted path reached
/// depth d when a draft of that depth was verified. A step with budget b is expected to
/// commit 1 + a(1) + ... + a(b) tokens for cost(b + 1) single-row passes, and the gate picks
/// the b in 0...maxBudget with the best ratio (b = 0 is a plain step). While the budget is 0
/// the decoder still drafts a chain each step (drafting costs microseconds), and
/// `observe(token:)` scores those chains against the tokens plain decoding produces, so the
/// gate notices when drafts would be accepted again. Decisions depend only on tokens and the
/// cost table, never on timing during generation, so a seeded sampled run is reproducible
/// for a given cost table.
struct SpeculationGate {
    let cost: VerificationCost
    let maxBudget: Int
    /// Weight of the newest verified step in each moving average.
    let smoothing = 0.25
    /// Weight of the newest shadow draft, lower than for verified steps. On open chat, single
    /// chance matches switched drafting back on, and the drafts that followed failed.
    let shadowSmoothing = 0.125
    /// Expected gain over a plain step below which the gate does not draft. The cost table
    /// leaves out a speculative step's bookkeeping (verification, cache compaction) and is
    /// measured at one context length. A predicted gain of a few percent is within its error.
    let minimumGain = 1.05
    /// `acceptedAtLeast[d - 1]`: estimated probability that the accepted path reaches depth d.
    private(set) var acceptedAtLeast: [Double]
    /// Chains drafted while no draft is verified, with how many of their tokens matched so far.
    private var shadows: [(chain: [Int32], matched: Int)] = []
    /// Steps with drafting off since the last shadow draft.
    private var stepsSinceShadow = 0

    /// Whether a step with drafting off should ask the drafter for a shadow draft: every
    /// `interval`-th such step, counting steps only, so decisions stay reproducible.
    mutating func takesShadow(interval: Int) -> Bool {
        stepsSinceShadow += 1
        guard stepsSinceShadow >= max(1, interval) else { return false }
        stepsSinceShadow = 0
        return true
    }

    /// Starts with `initialAcceptance` as the estimate for every depth. The default, even odds,
    /// is high enough that a single stream tries speculation first with the full budget, and
    /// low enough that a drafter failing from the start stops after about four steps instead
    /// of seven. On open chat, where few drafts match, a start at 1 cost 3–5 % of the speed.
    /// Rollouts keep a start at 1: with even odds, the sequences of a ten-sequence tail never
    /// tried a draft within their short responses.
    init(maxBudget: Int, cost: VerificationCost, initialAcceptance: Double = 0.5) {
        self.maxBudget = maxBudget
        self.cost = cost
        acceptedAtLeast = Array(repeating: initialAcceptance, count: max(0, maxBudget))
    }

    /// The budget with the most expected committed tokens per unit of verification cost.
    var budget: Int { budget(cost: cost) }

    /// Returns the budget with the most expected committed tokens per unit of `cost`, for
    /// callers whose cost per row changes from step to step, such as a shrinking batch.
    func budget(cost: VerificationCost) -> Int {
        var best = 0
        var bestRate = minimumGain
        var expected = 1.0
        // Reaching depth d needs depth d - 1, so an estimate never exceeds the one above it.
        // This also keeps depths that drafts rarely reach from staying at their starting estimate.
        var reach = 1.0
        for b in stride(from: 1, through: maxBudget, by: 1) {
            reach = min(reach, acceptedAtLeast[b - 1])
            expected += reach
            let rate = expected / cost.cost(rows: b + 1)
            if rate > bestRate {
                best = b
                bestRate = rate
            }
        }
        return best
    }

    /// Records a verified draft of `depth` levels whose accepted path had `accepted` tokens.
    mutating func record(depth: Int, accepted: Int) {
        record(depth: depth, accepted: accepted, weight: smoothing)
    }

    private mutating func record(depth: Int, accepted: Int, weight: Double) {
        for d in stride(from: 1, through: min(depth, maxBudget), by: 1) {
            let reached = accepted >= d ? 1.0 : 0.0
            acceptedAtLeast[d - 1] += weight * (reached - acceptedAtLeast[d - 1])
        }
    }

    /// Remembers a chain drafted while no draft is verified, to be scored by later tokens.
    mutating func shadow(_ chain: [Int32]) {
        guard !chain.isEmpty else {
            // No draft at all: nothing would have been accepted at any depth.
            record(depth: maxBudget, accepted: 0, weight: shadowSmoothing)
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
            record(depth: shadow.chain.count, accepted: shadow.matched, weight: shadowSmoothing)
        }
        shadows = remaining
    }
}
