/// One way to decode a step of the long tail: no speculation, or a drafter with a fixed
/// number of drafted tokens per sequence.
public struct SpeculationStrategy: Sendable, Hashable, CustomStringConvertible {
    public enum DrafterKind: String, Sendable, CaseIterable {
        /// `LookupDrafter`: continuations of the newest tokens in the sequence's own context.
        case lookup
        /// `SuffixDrafter`: frequent continuations in the context and in finished responses.
        case suffix
        /// Each sequence's own `LearnedDrafter`. Needs `RolloutEngine.useLearnedDrafter`.
        case learned
        /// The suffix drafter's tree with the sequence's learned-drafter branches merged in
        /// while they add accepted tokens (`AutoDrafter` with a merged drafter). Needs
        /// `RolloutEngine.useLearnedDrafter`.
        case merged

        /// The kinds that need no learned drafter.
        public static let modelFree: [DrafterKind] = [.lookup, .suffix]

        /// Whether the kind drafts with each sequence's learned drafter.
        public var needsLearnedDrafter: Bool { self == .learned || self == .merged }
    }

    /// The drafter; nil decodes one token per sequence and step.
    public var drafter: DrafterKind?
    /// Drafted tokens per sequence and step (0 when `drafter` is nil).
    public var budget: Int

    public init(drafter: DrafterKind?, budget: Int) {
        precondition(drafter == nil ? budget == 0 : budget >= 1, "a strategy with a drafter needs a budget of 1 or more, and none without")
        self.drafter = drafter
        self.budget = budget
    }

    public static let off = SpeculationStrategy(drafter: nil, budget: 0)

    /// "off", or the drafter and budget such as "suffix/3".
    public var description: String {
        guard let drafter else { return "off" }
        return "\(drafter.rawValue)/\(budget)"
    }

    /// Returns `off` followed by every drafter with every budget: the arms of `--speculate auto`.
    /// By default only the model-free drafters take part, because `learned` and `merged` need
    /// a learned drafter.
    public static func arms(drafters: [DrafterKind] = DrafterKind.modelFree, budgets: [Int] = [2, 3, 5]) -> [SpeculationStrategy] {
        [.off] + drafters.flatMap { drafter in budgets.map { SpeculationStrategy(drafter: drafter, budget: $0) } }
    }
}

/// An epsilon-greedy bandit that picks a speculation strategy per batch-size bucket, rewarded
/// with committed tokens per second of wall-clock time.
///
/// Buckets group running-sequence counts by powers of two: 1, 2, 3-4, 5-8, ... Each bucket
/// first tries every arm `minimumPulls` times in arm order. After that a step explores a
/// uniformly chosen other arm with probability `epsilon`, but never more than
/// `maxExplorations` times per bucket, and otherwise takes the arm with the highest reward
/// estimate: total committed tokens over total seconds of that arm's steps, so long steps
/// weigh in proportion to their time. Choices depend only on the seed and the recorded
/// rewards, so a replay of the same rewards makes the same choices. Not thread-safe.
public struct StrategyBandit: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Probability of exploring once every arm has been tried.
        public var epsilon: Double
        /// Pulls of each arm per bucket before exploiting.
        public var minimumPulls: Int
        /// Most exploratory pulls per bucket, after the initial tries.
        public var maxExplorations: Int
        public var seed: UInt64

        /// Creates a configuration that by default pulls each arm once before exploiting,
        /// because the tail of a rollout lasts a few dozen passes per bucket and every pull of
        /// a poor arm there costs time.
        public init(epsilon: Double = 0.1, minimumPulls: Int = 1, maxExplorations: Int = 50, seed: UInt64 = 0) {
            precondition((0...1).contains(epsilon), "epsilon must be in 0...1, got \(epsilon)")
            precondition(minimumPulls >= 1, "every arm must be tried at least once, got minimumPulls \(minimumPulls)")
            precondition(maxExplorations >= 0, "maxExplorations must be 0 or more, got \(maxExplorations)")
            self.epsilon = epsilon
            self.minimumPulls = minimumPulls
            self.maxExplorations = maxExplorations
            self.seed = seed
        }
    }

    /// The tokens and time one arm earned in one bucket.
    public struct ArmRecord: Sendable, Equatable {
        public var pulls = 0
        public var tokens = 0
        public var seconds = 0.0
        /// Committed tokens per second over all of the arm's steps; nil before the first pull.
        public var reward: Double? { pulls > 0 && seconds > 0 ? Double(tokens) / seconds : nil }
    }

    /// The arms' records in one bucket, and how often it explored.
    public struct Bucket: Sendable, Equatable {
        public var arms: [ArmRecord]
        public var explorations = 0
        public var pulls: Int { arms.reduce(0) { $0 + $1.pulls } }
    }

    public let arms: [SpeculationStrategy]
    public let configuration: Configuration
    /// Buckets by index (see `bucket(runningSequences:)`), created on first use.
    public private(set) var buckets: [Int: Bucket] = [:]
    private var random: RandomGenerator

    public init(arms: [SpeculationStrategy] = SpeculationStrategy.arms(), configuration: Configuration = Configuration()) {
        precondition(!arms.isEmpty, "a bandit needs at least one arm")
        self.arms = arms
        self.configuration = configuration
        random = RandomGenerator(seed: configuration.seed)
    }

    /// Returns the bucket of a batch of `runningSequences`: 0 for 1, 1 for 2, 2 for 3-4,
    /// 3 for 5-8, and so on.
    public static func bucket(runningSequences: Int) -> Int {
        precondition(runningSequences >= 1, "a bucket needs at least one running sequence, got \(runningSequences)")
        var bucket = 0
        var upper = 1
        while upper < runningSequences {
            upper *= 2
            bucket += 1
        }
        return bucket
    }

    /// Returns the running-sequence counts of `bucket` as text, e.g. "3-4".
    public static func label(bucket: Int) -> String {
        guard bucket > 1 else { return String(bucket + 1) }
        let upper = 1 << bucket
        return "\(upper / 2 + 1)-\(upper)"
    }

    /// Chooses the arm for a step with `runningSequences` running, as an index into `arms`.
    public mutating func choose(runningSequences: Int) -> Int {
        let key = Self.bucket(runningSequences: runningSequences)
        var bucket = buckets[key] ?? Bucket(arms: Array(repeating: ArmRecord(), count: arms.count))
        defer { buckets[key] = bucket }

        if let untried = bucket.arms.firstIndex(where: { $0.pulls < configuration.minimumPulls }) {
            return untried
        }
        let best = Self.bestArm(bucket)
        guard arms.count > 1, bucket.explorations < configuration.maxExplorations,
              random.nextUnit() < configuration.epsilon else { return best }
        bucket.explorations += 1
        let offset = 1 + Int(random.next() % UInt64(arms.count - 1))
        return (best + offset) % arms.count
    }

    /// Records that arm `arm` committed `tokens` in `seconds` in a step with
    /// `runningSequences` running.
    public mutating func record(arm: Int, runningSequences: Int, tokens: Int, seconds: Double) {
        precondition(arms.indices.contains(arm), "arm \(arm) is not one of the \(arms.count) arms")
        let key = Self.bucket(runningSequences: runningSequences)
        var bucket = buckets[key] ?? Bucket(arms: Array(repeating: ArmRecord(), count: arms.count))
        bucket.arms[arm].pulls += 1
        bucket.arms[arm].tokens += tokens
        bucket.arms[arm].seconds += max(0, seconds)
        buckets[key] = bucket
    }

    /// Returns the arm with the highest reward in `runningSequences`' bucket, or nil while that
    /// bucket has no pulls.
    public func bestArm(runningSequences: Int) -> Int? {
        bestArm(bucket: Self.bucket(runningSequences: runningSequences))
    }

    /// Returns the arm with the highest reward in bucket `key`, or nil while it has no pulls.
    public func bestArm(bucket key: Int) -> Int? {
        guard let bucket = buckets[key], bucket.pulls > 0 else { return nil }
        return Self.bestArm(bucket)
    }

    /// Returns the arm with the highest reward. Ties and unpulled arms go to the lowest index.
    private static func bestArm(_ bucket: Bucket) -> Int {
        var best = 0
        for index in bucket.arms.indices where (bucket.arms[index].reward ?? -1) > (bucket.arms[best].reward ?? -1) {
            best = index
        }
        return best
    }
}
