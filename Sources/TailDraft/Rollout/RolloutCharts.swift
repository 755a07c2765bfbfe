/// The report's four SVG charts, built from step statistics. Steps are laid end to end on
/// one time axis in seconds.
enum RolloutCharts {
    static let blue = "#1f77b4", orange = "#ff7f0e", green = "#2ca02c", grey = "#bbbbbb", red = "#d62728"

    /// File names of the charts, in the order `all` returns them.
    static let names = ["response-lengths.svg", "throughput.svg", "batch-size.svg", "step-times.svg"]

    /// Returns (file name, SVG text) of every chart.
    static func all(_ steps: [RolloutStepStatistics]) -> [(name: String, svg: String)] {
        let charts = [responseLengths(steps), throughput(steps), batchSize(steps), stepTimes(steps)]
        return Array(zip(names, charts))
    }

    /// Returns each step's passes with start times moved onto the shared axis.
    static func passes(_ steps: [RolloutStepStatistics]) -> [RolloutTimelineEntry] {
        var offset = 0.0
        var result: [RolloutTimelineEntry] = []
        for step in steps {
            for var entry in step.timeline {
                entry.startSeconds += offset
                result.append(entry)
            }
            offset += step.seconds
        }
        return result
    }

    /// Histogram of completion tokens per response over all steps: the long tail on the right.
    static func responseLengths(_ steps: [RolloutStepStatistics]) -> String {
        let lengths = steps.flatMap(\.responseLengths)
        let longest = max(1, lengths.max() ?? 1)
        let binWidth = max(1, Int((Double(longest + 1) / 24).rounded(.up)))
        var counts = [Int](repeating: 0, count: longest / binWidth + 1)
        for length in lengths { counts[length / binWidth] += 1 }
        var chart = SVGChart(title: "Response lengths (\(lengths.count) responses)", xLabel: "completion tokens",
                             yLabel: "responses", xRange: 0...Double(counts.count * binWidth),
                             yRange: 0...Double(max(1, counts.max() ?? 1)) * 1.1)
        for (bin, count) in counts.enumerated() where count > 0 {
            let start = Double(bin * binWidth)
            chart.addRectangle(x: start...(start + Double(binWidth) * 0.9), y: 0...Double(count), color: blue)
        }
        return chart.render()
    }

    /// Committed tokens per second in fixed windows (left axis) and tau of the speculative
    /// passes in each window (right axis).
    static func throughput(_ steps: [RolloutStepStatistics]) -> String {
        let all = passes(steps)
        let total = max(steps.reduce(0) { $0 + $1.seconds }, 1e-3)
        let window = max(0.25, total / 120)
        let windows = Int((total / window).rounded(.up))
        var tokens = [Int](repeating: 0, count: windows), seconds = [Double](repeating: 0, count: windows)
        var speculativeTokens = [Int](repeating: 0, count: windows), sequenceSteps = [Int](repeating: 0, count: windows)
        for pass in all {
            let index = min(windows - 1, Int(pass.startSeconds / window))
            tokens[index] += pass.committedTokens
            seconds[index] += pass.seconds
            if pass.speculating {
                speculativeTokens[index] += pass.committedTokens
                sequenceSteps[index] += pass.decodingSequences
            }
        }
        let rates = (0..<windows).filter { seconds[$0] > 0 }.map { (Double($0) * window + window / 2, Double(tokens[$0]) / seconds[$0]) }
        let taus = (0..<windows).filter { sequenceSteps[$0] > 0 }.map { (Double($0) * window + window / 2, Double(speculativeTokens[$0]) / Double(sequenceSteps[$0])) }
        var chart = SVGChart(title: "Throughput and tokens per step (tau)", xLabel: "time (s)", yLabel: "tokens/s",
                             xRange: 0...total, yRange: 0...max(1, rates.map(\.1).max() ?? 1) * 1.1)
        chart.addRightAxis(label: "tau (tokens per sequence step)", range: 0...max(2, (taus.map(\.1).max() ?? 1) * 1.1))
        chart.addLine(rates, color: blue, label: "tokens/s")
        chart.addDots(taus, color: orange, label: "tau while speculating", right: true)
        return chart.render()
    }

    /// Running sequences per pass, over light bands where the tail speculated (orange) or ran
    /// without drafts (grey).
    static func batchSize(_ steps: [RolloutStepStatistics]) -> String {
        let all = passes(steps)
        let total = max(steps.reduce(0) { $0 + $1.seconds }, 1e-3)
        let peak = Double(max(1, all.map(\.runningSequences).max() ?? 1))
        var chart = SVGChart(title: "Batch size over time", xLabel: "time (s)", yLabel: "running sequences",
                             xRange: 0...total, yRange: 0...peak * 1.1)
        for pass in all where pass.strategy != nil {
            chart.addRectangle(x: pass.startSeconds...(pass.startSeconds + pass.seconds), y: 0...peak * 1.1,
                               color: pass.speculating ? orange : grey, opacity: 0.25)
        }
        var points: [(Double, Double)] = []
        for pass in all {
            points.append((pass.startSeconds, Double(pass.runningSequences)))
            points.append((pass.startSeconds + pass.seconds, Double(pass.runningSequences)))
        }
        chart.addLine(points, color: blue, label: "running sequences")
        chart.addLegend("speculation on", color: orange)
        chart.addLegend("tail without drafts", color: grey)
        return chart.render()
    }

    /// Seconds per step, split into the tail and the rest, with tokens/s above each bar.
    static func stepTimes(_ steps: [RolloutStepStatistics]) -> String {
        let longest = max(1e-3, steps.map(\.seconds).max() ?? 1)
        // Bars are centred on the step numbers, from 1.
        var chart = SVGChart(title: "Time per step", xLabel: "step", yLabel: "seconds",
                             xRange: 0.5...(Double(max(1, steps.count)) + 0.5), yRange: 0...longest * 1.15)
        for (index, step) in steps.enumerated() {
            let centre = Double(index + 1)
            let rest = step.seconds - step.tailSeconds
            chart.addRectangle(x: (centre - 0.3)...(centre + 0.3), y: 0...rest, color: blue)
            chart.addRectangle(x: (centre - 0.3)...(centre + 0.3), y: rest...step.seconds, color: orange)
            chart.addText("\(SVGChart.label((step.tokensPerSecond * 10).rounded() / 10)) tok/s", x: centre, y: step.seconds)
        }
        chart.addLegend("batch above the tail threshold", color: blue)
        chart.addLegend("tail", color: orange)
        return chart.render()
    }
}
