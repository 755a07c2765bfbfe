import Kernels
import TailDraft

/// Times the learned drafter's forward passes, from the F32 parameters and from the Q8_0
/// copy, against one decode step of the target: what drafting one tree level costs.
///
/// The drafter is random, because its speed does not depend on its values. After a
/// 256-token context, a draft with maxDepth 1 runs one drafter row (the root's children).
/// A draft with maxDepth 5 and a large budget adds four levels of `beamWidth` rows each, so
/// the difference divided by four is the time per tree level. Rounds alternate between the
/// two weight formats.
struct DrafterBenchmark {
    let modelPath: String
    let threads: Int
    let rounds: Int
    /// Drafts per measurement; the figure is their mean.
    let repetitions = 20

    struct Row {
        var name: String
        var milliseconds: Summary
    }

    func run(progress: Bool) throws -> [Row] {
        let engine = try Engine(modelPath: modelPath, threads: threads, contextLength: 512)
        let model = engine.model
        let text = String(repeating: "The quick brown fox jumps over the lazy dog while the cat watches from the fence. ", count: 20)
        let context = Array(engine.tokenizePrompt(text).prefix(257))
        let committed = Array(context.dropLast())
        let cache = KVCache(config: model.config, capacity: 512)
        let pass = try model.forward(.causal(tokens: committed, startPosition: 0, logitRows: []), caches: [cache])

        let target = DrafterTarget(model: model)
        let weights = try DrafterWeights.random(config: DrafterConfig(target: model.config), target: target)
        let drafter = LearnedDrafter(weights: weights, target: target, threads: threads)
        drafter.observeHidden(tokens: committed[...], hidden: pass.hidden[...], startPosition: 0)

        func draftMilliseconds(maxDepth: Int) -> Double {
            let start = now()
            for _ in 0..<repetitions { _ = drafter.propose(context: context, budget: 64, maxDepth: maxDepth) }
            return (now() - start) * 1000 / Double(repetitions)
        }
        func targetStepMilliseconds() throws -> Double {
            let start = now()
            for _ in 0..<repetitions {
                _ = try model.forward(.causal(tokens: [context.last!], startPosition: committed.count), caches: [cache])
            }
            return (now() - start) * 1000 / Double(repetitions)
        }

        var samples: [String: [Double]] = [:]
        for round in 0..<(rounds + 1) {
            for quantized in [false, true] {
                drafter.usesQuantizedWeights = quantized
                let format = quantized ? "Q8_0" : "F32"
                let root = draftMilliseconds(maxDepth: 1)
                let full = draftMilliseconds(maxDepth: 5)
                guard round > 0 else { continue }    // warm-up
                samples["\(format) root row", default: []].append(root)
                samples["\(format) tree level (\(drafter.beamWidth) rows)", default: []].append((full - root) / 4)
            }
            let step = try targetStepMilliseconds()
            if round > 0 { samples["target decode step", default: []].append(step) }
            if progress { Console.error("round \(round) of \(rounds) (the first is a warm-up)") }
        }
        let order = ["F32 root row", "F32 tree level (\(drafter.beamWidth) rows)", "Q8_0 root row",
                     "Q8_0 tree level (\(drafter.beamWidth) rows)", "target decode step"]
        return order.map { Row(name: $0, milliseconds: Summary(samples: samples[$0]!)) }
    }

    func table(_ rows: [Row]) -> String {
        let step = rows.last!.milliseconds.median
        var lines = ["learned drafter vs target, \(threads) thread(s), \(rounds) rounds; \(cpuModel()), ISA \(String(cString: td_isa_name(td_isa_active())))",
                     "what".padding(28) + "ms median".padding(12) + "min..max".padding(18) + "of a target step"]
        for row in rows {
            let m = row.milliseconds
            lines.append(row.name.padding(28) + decimals(m.median, 3).padding(12)
                         + (decimals(m.minimum, 3) + ".." + decimals(m.maximum, 3)).padding(18)
                         + decimals(100 * m.median / step, 1) + " %")
        }
        return lines.joined(separator: "\n")
    }
}
