/// Picks among several drafters by their measured acceptance: each step drafts with the one
/// whose recent steps accepted the most tokens, and every `exploreEvery` steps lets another
/// one draft so its estimate stays current. The choice depends only on acceptance, never on
/// timing, so seeded sampled runs are reproducible.
public final class AutoDrafter: Drafter {
    public let name = "auto"
    public let drafters: [any Drafter]
    public let exploreEvery: Int
    /// Weight of the newest step in each drafter's moving average of accepted tokens.
    let smoothing = 0.25

    private(set) var expectedAccepted: [Double]
    /// Steps drafted by each drafter.
    public private(set) var uses: [Int]
    private var step = 0
    private var current = 0

    public init(drafters: [any Drafter] = [SuffixDrafter(), LookupDrafter()], exploreEvery: Int = 8) {
        precondition(!drafters.isEmpty, "AutoDrafter needs at least one drafter")
        self.drafters = drafters
        self.exploreEvery = max(2, exploreEvery)
        // Optimistic start, so every drafter is tried before the estimates settle.
        expectedAccepted = Array(repeating: 1, count: drafters.count)
        uses = Array(repeating: 0, count: drafters.count)
    }

    public func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        step += 1
        var best = 0
        for index in drafters.indices where expectedAccepted[index] > expectedAccepted[best] { best = index }
        current = best
        if drafters.count > 1 && step % exploreEvery == 0 {
            // Explore the others in turn.
            let offset = 1 + (step / exploreEvery) % (drafters.count - 1)
            current = (best + offset) % drafters.count
        }
        uses[current] += 1
        return drafters[current].propose(context: context, budget: budget, maxDepth: maxDepth)
    }

    public func observe(context: [Int32], accepted: [Int32], next: Int32) {
        expectedAccepted[current] += smoothing * (Double(accepted.count) - expectedAccepted[current])
        for drafter in drafters { drafter.observe(context: context, accepted: accepted, next: next) }
    }

    public var observesHiddenStates: Bool { drafters.contains { $0.observesHiddenStates } }

    public func observeHidden(tokens: ArraySlice<Int32>, hidden: ArraySlice<Float>, startPosition: Int) {
        for drafter in drafters where drafter.observesHiddenStates {
            drafter.observeHidden(tokens: tokens, hidden: hidden, startPosition: startPosition)
        }
    }
}
