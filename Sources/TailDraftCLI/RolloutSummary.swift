import TailDraft

/// The table `taildraft rollout` prints at the end: one row per step and a total, then
/// speculation figures, the bandit's record and peak memory.
enum RolloutSummary {
    static func table(_ report: RolloutReport) -> String {
        let header = ["step", "responses", "tokens", "time (s)", "tokens/s", "tail (s)", "tail share", "tau", "accepted"]
        var rows: [[String]] = report.steps.map { step in
            row(label: String(step.step + 1), responses: step.responses, tokens: step.completionTokens, seconds: step.seconds,
                tailSeconds: step.tailSeconds, speculation: step.speculation)
        }
        if report.steps.count > 1 {
            let steps = report.steps
            rows.append(row(label: "all", responses: steps.reduce(0) { $0 + $1.responses },
                            tokens: steps.reduce(0) { $0 + $1.completionTokens }, seconds: steps.reduce(0) { $0 + $1.seconds },
                            tailSeconds: steps.reduce(0) { $0 + $1.tailSeconds }, speculation: report.speculation))
        }
        var lines = aligned([header] + rows)

        let options = report.options.speculation
        let tail = "the tail (at most \(options.tailThreshold) running)"
        let figures = report.speculation
        if options.mode == .none {
            lines.append("speculation: off; \(tail) is timed in the tail columns")
        } else if figures.sequenceSteps == 0 {
            lines.append("speculation: \(options.mode.rawValue) in \(tail): no pass drafted (tail passes, if any, decoded without drafts)")
        } else {
            lines.append("speculation: \(options.mode.rawValue) in \(tail): \(figures.sequenceSteps) sequence steps, " +
                         "\(figures.accepted) of \(figures.drafted) drafted tokens accepted (\(fixed(figures.acceptanceRate * 100, 1)) %), " +
                         "tau \(fixed(figures.acceptanceLength, 2)) tokens per sequence step, drafting \(fixed(figures.draftSeconds, 2)) s")
        }
        if let bandit = report.bandit, !bandit.buckets.isEmpty {
            lines.append("bandit, committed tokens/s per strategy (pulls), best marked *:")
            for key in bandit.buckets.keys.sorted() {
                let bucket = bandit.buckets[key]!
                let best = bandit.bestArm(bucket: key)
                let arms = zip(bandit.arms.indices, bandit.arms).map { index, strategy in
                    let record = bucket.arms[index]
                    let rate = record.reward.map { fixed($0, 1) } ?? "-"
                    return "\(strategy)\(index == best ? "*" : "") \(rate) (\(record.pulls))"
                }
                lines.append("  \(StrategyBandit.label(bucket: key)) running: " + arms.joined(separator: ", ") +
                             "; \(bucket.explorations) explorations")
            }
        }
        let kvBytes = report.steps.map(\.kvCacheBytes).max() ?? 0
        lines.append("peak resident memory: \(fixed(Double(report.peakResidentBytes) / 1_000_000, 1)) MB " +
                     "(KV caches \(fixed(Double(kvBytes) / 1_000_000, 1)) MB), kernels: \(report.kernelPath), threads: \(report.threads)")
        return lines.joined(separator: "\n")
    }

    private static func row(label: String, responses: Int, tokens: Int, seconds: Double, tailSeconds: Double,
                            speculation: RolloutSpeculationFigures) -> [String] {
        let speculated = speculation.sequenceSteps > 0
        return [label, String(responses), String(tokens), fixed(seconds, 1),
                fixed(seconds > 0 ? Double(tokens) / seconds : 0, 1), fixed(tailSeconds, 1),
                fixed(seconds > 0 ? tailSeconds / seconds * 100 : 0, 1) + " %",
                speculated ? fixed(speculation.acceptanceLength, 2) : "-",
                speculated ? fixed(speculation.acceptanceRate * 100, 1) + " %" : "-"]
    }

    /// Pads each column to its widest cell.
    private static func aligned(_ rows: [[String]]) -> [String] {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }
    }
}
