/// Decides, per batch-size bucket, whether the passes of a rollout's long tail hand one core
/// from inference to the drafter trainer.
///
/// A few running sequences may not need every core: one thread fewer can cost little time
/// while the freed core trains the drafter. In each bucket (the bandit's: 1, 2, 3-4, ...)
/// the first decode passes alternate between all inference threads with the trainer paused
/// and one thread fewer with the trainer training, until each way has `samples` passes.
/// From then on the bucket hands a core over when the measured tokens per second with one
/// thread fewer are at least `1 - tolerance` times those with all threads. Not thread-safe.
///
/// NOTE: verification-cost tables stay those of all threads, and while a bucket measures,
/// the strategy bandit's rewards there mix both thread counts.
public struct CoreSharing: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Largest fraction of tail tokens per second given up for a training core.
        public var tolerance: Double
        /// Decode passes measured each way per bucket before deciding.
        public var samples: Int

        /// NOTE: the default tolerance is an estimate of what training is worth, not a
        /// measured trade-off: a drafter that trains in the tail pays only if it later
        /// drafts better by more than the time given up.
        public init(tolerance: Double = 0.1, samples: Int = 3) {
            precondition((0...1).contains(tolerance), "tolerance must be in 0...1, got \(tolerance)")
            precondition(samples >= 1, "samples must be at least 1, got \(samples)")
            self.tolerance = tolerance
            self.samples = samples
        }
    }

    /// Committed tokens and seconds of the measured passes of one bucket, each way.
    public struct Record: Sendable, Equatable {
        public var allTokens = 0, allSeconds = 0.0, allPasses = 0
        public var sharedTokens = 0, sharedSeconds = 0.0, sharedPasses = 0
        /// Whether the bucket hands a core over, once both ways are measured.
        public var handsOver: Bool?

        public var allRate: Double { allSeconds > 0 ? Double(allTokens) / allSeconds : 0 }
        public var sharedRate: Double { sharedSeconds > 0 ? Double(sharedTokens) / sharedSeconds : 0 }
    }

    public let configuration: Configuration
    /// Records by bucket (`StrategyBandit.bucket`).
    public private(set) var records: [Int: Record] = [:]

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Returns whether the next tail pass with `runningSequences` sequences runs one inference
    /// thread fewer and lets the trainer train.
    public func handsOver(runningSequences: Int) -> Bool {
        let record = records[StrategyBandit.bucket(runningSequences: runningSequences)] ?? Record()
        if let decided = record.handsOver { return decided }
        return record.sharedPasses < record.allPasses
    }

    /// Records a decode pass's committed tokens and seconds, and decides the bucket once both
    /// ways have `samples` passes.
    public mutating func record(handedOver: Bool, runningSequences: Int, tokens: Int, seconds: Double) {
        let bucket = StrategyBandit.bucket(runningSequences: runningSequences)
        var record = records[bucket] ?? Record()
        guard record.handsOver == nil else { return }
        if handedOver {
            record.sharedTokens += tokens
            record.sharedSeconds += seconds
            record.sharedPasses += 1
        } else {
            record.allTokens += tokens
            record.allSeconds += seconds
            record.allPasses += 1
        }
        if record.allPasses >= configuration.samples && record.sharedPasses >= configuration.samples {
            record.handsOver = record.sharedRate >= (1 - configuration.tolerance) * record.allRate
        }
        records[bucket] = record
    }
}
