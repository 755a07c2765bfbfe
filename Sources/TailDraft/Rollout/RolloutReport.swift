extension RolloutResponse {
    /// Returns the response as one JSON object: `prompt_id`, `sample_index`, `step`, `seed`,
    /// `token_ids`, `text`, `finish_reason` ("stop" or "length") and `completion_tokens`.
    /// `step` counts from 1, as the console does, while `RolloutResponse.step` counts from 0.
    public func json() -> JSONValue {
        .object([
            ("prompt_id", request.promptId),
            ("sample_index", .int(request.sampleIndex)),
            ("step", .int(step + 1)),
            ("seed", .string(String(seed))),
            ("token_ids", .array(tokenIds.map { .int(Int($0)) })),
            ("text", .string(text)),
            ("finish_reason", .string(finishReason.rawValue)),
            ("completion_tokens", .int(tokenIds.count)),
        ])
    }
}

/// Everything a rollout run reports: settings, per-step statistics, the bandit's record and
/// peak memory, written as report.json plus four SVG charts.
public struct RolloutReport {
    public var modelPath: String
    public var kernelPath: String
    public var threads: Int
    public var promptCount: Int
    public var samplesPerPrompt: Int
    public var options: RolloutOptions
    public var steps: [RolloutStepStatistics]
    /// The bandit of `auto` mode; nil in the other modes.
    public var bandit: StrategyBandit?
    public var peakResidentBytes: Int

    public init(modelPath: String, kernelPath: String, threads: Int, promptCount: Int, samplesPerPrompt: Int,
                options: RolloutOptions, steps: [RolloutStepStatistics], bandit: StrategyBandit?, peakResidentBytes: Int) {
        self.modelPath = modelPath
        self.kernelPath = kernelPath
        self.threads = threads
        self.promptCount = promptCount
        self.samplesPerPrompt = samplesPerPrompt
        self.options = options
        self.steps = steps
        self.bandit = bandit
        self.peakResidentBytes = peakResidentBytes
    }

    /// Speculation figures over all steps.
    public var speculation: RolloutSpeculationFigures {
        var total = RolloutSpeculationFigures()
        for step in steps { total.add(step.speculation) }
        return total
    }

    /// Writes report.json and the charts into `folder`, creating it when missing, and
    /// returns the paths written.
    /// - Throws: `FileError` when the folder or a file cannot be written.
    @discardableResult
    public func write(to folder: String) throws -> [String] {
        try TextFile.createFolder(folder)
        var paths: [String] = []
        let reportPath = folder + "/report.json"
        try TextFile.write(json().serialized() + "\n", to: reportPath)
        paths.append(reportPath)
        for chart in RolloutCharts.all(steps) {
            let path = folder + "/" + chart.name
            try TextFile.write(chart.svg, to: path)
            paths.append(path)
        }
        return paths
    }

    /// Returns the report as one JSON object.
    public func json() -> JSONValue {
        let sampling = options.sampling
        let figures = speculation
        return .object([
            ("model", .string(modelPath)),
            ("kernels", .string(kernelPath)),
            ("threads", .int(threads)),
            ("prompts", .int(promptCount)),
            ("samples_per_prompt", .int(samplesPerPrompt)),
            ("options", .object([
                ("max_tokens", .int(options.maxTokens)),
                ("temperature", .number(Self.shortest(sampling.temperature))),
                ("top_k", .int(sampling.topK)),
                ("top_p", .number(Self.shortest(sampling.topP))),
                ("min_p", .number(Self.shortest(sampling.minP))),
                ("seed", .string(String(options.seed))),
                ("max_running_sequences", .int(options.maxRunningSequences)),
                ("kv_budget_tokens", options.kvBudgetTokens.map { .int($0) } ?? .null),
                ("speculate", .string(options.speculation.mode.rawValue)),
                ("tail_threshold", .int(options.speculation.tailThreshold)),
                ("draft_budget", .int(options.speculation.draftBudget)),
            ])),
            ("responses", .int(steps.reduce(0) { $0 + $1.responses })),
            ("completion_tokens", .int(steps.reduce(0) { $0 + $1.completionTokens })),
            ("seconds", .number(steps.reduce(0) { $0 + $1.seconds })),
            ("acceptance_length", .number(figures.acceptanceLength)),
            ("acceptance_rate", .number(figures.acceptanceRate)),
            ("peak_resident_bytes", .int(peakResidentBytes)),
            ("steps", .array(steps.map(Self.json))),
            ("bandit", bandit.map(Self.json) ?? .null),
            ("charts", .array(RolloutCharts.names.map { .string($0) })),
        ])
    }

    /// Returns one step's statistics as a JSON object, with `step` counted from 1 as in the
    /// response lines and on the console.
    static func json(_ step: RolloutStepStatistics) -> JSONValue {
        let figures = step.speculation
        return .object([
            ("step", .int(step.step + 1)),
            ("responses", .int(step.responses)),
            ("prompt_tokens", .int(step.promptTokens)),
            ("completion_tokens", .int(step.completionTokens)),
            ("seconds", .number(step.seconds)),
            ("tokens_per_second", .number(step.tokensPerSecond)),
            ("forward_passes", .int(step.forwardPasses)),
            ("peak_running_sequences", .int(step.peakRunningSequences)),
            ("tail_seconds", .number(step.tailSeconds)),
            ("tail_share", .number(step.tailShare)),
            ("tail_tokens", .int(step.tailTokens)),
            ("shared_core_seconds", .number(step.sharedCoreSeconds)),
            ("training_seconds_after_step", .number(step.trainingSeconds)),
            ("speculative_sequence_steps", .int(figures.sequenceSteps)),
            ("drafted", .int(figures.drafted)),
            ("accepted", .int(figures.accepted)),
            ("acceptance_length", .number(figures.acceptanceLength)),
            ("draft_seconds", .number(figures.draftSeconds)),
            ("kv_cache_bytes", .int(step.kvCacheBytes)),
            ("peak_resident_bytes", .int(step.peakResidentBytes)),
            ("finish_reasons", .object(step.finishReasons.sorted { $0.key.rawValue < $1.key.rawValue }
                .map { ($0.key.rawValue, .int($0.value)) })),
            ("response_lengths", .array(step.responseLengths.map { .int($0) })),
            ("timeline", .array(step.timeline.map(Self.json))),
        ])
    }

    static func json(_ entry: RolloutTimelineEntry) -> JSONValue {
        .object([
            ("start_seconds", .number(entry.startSeconds)),
            ("seconds", .number(entry.seconds)),
            ("running", .int(entry.runningSequences)),
            ("waiting", .int(entry.waitingRequests)),
            ("rows", .int(entry.rows)),
            ("prefill_rows", .int(entry.prefillRows)),
            ("committed_tokens", .int(entry.committedTokens)),
            ("strategy", entry.strategy.map { .string($0) } ?? .null),
            ("drafted", .int(entry.drafted)),
            ("accepted", .int(entry.accepted)),
            ("inference_threads", .int(entry.inferenceThreads)),
        ])
    }

    static func json(_ bandit: StrategyBandit) -> JSONValue {
        .array(bandit.buckets.keys.sorted().map { key in
            let bucket = bandit.buckets[key]!
            return .object([
                ("running_sequences", .string(StrategyBandit.label(bucket: key))),
                ("explorations", .int(bucket.explorations)),
                ("arms", .array(zip(bandit.arms, bucket.arms).map { strategy, record in
                    .object([
                        ("strategy", .string(strategy.description)),
                        ("pulls", .int(record.pulls)),
                        ("tokens", .int(record.tokens)),
                        ("seconds", .number(record.seconds)),
                        ("tokens_per_second", record.reward.map { .number($0) } ?? .null),
                    ])
                })),
            ])
        })
    }
}

extension RolloutReport {
    /// Returns the Double that prints as the Float's shortest decimal form (0.7, not
    /// 0.699999988079071), so option values in report.json read as they were typed.
    static func shortest(_ value: Float) -> Double {
        Double("\(value)") ?? Double(value)
    }
}
