import Foundation
import Testing
@testable import TailDraft

/// report.json and the SVG charts, from hand-made statistics.
@Suite struct RolloutReportTests {
    static func entry(start: Double, running: Int, waiting: Int, strategy: String? = nil, committed: Int = 4) -> RolloutTimelineEntry {
        RolloutTimelineEntry(startSeconds: start, seconds: 0.5, runningSequences: running, waitingRequests: waiting, rows: running,
                             prefillRows: 0, committedTokens: committed, strategy: strategy, drafted: strategy == "suffix/3" ? 6 : 0,
                             accepted: strategy == "suffix/3" ? 3 : 0, decodingSequences: running,
                             draftingSequences: strategy == "suffix/3" ? running : 0, planSeconds: 0.001)
    }

    static func step(_ index: Int) -> RolloutStepStatistics {
        var step = RolloutStepStatistics(step: index, tailThreshold: 4)
        step.responses = 5
        step.completionTokens = 40
        step.seconds = 2
        step.tailSeconds = 1
        step.responseLengths = [3, 5, 8, 8, 16]
        step.finishReasons = [.stop: 4, .length: 1]
        step.timeline = [entry(start: 0, running: 8, waiting: 2), entry(start: 0.5, running: 6, waiting: 0),
                         entry(start: 1, running: 3, waiting: 0, strategy: "off"), entry(start: 1.5, running: 2, waiting: 0, strategy: "suffix/3", committed: 7)]
        step.speculation.sequenceSteps = 2
        step.speculation.committed = 7
        step.speculation.drafted = 6
        step.speculation.accepted = 3
        return step
    }

    static func report() -> RolloutReport {
        var bandit = StrategyBandit(configuration: .init(seed: 1))
        bandit.record(arm: 5, runningSequences: 2, tokens: 7, seconds: 0.5)
        return RolloutReport(modelPath: "model.gguf", kernelPath: "scalar", threads: 2, promptCount: 3, samplesPerPrompt: 2,
                             options: RolloutOptions(), steps: [step(0), step(1)], bandit: bandit, peakResidentBytes: 1 << 20)
    }

    @Test func writesJSONAndFourCharts() throws {
        try withTemporaryDirectory { directory in
            let folder = directory.appendingPathComponent("nested/report").path
            let paths = try Self.report().write(to: folder)
            #expect(paths.map { URL(fileURLWithPath: $0).lastPathComponent } ==
                    ["report.json", "response-lengths.svg", "throughput.svg", "batch-size.svg", "step-times.svg"])
            for path in paths.dropFirst() {
                let svg = try String(contentsOfFile: path, encoding: .utf8)
                #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""), "\(path)")
                #expect(svg.hasSuffix("</svg>\n"), "\(path)")
                for token in ["nan\"", "inf\"", "nan,", "inf,"] {
                    #expect(!svg.contains(token), "\(path) has a non-finite coordinate")
                }
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: paths[0]))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(object["responses"] as? Int == 10)
            #expect(object["completion_tokens"] as? Int == 80)
            let steps = try #require(object["steps"] as? [[String: Any]])
            #expect(steps.count == 2)
            #expect(steps.map { $0["step"] as? Int } == [1, 2], "steps count from 1, as on the console")
            #expect((steps[0]["timeline"] as? [Any])?.count == 4)
            #expect(steps[0]["tail_share"] as? Double == 0.5)
            let bandit = try #require(object["bandit"] as? [[String: Any]])
            #expect(bandit.first?["running_sequences"] as? String == "2")
            let arms = try #require(bandit.first?["arms"] as? [[String: Any]])
            #expect(arms[5]["strategy"] as? String == "suffix/3")
            #expect(arms[5]["tokens_per_second"] as? Double == 14)
        }
    }

    @Test func batchChartMarksSpeculation() {
        let svg = RolloutCharts.batchSize([Self.step(0)])
        #expect(svg.contains("speculation on"))
        #expect(svg.contains("fill=\"\(RolloutCharts.orange)\" fill-opacity=\"0.25\""), "the speculative pass is shaded")
        #expect(svg.contains("fill=\"\(RolloutCharts.grey)\" fill-opacity=\"0.25\""), "the tail pass without drafts is shaded")
    }

    @Test func emptyStatisticsStillDraw() {
        for (name, svg) in RolloutCharts.all([RolloutStepStatistics(step: 0, tailThreshold: 4)]) {
            #expect(svg.hasSuffix("</svg>\n"), "\(name)")
        }
    }

    @Test(arguments: [(0.0...15.0, [0.0, 5, 10, 15]), (0.0...1.0, [0, 0.2, 0.4, 0.6, 0.8, 1]), (3.0...250.0, [50, 100, 150, 200, 250])])
    func ticksAreRoundNumbers(_ range: ClosedRange<Double>, _ expected: [Double]) {
        let ticks = SVGChart.ticks(range)
        #expect(ticks.count == expected.count, "\(ticks)")
        for (tick, value) in zip(ticks, expected) {
            #expect(abs(tick - value) < 1e-9, "\(ticks)")
        }
    }

    @Test func textIsEscaped() {
        #expect(SVGChart.escape("a < b & \"c\"") == "a &lt; b &amp; &quot;c&quot;")
        #expect(SVGChart.format(1.005) == "1" || SVGChart.format(1.005) == "1.01")
        #expect(SVGChart.format(-0.25) == "-0.25")
        #expect(SVGChart.format(12.5) == "12.5")
    }

    /// The line's `step` counts from 1, as the console does, so step index 1 is step 2.
    @Test func responseLineHasRequestedFields() throws {
        let request = RolloutRequest(promptIndex: 0, promptId: .string("q1"), sampleIndex: 3, promptTokens: [1, 2])
        let response = RolloutResponse(request: request, step: 1, seed: 99, tokenIds: [5, 6], text: "hi\n", finishReason: .stop,
                                       joinedSeconds: 0, finishedSeconds: 1, drafted: 0, accepted: 0)
        let line = response.json().serialized()
        #expect(line == #"{"prompt_id": "q1", "sample_index": 3, "step": 2, "seed": "99", "token_ids": [5, 6], "text": "hi\n", "finish_reason": "stop", "completion_tokens": 2}"#)
    }
}
