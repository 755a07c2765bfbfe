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
            lines.append("bandit, committed tokens/s of each strategy tried, per number of running sequences:")
            lines += banditLines(bandit)
        }
        let kvBytes = report.steps.map(\.kvCacheBytes).max() ?? 0
        lines.append("peak resident memory: \(fixed(Double(report.peakResidentBytes) / 1_000_000, 1)) MB " +
                     "(KV caches \(fixed(Double(kvBytes) / 1_000_000, 1)) MB), kernels: \(report.kernelPath), threads: \(report.threads)")
        return lines.joined(separator: "\n")
    }

    /// Formats the bandit's record, per bucket: a line with its pulls, explorations and best
    /// strategy, one line per strategy it tried, and one that lists the strategies it never
    /// tried. With the learned arms there are 13 strategies, too many for one line.
    private static func banditLines(_ bandit: StrategyBandit) -> [String] {
        var lines: [String] = []
        for key in bandit.buckets.keys.sorted() {
            let bucket = bandit.buckets[key]!
            var heading = "  \(StrategyBandit.label(bucket: key)) running: \(plural(bucket.pulls, "pull")), " +
                "\(plural(bucket.explorations, "exploration"))"
            if let best = bandit.bestArm(bucket: key), let reward = bucket.arms[best].reward {
                heading += ", best \(bandit.arms[best]) at \(fixed(reward, 1)) tokens/s"
            }
            lines.append(heading)

            let tried = bandit.arms.indices.filter { bucket.arms[$0].pulls > 0 }
            if !tried.isEmpty {
                // Rates are right-aligned so their decimal points line up.
                let rates = tried.map { bucket.arms[$0].reward.map { fixed($0, 1) } ?? "-" }
                let width = rates.map(\.count).max() ?? 0
                lines += aligned(zip(tried, rates).map { index, rate in
                    ["    \(bandit.arms[index])", String(repeating: " ", count: width - rate.count) + rate + " tokens/s",
                     plural(bucket.arms[index].pulls, "pull")]
                })
            }
            let untried = bandit.arms.indices.filter { bucket.arms[$0].pulls == 0 }
            if !untried.isEmpty {
                lines.append("    not tried: " + untried.map { bandit.arms[$0].description }.joined(separator: ", "))
            }
        }
        return lines
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
