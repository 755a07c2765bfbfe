#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One forward pass of a rollout step and what it committed.
public struct RolloutTimelineEntry: Sendable, Equatable {
    /// Start of the pass in seconds from the start of the step, and its duration, including
    /// drafting, sampling and verification.
    public var startSeconds: Double
    public var seconds: Double
    /// Sequences with rows in this pass (decoding or prefilling).
    public var runningSequences: Int
    /// Requests not yet admitted when the pass started.
    public var waitingRequests: Int
    /// Rows of the forward batch, and how many of them were prompt tokens.
    public var rows: Int
    public var prefillRows: Int
    /// Response tokens the pass committed, over all sequences.
    public var committedTokens: Int
    /// The strategy of a pass in the speculative tail ("suffix/3", "off" when the bandit chose
    /// no drafts), or nil outside the tail.
    public var strategy: String?
    /// Drafted tokens verified in this pass and how many were accepted.
    public var drafted: Int
    public var accepted: Int
    /// Decoding sequences whose tokens this pass produced, one step each.
    public var decodingSequences: Int
    /// Of those, sequences whose draft tree had drafted tokens.
    public var draftingSequences: Int
    /// Seconds spent planning the rows, drafting included, before the forward pass.
    public var planSeconds = 0.0
    /// Inference threads of the pass, and whether it ran one fewer than the model's so the
    /// drafter trainer could train on the freed core (`CoreSharing`).
    public var inferenceThreads = 0
    public var sharedCore = false

    /// Whether the pass ran in the speculative tail with a drafter.
    public var speculating: Bool { strategy != nil && strategy != "off" }
}

/// Drafting and verification over a rollout step's speculative passes.
public struct RolloutSpeculationFigures: Sendable, Equatable {
    /// Sequence steps (one sequence in one pass) taken while speculation was on, drafts or not.
    public var sequenceSteps = 0
    /// Tokens those steps committed.
    public var committed = 0
    public var drafted = 0
    public var accepted = 0
    /// Seconds spent planning speculative passes, which is mostly drafting.
    public var draftSeconds = 0.0

    public init() {}

    /// Mean tokens committed per sequence step while speculating (tau); 0 without such steps.
    public var acceptanceLength: Double { sequenceSteps > 0 ? Double(committed) / Double(sequenceSteps) : 0 }
    public var acceptanceRate: Double { drafted > 0 ? Double(accepted) / Double(drafted) : 0 }

    /// Adds the counts of `other`.
    public mutating func add(_ other: RolloutSpeculationFigures) {
        sequenceSteps += other.sequenceSteps
        committed += other.committed
        drafted += other.drafted
        accepted += other.accepted
        draftSeconds += other.draftSeconds
    }
}

/// Counts and timings of one rollout step (one pass over all requests).
public struct RolloutStepStatistics: Sendable {
    /// The rollout step, from 0. report.json and the console count steps from 1.
    public var step: Int
    public var responses = 0
    public var promptTokens = 0
    public var completionTokens = 0
    /// Wall-clock seconds from the first forward pass's start to the last one's end.
    public var seconds = 0.0
    public var forwardPasses = 0
    /// The tail: passes with at most `tailThreshold` running sequences.
    public var tailThreshold: Int
    public var tailSeconds = 0.0
    public var tailTokens = 0
    /// Seconds after the last pass given to the drafter trainer alone, not part of `seconds`.
    public var trainingSeconds = 0.0
    /// Seconds of tail passes that ran one inference thread fewer, so the trainer trained.
    public var sharedCoreSeconds = 0.0
    public var speculation = RolloutSpeculationFigures()
    /// Completion tokens of each response, in finishing order.
    public var responseLengths: [Int] = []
    public var finishReasons: [FinishReason: Int] = [:]
    public var timeline: [RolloutTimelineEntry] = []
    /// Largest number of sequences running at once.
    public var peakRunningSequences = 0
    /// KV-cache bytes allocated at the end of the step (running and pooled caches).
    public var kvCacheBytes = 0
    /// The process's peak resident memory so far, in bytes.
    public var peakResidentBytes = 0

    public init(step: Int, tailThreshold: Int) {
        self.step = step
        self.tailThreshold = tailThreshold
    }

    /// Completion tokens per second of wall-clock time.
    public var tokensPerSecond: Double { seconds > 0 ? Double(completionTokens) / seconds : 0 }
    /// The tail's share of the step's time.
    public var tailShare: Double { seconds > 0 ? tailSeconds / seconds : 0 }
}

/// Memory figures of this process.
public enum ResourceUsage {
    /// The process's peak resident set size in bytes.
    public static var peakResidentBytes: Int {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        // Linux reports kilobytes.
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }
}
