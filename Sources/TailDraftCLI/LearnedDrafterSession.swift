#if canImport(Glibc)
import Glibc
#endif
import TailDraft

/// The learned drafter of one `generate` run: loaded from --drafter (or new and random),
/// trained online on a background thread while generating, and saved back at exit.
final class LearnedDrafterSession {
    let drafter: LearnedDrafter
    let trainer: DrafterTrainer
    let path: String?
    /// Whether the trainer has cores that no inference thread uses.
    let trainerHasOwnCores: Bool

    /// Loads or creates the drafter and starts its trainer, pinned to `trainCores` (by
    /// default the cores parsed from --train-cores, or none). The trainer runs at idle
    /// priority unless `normalPriorityOnOwnCores` is set and it has cores of its own.
    init(_ args: Arguments, model: Transformer, trainCores: [Int]? = nil, normalPriorityOnOwnCores: Bool = false) throws {
        let target = DrafterTarget(model: model)
        path = args.string("drafter")
        if let path { try Self.checkFolder(of: path) }
        var checkpoint: DrafterCheckpoint
        if let path, let saved = try DrafterCheckpoint.loadIfPresent(path: path, target: target) {
            checkpoint = saved
        } else {
            checkpoint = DrafterCheckpoint(weights: try .random(config: DrafterConfig(target: model.config), target: target))
        }
        var options = DrafterTrainerOptions()
        if let megabytes = try Self.parseReplayMegabytes(args) { options.replayMegabytes = megabytes }
        options.cores = try trainCores ?? args.string("train-cores").map(Self.parseCores)
        var ownCores = false
        if let trainCores = options.cores {
            // Inference keeps off the training cores when the other cores can hold its threads.
            // Otherwise an inference thread could share a core with the trainer, which at idle
            // priority would then never run.
            let rest = (0..<ProcessorCount.online).filter { !trainCores.contains($0) }
            if !rest.isEmpty && model.threads <= rest.count {
                _ = BackgroundThread.pinInference(to: rest, threads: model.threads)
                ownCores = true
            } else {
                Console.error("note: --train-cores \(trainCores.map(String.init).joined(separator: ",")) shares cores with the " +
                              "\(model.threads) inference threads, so training only gets the cycles inference leaves; " +
                              "use --threads \(max(1, rest.count)) to give it whole cores")
            }
        }
        options.checkpointPath = path
        // Only train-drafter accepts --unroll-weight; elsewhere this is the default, 0.
        options.optimizer.unrolledWeight = try args.float("unroll-weight", default: 0, range: 0...100,
                                                          expected: "a weight in 0...100 (0 turns the unrolled step off)")
        trainerHasOwnCores = ownCores
        options.idlePriority = !(normalPriorityOnOwnCores && ownCores)
        trainer = DrafterTrainer(checkpoint: checkpoint, target: target, options: options)
        // Drafting runs between target passes, while the inference threads are idle, so it uses
        // them too. The network's results do not depend on the thread count.
        drafter = LearnedDrafter(weights: checkpoint.weights, target: target, trainer: trainer, threads: model.threads)
        trainer.start()
    }

    /// Stops training, saves the checkpoint when --drafter was given, and returns the
    /// trainer's statistics.
    func finish() throws -> DrafterTrainerStatistics {
        trainer.stop()
        if let path { try trainer.saveCheckpoint(to: path) }
        return trainer.statistics
    }

    /// Parses a comma-separated list of CPU core indices such as "1" or "0,1".
    static func parseCores(_ text: String) throws -> [Int] {
        let cores = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.filter { !$0.isWhitespace }) }
        guard !cores.isEmpty, cores.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw UsageError(description: "invalid value '\(text)' for --train-cores: expected CPU core indices separated by commas, such as 1 or 0,1")
        }
        let online = ProcessorCount.online
        if let missing = cores.first(where: { $0! >= online }) {
            throw UsageError(description: "invalid core \(missing!) for --train-cores: this machine has cores 0 to \(online - 1)")
        }
        return cores.map { $0! }
    }

    /// Accepted values of --replay-mb, in megabytes (10^6 bytes).
    static let replayMegabytesRange = 1...65_536

    /// Returns the value of --replay-mb, or nil when it is absent.
    /// - Throws: `UsageError` naming the value and the accepted range.
    static func parseReplayMegabytes(_ args: Arguments) throws -> Double? {
        guard let text = args.string("replay-mb") else { return nil }
        guard let megabytes = Int(text), replayMegabytesRange.contains(megabytes) else {
            throw UsageError(description: "invalid value '\(text)' for --replay-mb: expected a whole number of megabytes in " +
                             "\(replayMegabytesRange.lowerBound)...\(replayMegabytesRange.upperBound)")
        }
        return Double(megabytes)
    }

    /// Checks before generating that the checkpoint's folder exists and is writable, so a
    /// typo in --drafter does not cost the run and its training at the end.
    static func checkFolder(of path: String) throws {
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        var info = stat()
        guard stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw UsageError(description: "folder \(folder) for --drafter \(path) does not exist: create it or choose another path")
        }
        guard access(folder, W_OK) == 0 else {
            throw UsageError(description: "folder \(folder) for --drafter \(path) is not writable: choose another path")
        }
    }

    /// Formats what a rollout's training did as one line for standard error: the rollout
    /// feeds the trainer but does not draft with the drafter, so there are no swaps to report.
    static func rolloutSummary(_ s: DrafterTrainerStatistics, path: String?) -> String {
        let loss = s.lastLoss.map { fixed($0.total, 4) } ?? "none"
        return "drafter training: \(plural(s.steps, "step")) on \(s.rowsTrained) rows counting replays (\(fixed(s.rowsPerSecond, 0)) rows/s), " +
            "\(s.positionsReceived) positions received, \(s.positionsDropped) dropped with the trainer's ring full, " +
            "\(s.duplicateRows) duplicate rows skipped, " +
            "test-then-train accuracy \(fixed(s.freshAccuracy * 100, 1)) % on \(s.freshRows) fresh rows, last loss \(loss)" +
            (path.map { ", saved to \($0)" } ?? "")
    }

    /// Formats the statistics as one line for standard error.
    static func summary(_ s: DrafterTrainerStatistics, drafter: LearnedDrafter) -> String {
        let loss = s.lastLoss.map { fixed($0.total, 4) } ?? "none"
        return "drafter training: \(plural(s.steps, "step")) on \(s.rowsTrained) rows counting replays (\(fixed(s.rowsPerSecond, 0)) rows/s), " +
            "\(s.positionsReceived) positions received, \(s.positionsDropped) dropped, \(s.duplicateRows) duplicate rows skipped, " +
            "test-then-train accuracy \(fixed(s.freshAccuracy * 100, 1)) % on \(s.freshRows) fresh rows, last loss \(loss), " +
            "weights version \(drafter.weights.version) (\(drafter.weightSwaps) swaps), priority \(s.priority.map { "\($0)" } ?? "normal")"
    }

    /// Returns the statistics as a JSON object.
    static func json(_ s: DrafterTrainerStatistics, drafter: LearnedDrafter) -> JSON {
        .object([
            ("steps", .int(s.steps)),
            ("rows_trained", .int(s.rowsTrained)),
            ("rows_per_second", .number(s.rowsPerSecond)),
            ("positions_received", .int(s.positionsReceived)),
            ("positions_dropped", .int(s.positionsDropped)),
            ("fresh_rows", .int(s.freshRows)),
            ("duplicate_rows", .int(s.duplicateRows)),
            ("fresh_accuracy", .number(s.freshAccuracy)),
            ("last_loss", .number(s.lastLoss?.total ?? .nan)),
            ("weights_version", .int(drafter.weights.version)),
            ("weight_swaps", .int(drafter.weightSwaps)),
        ])
    }
}

/// "1 step", "2 steps".
func plural(_ count: Int, _ noun: String) -> String { count == 1 ? "1 \(noun)" : "\(count) \(noun)s" }
