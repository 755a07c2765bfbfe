/// Picks among several drafters by their measured acceptance: each step drafts with the one
/// whose recent steps accepted the most tokens, and every `exploreEvery` steps lets another
/// one draft so its estimate stays current. The choice depends only on acceptance, never on
/// timing, so seeded sampled runs are reproducible.
///
/// With a `mergedDrafter` (the learned drafter), its branches are merged into the chosen
/// drafter's tree while they add accepted tokens. Every step with merged branches measures
/// the gain: the accepted tokens minus those the chosen drafter's own tree would have
/// matched. While the branches are not merged, trial merges keep that measure current. The
/// first comes `policy.probeEvery` steps after the start or a drop. Each trial that does not
/// lead to a merge doubles the distance to the next, up to `policy.maxProbeEvery` steps. A
/// trial is left out while the merged drafter reports a recent accuracy below
/// `policy.minAccuracy`. The moving average of the gain merges the branches above
/// `policy.mergeAbove` and drops them below `policy.dropBelow`.
///
/// A trial merge is verified like a merged step, so a wrong branch can take a node from the
/// chosen drafter's tree. Matching an unverified merged copy against the target's tokens
/// instead counts at most one token past the accepted ones, because the target gives none
/// beyond them. Tried on SmolLM2, that merged the
/// branches of a well-trained drafter later (gated tau 1.19 instead of 1.22 on held-out
/// prompts) and gained nothing measurable for a drafter learning from scratch.
public final class AutoDrafter: Drafter {
    /// When `AutoDrafter` merges `mergedDrafter`'s branches into its trees.
    public struct MergePolicy: Sendable, Equatable {
        /// Steps from the start, or from a drop, to the first trial merge.
        public var probeEvery: Int
        /// Most steps between trial merges after trials that did not merge. A trial costs the
        /// merged drafter's proposal, for the learned drafter its catch-up and one pass per
        /// tree level. With a trial every 8 steps, a freshly trained learned drafter left the
        /// merged tree 2 to 6 % behind the suffix drafter alone.
        public var maxProbeEvery: Int
        /// Average extra accepted tokens per step above which the branches are merged.
        public var mergeAbove: Double
        /// Average extra accepted tokens per step below which merged branches are dropped.
        public var dropBelow: Double
        /// Most drafted nodes left for the merged branches; nil for half the budget.
        public var reserved: Int?
        /// Minimum first-draft accuracy the merged drafter must report (`recentAccuracy`) for a
        /// trial to run. A drafter that reports none is tried regardless. On SmolLM2's
        /// held-out prompts, the branches of learned drafters at 24 to 27 % top-1 accuracy
        /// never made the merged tree faster than the suffix drafter alone, and those of one
        /// at 45 % made it about 1 % faster.
        public var minAccuracy: Double

        /// NOTE: the default thresholds are estimates, not tuned by measurement. Merged
        /// branches cost drafting time (about a tenth of a target step for the learned
        /// drafter) and verification rows, which a quarter of a token per step should repay.
        public init(probeEvery: Int = 8, maxProbeEvery: Int = 64, mergeAbove: Double = 0.25, dropBelow: Double = 0.1,
                    reserved: Int? = nil, minAccuracy: Double = 0.35) {
            self.probeEvery = max(1, probeEvery)
            self.maxProbeEvery = max(self.probeEvery, maxProbeEvery)
            self.mergeAbove = mergeAbove
            self.dropBelow = min(dropBelow, mergeAbove)
            self.reserved = reserved
            self.minAccuracy = minAccuracy
        }
    }

    public let name = "auto"
    public let drafters: [any Drafter]
    public let exploreEvery: Int
    /// The drafter whose branches are merged into the chosen drafter's tree, if any; it is
    /// not one of `drafters`.
    public let mergedDrafter: (any Drafter)?
    public let policy: MergePolicy
    /// Weight of the newest step in each drafter's moving average of accepted tokens.
    let smoothing = 0.25

    private(set) var expectedAccepted: [Double]
    /// Steps drafted by each drafter.
    public private(set) var uses: [Int]
    /// Whether the merged drafter's branches join every tree now (trial merges aside).
    public private(set) var isMerging = false
    /// Moving average of the accepted tokens the merged branches added per step.
    public private(set) var expectedGain = 0.0
    /// Steps whose tree contained merged branches (trial merges included).
    public private(set) var mergedSteps = 0
    /// Trial merges among `mergedSteps`.
    public private(set) var trialSteps = 0
    /// Trials left out because the merged drafter reported an accuracy below
    /// `policy.minAccuracy`.
    public private(set) var skippedTrials = 0
    /// Times the branches were merged and dropped again.
    public private(set) var merges = 0
    public private(set) var drops = 0
    private var step = 0
    private var current = 0
    /// Steps between trial merges now, and the step of the next one.
    private var probeInterval: Int
    private var nextProbe: Int
    /// The chosen drafter's own tree in a step with merged branches, to measure the gain.
    private var primaryTree: DraftTree?

    public init(drafters: [any Drafter] = [SuffixDrafter(), LookupDrafter()], exploreEvery: Int = 8,
                merging mergedDrafter: (any Drafter)? = nil, policy: MergePolicy = MergePolicy()) {
        precondition(!drafters.isEmpty, "AutoDrafter needs at least one drafter")
        precondition(!drafters.contains { $0 === mergedDrafter }, "the merged drafter must not also be one of the drafters")
        self.drafters = drafters
        self.exploreEvery = max(2, exploreEvery)
        self.mergedDrafter = mergedDrafter
        self.policy = policy
        // Optimistic start, so every drafter is tried before the estimates settle.
        expectedAccepted = Array(repeating: 1, count: drafters.count)
        uses = Array(repeating: 0, count: drafters.count)
        probeInterval = policy.probeEvery
        nextProbe = policy.probeEvery
    }

    public func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        draft(context: context, budget: budget, maxDepth: maxDepth, mayMerge: true)
    }

    /// Drafts with the chosen drafter alone, without trial merges: the gate scores a shadow
    /// draft only by its first chain, which merged branches never lead. A trial that falls
    /// due waits for a step that speculates.
    public func proposeShadow(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        draft(context: context, budget: budget, maxDepth: maxDepth, mayMerge: false)
    }

    private func draft(context: [Int32], budget: Int, maxDepth: Int, mayMerge: Bool) -> DraftTree {
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
        let tree = drafters[current].propose(context: context, budget: budget, maxDepth: maxDepth)
        primaryTree = nil
        guard mayMerge, let mergedDrafter, isMerging || step >= nextProbe, tree.sampledFrom.isEmpty else { return tree }
        if !isMerging, let accuracy = mergedDrafter.recentAccuracy(), accuracy < policy.minAccuracy {
            // Not worth a trial yet, so look again after the current interval.
            skippedTrials += 1
            nextProbe = step + probeInterval
            return tree
        }

        let branches = mergedDrafter.propose(context: context, budget: budget, maxDepth: maxDepth)
        guard branches.sampledFrom.isEmpty else { return tree }
        primaryTree = tree
        mergedSteps += 1
        if !isMerging { trialSteps += 1 }
        return tree.merging(branches, budget: budget, reserved: policy.reserved ?? max(1, budget / 2))
    }

    public func observe(context: [Int32], accepted: [Int32], next: Int32) {
        var ownAccepted = Double(accepted.count)
        if let primaryTree {
            // The chosen drafter's tree alone would have matched this much of the target's
            // tokens (one more than `accepted` when merging cut its matching branch).
            let alone = primaryTree.matchedLength(of: accepted + [next])
            ownAccepted = Double(alone)
            recordGain(Double(accepted.count - alone))
        }
        expectedAccepted[current] += smoothing * (ownAccepted - expectedAccepted[current])
        for drafter in drafters { drafter.observe(context: context, accepted: accepted, next: next) }
        mergedDrafter?.observe(context: context, accepted: accepted, next: next)
    }

    /// Adds one step's gain from the merged branches to the average and merges or drops them.
    func recordGain(_ gain: Double) {
        expectedGain += smoothing * (gain - expectedGain)
        if !isMerging && expectedGain > policy.mergeAbove {
            isMerging = true
            merges += 1
        } else if isMerging && expectedGain < policy.dropBelow {
            isMerging = false
            drops += 1
            probeInterval = policy.probeEvery
            nextProbe = step + probeInterval
        } else if !isMerging {
            probeInterval = min(2 * probeInterval, policy.maxProbeEvery)
            nextProbe = step + probeInterval
        }
    }

    public var observesHiddenStates: Bool {
        drafters.contains { $0.observesHiddenStates } || mergedDrafter?.observesHiddenStates == true
    }

    public func observeHidden(tokens: ArraySlice<Int32>, hidden: ArraySlice<Float>, startPosition: Int) {
        for drafter in drafters where drafter.observesHiddenStates {
            drafter.observeHidden(tokens: tokens, hidden: hidden, startPosition: startPosition)
        }
        if let mergedDrafter, mergedDrafter.observesHiddenStates {
            mergedDrafter.observeHidden(tokens: tokens, hidden: hidden, startPosition: startPosition)
        }
    }
}
