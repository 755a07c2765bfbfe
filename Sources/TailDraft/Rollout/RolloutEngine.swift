#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
/// The state of a running rollout step, reported after every forward pass.
public struct RolloutProgress: Sendable {
    public var step: Int
    public var finishedResponses: Int
    public var totalResponses: Int
    /// Sequences admitted and not finished, and requests not yet admitted.
    public var runningSequences: Int
    public var waitingRequests: Int
    public var elapsedSeconds: Double
    public var completionTokens: Int
    /// Response tokens committed so far in this step, those of running sequences included.
    public var committedTokens: Int
    /// Completion tokens per second over the last passes (about one second of them).
    public var recentTokensPerSecond: Double
    /// Tokens per sequence step while speculating so far in this step; 0 before the tail.
    public var acceptanceLength: Double
    /// The last pass's strategy in the speculative tail, or nil outside it.
    public var strategy: String?
    /// Inference threads of the last pass, and whether the drafter trainer could train
    /// during it (on the cores inference left).
    public var inferenceThreads: Int
    public var trainerTraining: Bool
    /// Version of the learned drafter's newest weights, when the rollout has one.
    public var drafterVersion: Int?
}

/// Generates many responses at once with continuous batching, speculating in the long tail.
///
/// Each forward pass carries one row group per running sequence: a chunk of its prompt while
/// it joins, then its newest token, or a draft tree rooted at it while speculating. Sequences
/// leave the batch the pass they finish, their KV caches go back to a pool for the next
/// sequence, and waiting requests join while the running count and the KV budget allow.
/// In passes with at most `tailThreshold` running sequences, the long tail decodes
/// with speculation: a fixed drafter with an adaptive draft size, or the strategy the bandit
/// picks for the batch size. All trees of a pass are verified in that one forward pass.
///
/// Each response has its own sampler seeded with `RolloutSeed.response(...)`. With
/// speculation off its tokens therefore equal `Generator.generate`'s with that seed. With
/// speculation on they are the same tokens when greedy and the same distribution when
/// sampling. The
/// engine keeps its bandit, its suffix drafter's history and its cache pool across `run`
/// calls, as the steps of a reinforcement-learning loop do. Not thread-safe.
public final class RolloutEngine {
    public let model: Transformer
    public let tokenizer: BPETokenizer
    public let options: RolloutOptions
    /// The strategy bandit of `auto` mode, with its record so far.
    public private(set) var bandit: StrategyBandit
    /// Token limit per sequence (prompt plus response).
    public let contextLength: Int

    let lookupDrafter = LookupDrafter()
    /// Drafts from every finished response of every step, so later samples of a prompt can
    /// reuse text from earlier ones.
    let suffixDrafter = SuffixDrafter(archivesAutomatically: false)
    /// The trainer that receives every committed position of every sequence with its hidden
    /// state, each sequence as its own stream, so a drafter trains on the rollout's output.
    /// `DrafterTrainer.record` does not block, and positions its full ring cannot take are
    /// dropped and counted. The engine pauses training during passes (see `trainsInTail`).
    public var drafterTrainer: DrafterTrainer?
    /// Time the trainer gets to itself after each step, as a fraction of the step's time: it
    /// trains until it has stepped once over the positions received so far, or this runs out.
    /// Steps of a reinforcement-learning loop alternate with training in the same way.
    public var trainingWindow = 0.1
    /// The shortest such window, in seconds, so a short step still trains a few steps.
    public var minimumTrainingSeconds = 0.25
    /// Whether the trainer also trains during tail passes. That pays only when inference
    /// leaves cores idle: on a machine whose cores all run inference threads, the trainer's
    /// memory traffic slowed tail passes by about half. The default is true when the kernels
    /// use fewer threads than the machine has cores.
    public var trainsInTail: Bool
    /// Whether the trainer trains during every pass, large batches included. Set it when the
    /// trainer has cores of its own that no inference thread uses, as `train-drafter` arranges:
    /// then training costs inference only the memory bandwidth and cache the two share.
    public var trainsDuringPasses = false
    /// How the tail decides to hand a core from inference to the trainer, measured per batch
    /// size; nil turns it off. It applies only with a `drafterTrainer` and two or more
    /// inference threads, and only when the trainer would not train in the tail otherwise.
    public var coreSharing: CoreSharing? = CoreSharing()
    /// Sequences admitted so far, over all steps: the next sequence's stream id.
    private var sequencesAdmitted = 0
    /// The newest learned-drafter weights for `learned` mode, and their target.
    private var learnedWeights: DrafterWeights?
    private var learnedTarget: DrafterTarget?

    /// Whether sequences draft with learned drafters: in `learned` mode, or in `auto` mode with
    /// `learned` or `merged` arms.
    var usesLearnedDrafters: Bool {
        let speculation = options.speculation
        return speculation.mode == .learned
            || (speculation.mode == .auto && speculation.arms.contains { $0.drafter?.needsLearnedDrafter == true })
    }

    /// Sets the weights each sequence's learned drafter starts from in `learned` mode and for
    /// the `learned` and `merged` arms of `auto` mode. With a
    /// `drafterTrainer`, sequences switch to the trainer's newer snapshots between passes.
    public func useLearnedDrafter(weights: DrafterWeights, target: DrafterTarget) {
        learnedWeights = weights
        learnedTarget = target
    }
    private var pool: [KVCache] = []
    private var allocatedCaches = 0
    /// Single-pass verification cost by rows, and its scaled tables by running sequences.
    private let cost: VerificationCost
    private var batchCosts: [Int: VerificationCost] = [:]

    /// - Throws: `RolloutError.invalidOption` or `GenerationError.invalidOption` naming the
    ///   first invalid option.
    public init(model: Transformer, tokenizer: BPETokenizer, options: RolloutOptions) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        let trained = model.config.trainedContextLength
        contextLength = options.contextLength ?? min(trained, 4096)
        try Generator.validate(options: GenerationOptions(maxTokens: options.maxTokens, sampling: options.sampling))
        try Self.validate(options, contextLength: contextLength, trainedContextLength: trained)
        bandit = StrategyBandit(arms: options.speculation.arms, configuration: options.speculation.bandit)
        trainsInTail = model.threads < ProcessorCount.online
        let speculation = options.speculation
        cost = speculation.cost ?? .estimated(maxRows: max(speculation.draftBudget, speculation.largestBudget) + 1)
    }

    private static func validate(_ options: RolloutOptions, contextLength: Int, trainedContextLength: Int) throws {
        func check(_ valid: Bool, _ name: String, _ value: Any, _ expected: String) throws {
            guard valid else { throw RolloutError.invalidOption(name: name, value: "\(value)", expected: expected) }
        }
        try check((2...trainedContextLength).contains(contextLength), "context length", contextLength,
                  "2...\(trainedContextLength) tokens, the context this model was trained for")
        try check(options.maxRunningSequences >= 1, "max running sequences", options.maxRunningSequences, "1 or more")
        try check(options.prefillChunk >= 1, "prefill chunk", options.prefillChunk, "1 or more tokens")
        if let budget = options.kvBudgetTokens { try check(budget >= 1, "KV budget", budget, "1 or more tokens") }
        let speculation = options.speculation
        try check(speculation.tailThreshold >= 1, "tail threshold", speculation.tailThreshold, "1 or more sequences")
        try check((1...64).contains(speculation.draftBudget), "draft budget", speculation.draftBudget, "1...64 tokens")
        try check((1...64).contains(speculation.maxDepth), "draft depth", speculation.maxDepth, "1...64 tokens")
        try check(!speculation.arms.isEmpty, "strategy arms", "[]", "at least one strategy")
        try check(speculation.arms.allSatisfy { $0.budget <= 64 }, "strategy arms", speculation.arms, "budgets of 64 tokens or fewer")
    }

    /// Tokens each sequence's KV cache holds for `requests`: the longest prompt, the response
    /// and room for the largest draft tree, capped at the context length.
    public func sequenceCapacity(for requests: [RolloutRequest]) -> Int {
        let longestPrompt = requests.map(\.promptTokens.count).max() ?? 0
        return min(contextLength, longestPrompt + options.maxTokens + options.speculation.largestBudget + 1)
    }

    /// Generates every request and calls `onResponse` with each response as it finishes.
    ///
    /// `step` numbers the rollout step (from 0); it is part of each response's seed.
    /// - Throws: `RolloutError` for an empty request list, an empty or too long prompt, or a
    ///   KV budget smaller than one sequence, before anything runs. Errors thrown by
    ///   `onResponse` end the step and are rethrown.
    public func run(_ requests: [RolloutRequest], step: Int = 0,
                    onResponse: (RolloutResponse) throws -> Void,
                    onProgress: ((RolloutProgress) throws -> Void)? = nil) throws -> RolloutStepStatistics {
        if usesLearnedDrafters && learnedWeights == nil {
            let value = options.speculation.mode == .learned ? "learned" : "auto with learned or merged arms"
            throw RolloutError.invalidOption(name: "speculation mode", value: value,
                                             expected: "learned-drafter weights: call useLearnedDrafter(weights:target:) first")
        }
        let capacity = sequenceCapacity(for: requests)
        let runningLimit = try admissionLimit(requests, capacity: capacity)
        if pool.first.map({ $0.capacity != capacity }) ?? false {
            allocatedCaches -= pool.count
            pool.removeAll()
        }

        var statistics = RolloutStepStatistics(step: step, tailThreshold: options.speculation.tailThreshold)
        statistics.promptTokens = requests.reduce(0) { $0 + $1.promptTokens.count }
        var running: [RolloutSequence] = []
        // After an error the running sequences' caches still go back to the pool.
        defer { pool.append(contentsOf: running.map(\.cache)) }
        var nextRequest = 0
        var recent = RecentRate()
        var committed = 0
        let start = Generator.now()

        while nextRequest < requests.count || !running.isEmpty {
            while nextRequest < requests.count && running.count < runningLimit {
                running.append(admit(requests[nextRequest], step: step, capacity: capacity, joinedSeconds: Generator.now() - start))
                nextRequest += 1
            }
            let passStart = Generator.now()
            let waiting = requests.count - nextRequest
            var entry = try runPass(running, waiting: waiting)
            let passEnd = Generator.now()
            entry.startSeconds = passStart - start
            entry.seconds = passEnd - passStart
            // A pass that also prefilled mixes prompt work into its time, so only pure decode passes count.
            if let arm = entry.armIndex, entry.timeline.prefillRows == 0 {
                bandit.record(arm: arm, runningSequences: running.count, tokens: entry.timeline.committedTokens, seconds: entry.timeline.seconds)
            }
            if entry.measuresCoreSharing && entry.timeline.prefillRows == 0 {
                coreSharing?.record(handedOver: entry.timeline.sharedCore, runningSequences: running.count,
                                    tokens: entry.timeline.committedTokens, seconds: entry.timeline.seconds)
            }

            for sequence in running where sequence.finished {
                let response = finish(sequence, step: step, finishedSeconds: passEnd - start)
                statistics.responses += 1
                statistics.completionTokens += response.tokenIds.count
                statistics.responseLengths.append(response.tokenIds.count)
                statistics.finishReasons[response.finishReason, default: 0] += 1
                try onResponse(response)
            }
            pool.append(contentsOf: running.filter(\.finished).map(\.cache))
            running.removeAll { $0.finished }

            record(entry, into: &statistics)
            recent.add(tokens: entry.timeline.committedTokens, seconds: entry.timeline.seconds)
            committed += entry.timeline.committedTokens
            try onProgress?(RolloutProgress(
                step: step, finishedResponses: statistics.responses, totalResponses: requests.count,
                runningSequences: running.count, waitingRequests: requests.count - nextRequest, elapsedSeconds: passEnd - start,
                completionTokens: statistics.completionTokens, committedTokens: committed, recentTokensPerSecond: recent.rate,
                acceptanceLength: statistics.speculation.acceptanceLength, strategy: entry.timeline.strategy,
                inferenceThreads: entry.timeline.inferenceThreads, trainerTraining: entry.trainerTraining,
                drafterVersion: learnedWeights?.version))
        }
        statistics.seconds = Generator.now() - start
        statistics.trainingSeconds = trainAfterStep(stepSeconds: statistics.seconds)
        statistics.kvCacheBytes = allocatedCaches * (pool.first?.byteCount ?? 0)
        statistics.peakResidentBytes = ResourceUsage.peakResidentBytes
        return statistics
    }

    /// Checks the requests and returns how many sequences may run at once.
    private func admissionLimit(_ requests: [RolloutRequest], capacity: Int) throws -> Int {
        guard !requests.isEmpty else { throw RolloutError.noRequests }
        for request in requests {
            let id = request.promptId.serialized()
            guard !request.promptTokens.isEmpty else { throw RolloutError.emptyPrompt(promptId: id) }
            guard request.promptTokens.count < contextLength else {
                throw RolloutError.promptTooLong(promptId: id, promptTokens: request.promptTokens.count, contextLength: contextLength)
            }
        }
        let budget = options.kvBudgetTokens ?? options.maxRunningSequences * capacity
        guard budget >= capacity else { throw RolloutError.kvBudgetTooSmall(budgetTokens: budget, sequenceTokens: capacity) }
        return min(options.maxRunningSequences, budget / capacity)
    }

    private func admit(_ request: RolloutRequest, step: Int, capacity: Int, joinedSeconds: Double) -> RolloutSequence {
        let cache: KVCache
        if let reused = pool.popLast() {
            reused.truncate(to: 0)
            cache = reused
        } else {
            cache = KVCache(config: model.config, capacity: capacity)
            allocatedCaches += 1
        }
        let seed = RolloutSeed.response(seed: options.seed, step: step, promptIndex: request.promptIndex, sampleIndex: request.sampleIndex)
        let sequence = RolloutSequence(request: request, seed: seed, cache: cache, options: options, tokenizer: tokenizer,
                                       joinedSeconds: joinedSeconds)
        sequence.training = drafterTrainer.map { ($0, sequencesAdmitted) }
        if usesLearnedDrafters, let weights = learnedWeights, let target = learnedTarget {
            let learned = LearnedDrafter(weights: weights, target: target, stream: sequencesAdmitted)
            sequence.learned = learned
            if options.speculation.arms.contains(where: { $0.drafter == .merged }) {
                sequence.merged = AutoDrafter(drafters: [suffixDrafter], merging: learned)
            }
        }
        sequencesAdmitted += 1
        return sequence
    }

    /// Returns the response of a finished sequence.
    private func finish(_ sequence: RolloutSequence, step: Int, finishedSeconds: Double) -> RolloutResponse {
        if let training = sequence.training { training.trainer.endStream(training.stream) }
        let tokens = sequence.tokens
        if options.speculation.mode == .suffix || options.speculation.mode == .auto {
            suffixDrafter.addToHistory(sequence.request.promptTokens + tokens)
        }
        return RolloutResponse(request: sequence.request, step: step, seed: sequence.seed, tokenIds: tokens,
                               text: tokenizer.decode(tokens), finishReason: sequence.finishReason,
                               joinedSeconds: sequence.joinedSeconds, finishedSeconds: finishedSeconds,
                               drafted: sequence.drafted, accepted: sequence.accepted)
    }

    /// A timeline entry and the bandit arm of its pass, if the bandit chose one.
    struct PassRecord {
        var timeline: RolloutTimelineEntry
        var armIndex: Int?
        /// Whether the pass is one `coreSharing` measures, and whether the trainer could train.
        var measuresCoreSharing = false
        var trainerTraining = false
        var startSeconds: Double {
            get { timeline.startSeconds }
            set { timeline.startSeconds = newValue }
        }
        var seconds: Double {
            get { timeline.seconds }
            set { timeline.seconds = newValue }
        }
    }

    /// Plans, runs and consumes one forward pass over `running`.
    private func runPass(_ running: [RolloutSequence], waiting: Int) throws -> PassRecord {
        let inTail = running.count <= options.speculation.tailThreshold
        // A tail pass may hand a core to the trainer by running one inference thread fewer.
        let allThreads = model.threads
        let measuresSharing = inTail && drafterTrainer != nil && !trainsInTail && !trainsDuringPasses && allThreads >= 2
            && coreSharing != nil
        let sharedCore = measuresSharing && coreSharing!.handsOver(runningSequences: running.count)
        if sharedCore { model.threads = allThreads - 1 }
        defer { model.threads = allThreads }
        // A large batch needs every core, and the trainer's memory traffic and cache use would
        // slow it, so the trainer trains only in the tail and meanwhile only collects positions.
        let training = drafterTrainer != nil && (trainsDuringPasses || (inTail && (trainsInTail || sharedCore)))
        drafterTrainer?.isPaused = !training
        if let newer = drafterTrainer?.mailbox.take() {
            learnedWeights = newer
            for sequence in running { sequence.learned?.adopt(newer) }
        }
        let (plan, strategy, arm) = inTail ? tailPlan(runningSequences: running.count) : (DecodePlan.plain(cost: cost), nil, nil)

        // Decode rows for every prefilled sequence, prompt chunks while the prefill budget lasts.
        let planStart = Generator.now()
        var groups: [RowGroup] = [], members: [RolloutSequence] = []
        var prefillLeft = options.prefillChunk
        var prefillRows = 0
        for sequence in running {
            if sequence.isPrefilling {
                guard prefillLeft > 0 else { continue }
                let group = sequence.planPrefill(limit: prefillLeft)
                prefillLeft -= group.count
                prefillRows += group.count
                groups.append(group)
            } else {
                groups.append(sequence.planDecode(plan))
            }
            members.append(sequence)
        }

        let step = StepBatch(groups: groups)
        let planSeconds = Generator.now() - planStart
        let result = try model.forward(step.batch, caches: members.map(\.cache))
        var entry = RolloutTimelineEntry(startSeconds: 0, seconds: 0, runningSequences: running.count, waitingRequests: waiting,
                                         rows: step.batch.count, prefillRows: prefillRows, committedTokens: 0, strategy: strategy,
                                         drafted: 0, accepted: 0, decodingSequences: 0, draftingSequences: 0,
                                         planSeconds: planSeconds, inferenceThreads: model.threads, sharedCore: sharedCore)
        for (index, sequence) in members.enumerated() {
            let outcome = sequence.consume(result, firstRow: step.firstRows[index])
            entry.committedTokens += outcome.committed
            entry.drafted += outcome.drafted
            entry.accepted += outcome.accepted
            if outcome.decoded { entry.decodingSequences += 1 }
            if outcome.drafted > 0 { entry.draftingSequences += 1 }
        }
        return PassRecord(timeline: entry, armIndex: arm, measuresCoreSharing: measuresSharing, trainerTraining: training)
    }

    /// Lets the trainer run alone for up to `trainingWindow` of the step's time (at least
    /// `minimumTrainingSeconds`), until it has trained as many rows as it received positions.
    /// Returns the seconds waited.
    private func trainAfterStep(stepSeconds: Double) -> Double {
        guard let trainer = drafterTrainer, trainingWindow > 0 else { return 0 }
        let start = Generator.now()
        trainer.isPaused = false
        let window = max(trainingWindow * stepSeconds, minimumTrainingSeconds)
        while Generator.now() - start < window && trainer.isRunning {
            let counts = trainer.statistics
            if counts.rowsTrained >= counts.positionsReceived { break }
            usleep(5_000)
        }
        trainer.isPaused = true
        return Generator.now() - start
    }

    /// Returns the decode plan of a pass in the tail, its strategy name and the bandit arm if any.
    private func tailPlan(runningSequences: Int) -> (DecodePlan, String?, Int?) {
        let speculation = options.speculation
        func drafter(_ kind: SpeculationStrategy.DrafterKind) -> (any Drafter)? {
            switch kind {
            case .lookup: return lookupDrafter
            case .suffix: return suffixDrafter
            case .learned, .merged: return nil
            }
        }
        switch speculation.mode {
        case .none:
            return (.plain(cost: cost), nil, nil)
        case .lookup, .suffix:
            let kind: SpeculationStrategy.DrafterKind = speculation.mode == .lookup ? .lookup : .suffix
            let plan = DecodePlan(drafter: drafter(kind), budget: speculation.draftBudget, adaptive: true,
                                  maxDepth: speculation.maxDepth, cost: batchCost(sequences: runningSequences))
            return (plan, kind.rawValue, nil)
        case .learned:
            var plan = DecodePlan(drafter: nil, budget: speculation.draftBudget, adaptive: true,
                                  maxDepth: speculation.maxDepth, cost: batchCost(sequences: runningSequences))
            plan.ownDrafter = .learned
            return (plan, "learned", nil)
        case .auto:
            let arm = bandit.choose(runningSequences: runningSequences)
            let strategy = bandit.arms[arm]
            var plan = DecodePlan(drafter: strategy.drafter.flatMap(drafter), budget: strategy.budget, adaptive: false,
                                  maxDepth: speculation.maxDepth, cost: cost)
            if strategy.drafter == .learned { plan.ownDrafter = .learned }
            if strategy.drafter == .merged { plan.ownDrafter = .merged }
            return (plan, strategy.description, arm)
        }
    }

    /// Returns the cost of n rows per sequence for `sequences` sequences relative to one row
    /// each: cost(sequences x n) / cost(sequences) from the single-pass table. A batch that
    /// is already compute-bound pays nearly full price for every drafted row, so the gate
    /// drafts less there than for a single sequence.
    func batchCost(sequences: Int) -> VerificationCost {
        if let cached = batchCosts[sequences] { return cached }
        let rows = options.speculation.draftBudget + 1
        let base = cost.cost(rows: sequences)
        let scaled = VerificationCost(relative: (1...rows).map { cost.cost(rows: sequences * $0) / base })
        batchCosts[sequences] = scaled
        return scaled
    }

    private func record(_ pass: PassRecord, into statistics: inout RolloutStepStatistics) {
        let entry = pass.timeline
        let running = entry.runningSequences
        statistics.forwardPasses += 1
        statistics.peakRunningSequences = max(statistics.peakRunningSequences, running)
        if running <= statistics.tailThreshold {
            statistics.tailSeconds += entry.seconds
            statistics.tailTokens += entry.committedTokens
        }
        if entry.sharedCore { statistics.sharedCoreSeconds += entry.seconds }
        if entry.speculating {
            statistics.speculation.sequenceSteps += entry.decodingSequences
            statistics.speculation.committed += entry.committedTokens
            statistics.speculation.drafted += entry.drafted
            statistics.speculation.accepted += entry.accepted
            statistics.speculation.draftSeconds += entry.planSeconds
        }
        statistics.timeline.append(entry)
    }
}

/// Tokens per second over roughly the last second of passes.
struct RecentRate {
    private var window: [(tokens: Int, seconds: Double)] = []

    mutating func add(tokens: Int, seconds: Double) {
        window.append((tokens, seconds))
        while window.count > 1 && window.dropFirst().reduce(0, { $0 + $1.seconds }) >= 1 { window.removeFirst() }
    }

    var rate: Double {
        let seconds = window.reduce(0) { $0 + $1.seconds }
        return seconds > 0 ? Double(window.reduce(0) { $0 + $1.tokens }) / seconds : 0
    }
}
