/// Settings of speculative decoding.
public struct SpeculationOptions {
    public var drafter: any Drafter
    /// Largest number of drafted nodes per step (tree size without the root). With `adaptive`
    /// each step uses the budget up to this one that `cost` and the recent acceptance favour.
    /// The default, 3, measured best with the lookup drafter on SmolLM2-135M with 2 cores:
    /// larger trees were accepted too rarely beyond depth 3 to pay for their rows.
    public var budget: Int
    /// Largest number of levels below the root.
    public var maxDepth: Int
    /// Whether each step sizes its draft from acceptance and cost, down to no draft while
    /// drafts are rarely accepted. When false every step verifies up to `budget` nodes.
    public var adaptive: Bool
    /// Verification cost per row count on this machine (see `VerificationCost.cached`); nil
    /// uses `VerificationCost.estimated`, which keeps runs identical across machines.
    public var cost: VerificationCost?

    public init(drafter: any Drafter, budget: Int = 3, maxDepth: Int = 8, adaptive: Bool = true, cost: VerificationCost? = nil) {
        self.drafter = drafter
        self.budget = budget
        self.maxDepth = maxDepth
        self.adaptive = adaptive
        self.cost = cost
    }
}

/// Counts and timings of speculation during one generation.
public struct SpeculationStatistics: Sendable, Equatable {
    public var drafterName: String
    /// Forward passes in the decode loop, speculative or not.
    public var steps = 0
    /// Of those, passes that ran without a draft because speculation was switched off.
    public var switchedOffSteps = 0
    /// Drafted nodes sent to verification.
    public var drafted = 0
    /// Drafted nodes accepted, counted up to where generation ended.
    public var accepted = 0
    /// Tokens emitted by speculative steps (accepted drafts plus the target's own token).
    public var emitted = 0
    /// `acceptedAtDepth[d - 1]`: steps whose accepted path reached depth d.
    public var acceptedAtDepth: [Int] = []
    public var draftSeconds = 0.0
    public var verifySeconds = 0.0

    public init(drafterName: String) {
        self.drafterName = drafterName
    }

    /// Mean tokens committed per verification step (tau).
    public var acceptanceLength: Double { steps > 0 ? Double(emitted) / Double(steps) : 0 }
    /// Accepted drafted nodes over drafted nodes.
    public var acceptanceRate: Double { drafted > 0 ? Double(accepted) / Double(drafted) : 0 }
    /// Fraction of steps whose accepted path reached each depth, from depth 1.
    public var acceptanceByDepth: [Double] { acceptedAtDepth.map { steps > 0 ? Double($0) / Double(steps) : 0 } }
}
