#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Settings of online drafter training.
public struct DrafterTrainerOptions: Sendable {
    public var optimizer = DrafterOptimizerOptions()
    /// Positions per training sample (one fewer training rows).
    public var windowLength = 64
    /// Optimizer steps between weight snapshots posted to the drafter. Each adoption costs
    /// the drafter a recomputation of its newest cached positions (`refreshPositions`).
    public var publishEverySteps = 4
    /// Positions the ring between the decode loop and the trainer holds; more are dropped.
    public var ringCapacity = 4096
    /// Bound on the replay buffer's memory, in megabytes (10^6 bytes). Each block of 16 kept
    /// positions costs 16 * (4 * H + 92) + 512 bytes: hidden states, tokens, prefix hashes
    /// and an upper estimate of bookkeeping (`DrafterReplay.bytesPerBlock`). The default
    /// keeps 15,648 positions of SmolLM2 (H = 576). The ring (`ringCapacity`) is not part of it.
    public var replayMegabytes = 38.0
    /// Largest number of times, on average, each received position is trained on, so a small
    /// replay buffer is not looped over until it is memorised. Rows skipped as duplicates
    /// (`DrafterTrainerStatistics.duplicateRows`) are not counted as received.
    public var maxEpochs = 4.0
    /// Steps between rebuilds of the draft vocabulary from the token counts so far.
    public var vocabularyRefreshSteps = 50
    /// CPU cores to pin the trainer thread to; nil leaves it unpinned.
    public var cores: [Int]? = nil
    /// Lower the trainer thread to SCHED_IDLE (or nice 19), so it only takes idle cycles.
    public var idlePriority = true
    /// Seed of the replay sampling.
    public var seed: UInt64 = 1
    /// Sleep between polls when there is nothing to train on, in microseconds.
    public var idleSleepMicroseconds = 2_000
    /// Path of the checkpoints the trainer thread saves every `checkpointEverySteps` steps.
    /// With nil it saves none, and the owner may still call `saveCheckpoint` after `stop`.
    public var checkpointPath: String? = nil
    public var checkpointEverySteps = 1_000

    public init() {}

    /// Returns how many positions the replay buffer keeps at most for `hiddenSize`:
    /// `replayMegabytes` in whole blocks of 16 positions, at least two blocks.
    public func replayCapacityPositions(hiddenSize: Int) -> Int {
        DrafterReplay.capacityBlocks(megabytes: replayMegabytes, hiddenSize: hiddenSize) * DrafterReplay.blockPositions
    }
}

/// Counts of the trainer's work; a value type copied out under a lock.
public struct DrafterTrainerStatistics: Sendable, Equatable {
    public var steps = 0
    public var positionsReceived = 0
    public var positionsDropped = 0
    /// Training rows (positions with a next position) stepped on, fresh and replayed.
    public var rowsTrained = 0
    /// Fresh rows evaluated before training on them, and how many of those had the drafter's
    /// top token equal to the target's top token within the draft vocabulary.
    public var freshRows = 0
    public var freshMatches = 0
    /// Fresh rows not trained because a window with the same tokens from the same stream
    /// start was kept before, such as a prompt shared by several responses.
    public var duplicateRows = 0
    /// Loss of the latest step, before it.
    public var lastLoss: DrafterLoss? = nil
    public var snapshotsPosted = 0
    public var priority: BackgroundThread.Priority? = nil
    /// Wall-clock time inside training steps, including time the thread was preempted.
    public var trainingSeconds = 0.0
    public var checkpointsSaved = 0
    /// The last error of a periodic checkpoint save, which the trainer thread cannot throw.
    public var lastCheckpointError: String? = nil

    /// Fresh rows whose top draft token matched the target's: a test-then-train estimate of
    /// first-draft accuracy.
    public var freshAccuracy: Double { freshRows > 0 ? Double(freshMatches) / Double(freshRows) : 0 }
    public var rowsPerSecond: Double { trainingSeconds > 0 ? Double(rowsTrained) / trainingSeconds : 0 }
}

/// Trains the drafter on a background thread from the positions the decode loop commits.
///
/// The decode loop calls `record` (through `LearnedDrafter.observeHidden`), which pushes each
/// position into a lock-free ring and never blocks; a full ring drops and counts. The trainer
/// thread drains the ring into a bounded replay buffer (`DrafterReplay`). It trains first on
/// fresh windows, evaluating each before its step and recording its misses. Then it replays
/// older windows up to `maxEpochs`, favouring those with misses and long streams. It posts
/// an immutable weight snapshot to `mailbox` every `publishEverySteps` steps.
///
/// Threading: `record` from one producer thread; `start`/`stop` from the owner; `runOnce`
/// only while the thread is not running (tests). The trainer's kernels run single-threaded.
public final class DrafterTrainer: @unchecked Sendable {
    struct FeatureHeader {
        var token: Int32
        var position: Int32
        var stream: Int32
    }

    public let options: DrafterTrainerOptions
    public let target: DrafterTarget
    /// The slot in which new weights wait for the drafter.
    public let mailbox = DrafterWeightsMailbox()
    let ring: SPSCRing<FeatureHeader>

    private let learner: DrafterLearner
    /// Positions kept for training. Use it only from the trainer thread, or while the thread
    /// is stopped.
    let replay: DrafterReplay
    /// The payload of an end-of-stream record, allocated once so pushing one never allocates.
    private let noHidden: [Float]
    private var tokenCounts: [Int]
    private var rng: SplitMixGenerator
    private var stepsSincePost = 0
    private let stopRequested = Atomic<Bool>(false)
    private let pauseRequested = Atomic<Bool>(false)

    /// While true, the trainer only moves received positions from the ring into its replay
    /// buffer and does not train, so it takes almost no CPU time, memory bandwidth or cache.
    /// A rollout sets it while its batch is large and needs every core, and clears it in the
    /// long tail, where cores idle. Takes effect at the next training step.
    public var isPaused: Bool {
        get { pauseRequested.load(ordering: .relaxed) }
        set { pauseRequested.store(newValue, ordering: .relaxed) }
    }
    private let counters = Mutex(DrafterTrainerStatistics())
    private var thread: BackgroundThread?

    public convenience init(initial: DrafterWeights, target: DrafterTarget, options: DrafterTrainerOptions = .init()) {
        self.init(checkpoint: DrafterCheckpoint(weights: initial), target: target, options: options)
    }

    /// Continues training from `checkpoint`: its weights, optimizer moments and token counts.
    public init(checkpoint: DrafterCheckpoint, target: DrafterTarget, options: DrafterTrainerOptions = .init()) {
        let initial = checkpoint.weights
        self.options = options
        self.target = target
        learner = DrafterLearner(initial: initial, target: target, options: options.optimizer, moments: checkpoint.moments)
        ring = SPSCRing(capacity: options.ringCapacity, payloadCount: initial.config.hiddenSize)
        noHidden = [Float](repeating: 0, count: initial.config.hiddenSize)
        replay = DrafterReplay(hiddenSize: initial.config.hiddenSize, megabytes: options.replayMegabytes)
        if let counts = checkpoint.tokenCounts, counts.count == target.config.vocabularySize {
            tokenCounts = counts
        } else {
            tokenCounts = [Int](repeating: 0, count: target.config.vocabularySize)
        }
        rng = SplitMixGenerator(seed: options.seed)
    }

    /// Returns the trainer's current state as a checkpoint. Call it from the trainer thread, or from
    /// the owner while the thread is stopped.
    public func checkpoint() -> DrafterCheckpoint {
        DrafterCheckpoint(weights: learner.snapshot(forInference: false),
                          moments: (FloatBuffer(copying: learner.firstMoment), FloatBuffer(copying: learner.secondMoment)),
                          tokenCounts: tokenCounts)
    }

    /// Writes `checkpoint()` to `path` atomically, under the same threading rule.
    /// - Throws: `DrafterError.checkpointWriteFailed`.
    public func saveCheckpoint(to path: String) throws {
        try checkpoint().write(to: path, target: target)
        counters.withLock { $0.checkpointsSaved += 1 }
    }

    deinit { stop() }

    public var statistics: DrafterTrainerStatistics {
        var copy = counters.withLock { $0 }
        copy.positionsDropped = ring.dropped
        return copy
    }

    /// Pushes committed positions (tokens with their target hidden states, H floats each) of
    /// `stream`, the id that separates sequences decoded side by side (0 for a single sequence).
    /// Never blocks or allocates; positions that do not fit are dropped and counted.
    public func record(tokens: ArraySlice<Int32>, hidden: ArraySlice<Float>, startPosition: Int, stream: Int = 0) {
        let h = ring.payloadCount
        hidden.withUnsafeBufferPointer { floats in
            for (offset, token) in tokens.enumerated() {
                let header = FeatureHeader(token: token, position: Int32(startPosition + offset), stream: Int32(truncatingIfNeeded: stream))
                ring.push(header, payload: floats.baseAddress! + offset * h)
            }
        }
    }

    /// Marks `stream` as finished: it sends no more positions, so its last ones can be trained
    /// even when fewer than a window. Pushes one record into the ring, like `record`: it never
    /// blocks or allocates, and a full ring drops it.
    public func endStream(_ stream: Int) {
        _ = noHidden.withUnsafeBufferPointer { zeros in
            ring.push(FeatureHeader(token: -1, position: -1, stream: Int32(truncatingIfNeeded: stream)), payload: zeros.baseAddress!)
        }
    }

    /// Starts the trainer thread (pinned to `options.cores`, at idle priority if set). The
    /// thread keeps the trainer alive until `stop`, so every `start` needs a `stop`.
    public func start() {
        guard thread == nil else { return }
        stopRequested.store(false, ordering: .releasing)
        thread = BackgroundThread { [self] in
            if let cores = options.cores { _ = BackgroundThread.pinCurrent(to: cores) }
            if options.idlePriority {
                let priority = BackgroundThread.lowerCurrentPriority()
                counters.withLock { $0.priority = priority }
            }
            while !stopRequested.load(ordering: .acquiring) {
                if !runOnce() { usleep(UInt32(options.idleSleepMicroseconds)) }
            }
            postSnapshotIfNew()
        }
    }

    /// Whether the trainer thread runs (between `start` and `stop`). Call from the owner.
    public var isRunning: Bool { thread != nil }

    /// Stops the trainer thread after its current step and posts its last weights.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
    }

    /// Drains the ring, then takes at most one training step. Returns whether it trained.
    @discardableResult
    public func runOnce() -> Bool {
        drain()
        if isPaused { return false }
        let length = max(2, options.windowLength)
        let freshWindow = replay.takeFresh(length: length)
        let duplicateRows = replay.duplicateRows
        counters.withLock { $0.duplicateRows = duplicateRows }
        var sample = freshWindow?.sample
        if sample == nil {
            let received = counters.withLock { $0.positionsReceived } - duplicateRows
            let trained = counters.withLock { $0.rowsTrained }
            guard Double(trained) < options.maxEpochs * Double(received) else { return false }
            sample = replay.replayWindow(using: &rng)
        }
        guard let sample else { return false }

        let start = Generator.now()
        let loss = learner.train(on: sample)
        let seconds = Generator.now() - start
        if let freshWindow { replay.recordMisses(loss.rows - loss.matches, of: freshWindow) }
        counters.withLock {
            $0.steps += 1
            $0.rowsTrained += loss.rows
            $0.lastLoss = loss
            $0.trainingSeconds += seconds
            if freshWindow != nil {
                $0.freshRows += loss.rows
                $0.freshMatches += loss.matches
            }
        }
        if options.vocabularyRefreshSteps > 0 && learner.step % options.vocabularyRefreshSteps == 0 {
            learner.setVocabulary(.mostFrequent(counts: tokenCounts, size: learner.config.draftVocabularySize))
        }
        stepsSincePost += 1
        if stepsSincePost >= max(1, options.publishEverySteps) { postSnapshotIfNew() }
        if let path = options.checkpointPath, options.checkpointEverySteps > 0, learner.step % options.checkpointEverySteps == 0 {
            do {
                try saveCheckpoint(to: path)
            } catch {
                counters.withLock { $0.lastCheckpointError = "\(error)" }
            }
        }
        return true
    }

    private func drain() {
        var received = 0
        // Records with a negative token end a stream (`endStream`) and are not positions.
        while ring.pop({ header, hidden in
            guard header.token >= 0 else {
                replay.close(stream: Int(header.stream))
                return
            }
            replay.append(token: header.token, position: Int(header.position), hidden: hidden, stream: Int(header.stream))
            if Int(header.token) < tokenCounts.count { tokenCounts[Int(header.token)] += 1 }
            received += 1
        }) {}
        if received > 0 { counters.withLock { $0.positionsReceived += received } }
    }

    private func postSnapshotIfNew() {
        guard stepsSincePost > 0 else { return }
        mailbox.post(learner.snapshot())
        stepsSincePost = 0
        counters.withLock { $0.snapshotsPosted += 1 }
    }
}

/// SplitMix64, for the trainer's replay sampling.
struct SplitMixGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
