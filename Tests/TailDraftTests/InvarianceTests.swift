import Foundation
import Kernels
import Testing
@testable import TailDraft

/// The models the invariance tests run: the real SmolLM2-135M, two tiny random llama models,
/// a tiny model in the K-quant types of a Q4_K_M file and a tiny random qwen2 model (Q, K and
/// V biases, RoPE on halves).
enum InvarianceModel: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case smolLM2
    case tinyQ4_1
    case tinyF32
    /// Q4_K, Q5_K, Q6_K and Q5_0 matrices, as in a Q4_K_M file.
    case tinyKQuant
    case tinyQwen2

    var testDescription: String { rawValue }

    /// Transformers, loaded once for the whole run. The weights stay memory-mapped, so the
    /// tiny models' files can be deleted right after loading.
    private static let loaded: [InvarianceModel: Result<Transformer, any Error>] = {
        var result: [InvarianceModel: Result<Transformer, any Error>] = [:]
        result[.smolLM2] = Result { try Transformer(path: smolLM2Path, threads: 2) }
        for (model, type) in [(InvarianceModel.tinyQ4_1, GGMLType.q4_1), (.tinyF32, .f32)] {
            var spec = TinyModelSpec()
            spec.weightType = type
            spec.layerCount = 3
            spec.seed = 0x1_0000 + UInt64(type.rawValue)
            result[model] = Result { try TinyModel(spec: spec).withTransformer { $0 } }
        }
        let kQuantSpec = TinyModelSpec.kQuantMix(seed: 0x1_00FF, layerCount: 3)
        result[.tinyKQuant] = Result { try TinyModel(spec: kQuantSpec).withTransformer { $0 } }
        var qwen2 = TinyModelSpec.qwen2(seed: 0x1_0100, weightType: .q4_1)
        qwen2.layerCount = 3
        result[.tinyQwen2] = Result { try TinyModel(spec: qwen2).withTransformer { $0 } }
        return result
    }()

    func transformer() throws -> Transformer {
        try Self.loaded[self]!.get()
    }

    var isTiny: Bool { self != .smolLM2 }

    /// "Hello, my name is": SmolLM2's token ids, or its bytes as the tiny models' tokens.
    var prefix: [Int32] {
        isTiny ? "Hello, my name is".utf8.map(Int32.init) : [19556, 28, 957, 1462, 314]
    }

    /// Returns `count` fixed pseudo-random token ids of this model's vocabulary.
    func tokens(_ count: Int, seed: UInt64) -> [Int32] {
        var rng = SplitMix64(seed: seed)
        let vocabulary = isTiny ? 256 : 49152
        return (0..<count).map { _ in Int32(rng.next() % UInt64(vocabulary)) }
    }
}

/// Runs one forward pass of a single sequence and returns the logits of each requested row.
private func run(_ transformer: Transformer, _ cache: KVCache, _ batch: ForwardBatch) throws -> [[Float]] {
    let output = try transformer.forward(batch, caches: [cache])
    return output.logitRows.map { Array(output.logits(row: $0)) }
}

/// Decodes `tokens` one at a time from the cache's current end and returns each step's logits.
private func decode(_ transformer: Transformer, _ cache: KVCache, _ tokens: [Int32]) throws -> [[Float]] {
    try tokens.map { token in
        try run(transformer, cache, .causal(tokens: [token], startPosition: cache.count))[0]
    }
}

private let modelsAndPaths: [(InvarianceModel, Int32)] = InvarianceModel.allCases.flatMap { model in
    KernelGate.isaPaths.map { (model, $0) }
}

@Suite(.serialized) struct InvarianceTests {
    /// Row i of a k-row causal batch after the prefix equals decoding its tokens one by one.
    @Test(arguments: modelsAndPaths)
    func batchRowsEqualDecode(model: InvarianceModel, isa: Int32) throws {
        let transformer = try model.transformer()
        let maxBatch = 16
        let continuation = model.tokens(maxBatch, seed: 0x1A_0001)

        try KernelGate.run(isa: isa) {
            let cache = KVCache(config: transformer.config, capacity: 64)
            _ = try run(transformer, cache, .causal(tokens: model.prefix, startPosition: 0, logitRows: []))
            let decoded = try decode(transformer, cache, continuation)
            let nonFinite = decoded.joined().filter { !$0.isFinite }.count
            #expect(nonFinite == 0, "\(model), ISA \(KernelGate.name(isa)): logits that are not finite")

            for k in 1...maxBatch {
                cache.truncate(to: model.prefix.count)
                let batch = try run(transformer, cache, .causal(tokens: Array(continuation.prefix(k)), startPosition: model.prefix.count))
                for row in 0..<k {
                    #expect(bitwiseDifference(batch[row], decoded[row]) == nil, "\(model), ISA \(KernelGate.name(isa)): row \(row) of a \(k)-row batch")
                }
            }
        }
    }

    /// The last 8 logits of a 40-token prompt are the same via one prefill, prefill 32 then 8
    /// decode steps, prefill 32 then an 8-row batch, and after truncating 3 and redoing them.
    @Test(arguments: modelsAndPaths)
    func prefillSplitsAgree(model: InvarianceModel, isa: Int32) throws {
        let transformer = try model.transformer()
        let prompt = model.tokens(40, seed: 0x1A_0002)
        let head = Array(prompt[..<32]), tail = Array(prompt[32...])

        try KernelGate.run(isa: isa) {
            let cache = KVCache(config: transformer.config, capacity: 64)
            let whole = try run(transformer, cache, .causal(tokens: prompt, startPosition: 0, logitRows: Array(32..<40)))

            cache.truncate(to: 0)
            _ = try run(transformer, cache, .causal(tokens: head, startPosition: 0, logitRows: []))
            let stepped = try decode(transformer, cache, tail)

            cache.truncate(to: 0)
            _ = try run(transformer, cache, .causal(tokens: head, startPosition: 0, logitRows: []))
            let batched = try run(transformer, cache, .causal(tokens: tail, startPosition: 32))

            cache.truncate(to: 37)
            let redone = try run(transformer, cache, .causal(tokens: Array(prompt[37...]), startPosition: 37))
            let truncated = Array(batched[..<5]) + redone

            let label = "\(model), ISA \(KernelGate.name(isa))"
            #expect(bitwiseDifference(stepped, whole) == nil, "\(label): prefill 32 + 8 decode steps")
            #expect(bitwiseDifference(batched, whole) == nil, "\(label): prefill 32 + one 8-row batch")
            #expect(bitwiseDifference(truncated, whole) == nil, "\(label): truncate by 3 and redo")
            #expect(cache.count == 40)
        }
    }

    /// A 32-token greedy run gives the same logits with 1, 2, 3 and 4 threads.
    @Test(arguments: modelsAndPaths)
    func threadCountsAgree(model: InvarianceModel, isa: Int32) throws {
        let transformer = try model.transformer()

        try KernelGate.run(isa: isa) {
            defer { transformer.threads = 2 }
            var runs: [[[Float]]] = []
            for threads in 1...4 {
                transformer.threads = threads
                let cache = KVCache(config: transformer.config, capacity: 64)
                var logits = try run(transformer, cache, .causal(tokens: model.prefix, startPosition: 0, logitRows: [model.prefix.count - 1]))
                var steps: [[Float]] = []
                for _ in 0..<32 {
                    let next = Int32(logits[0].indices.max { logits[0][$0] < logits[0][$1] }!)
                    logits = try decode(transformer, cache, [next])
                    steps.append(logits[0])
                }
                runs.append(steps)
            }
            for threads in 2...4 {
                #expect(bitwiseDifference(runs[threads - 1], runs[0]) == nil, "\(model), ISA \(KernelGate.name(isa)): \(threads) threads vs 1")
            }
        }
    }

    /// A tree batch (root, then two branches of depth 2) with an ancestor mask gives each node
    /// the logits of decoding its root-to-node path as a chain. Keeping one branch with
    /// keepSlots and decoding on equals decoding that branch directly.
    @Test(arguments: modelsAndPaths)
    func treeBatchEqualsChains(model: InvarianceModel, isa: Int32) throws {
        let transformer = try model.transformer()
        let nodes = model.tokens(6, seed: 0x1A_0003)
        // Rows: root, a1, a2, b1, b2; the sixth token follows b2 after compaction.
        let (root, a1, a2, b1, b2, next) = (nodes[0], nodes[1], nodes[2], nodes[3], nodes[4], nodes[5])
        let parents = [-1, 0, 1, 0, 3]
        var mask = [[Bool]](repeating: [Bool](repeating: false, count: 5), count: 5)
        for row in 0..<5 {
            var node = row
            while node >= 0 {
                mask[row][node] = true
                node = parents[node]
            }
        }
        let start = model.prefix.count
        let depth: [Int32] = [0, 1, 2, 1, 2]

        try KernelGate.run(isa: isa) {
            let cache = KVCache(config: transformer.config, capacity: 64)
            _ = try run(transformer, cache, .causal(tokens: model.prefix, startPosition: 0, logitRows: []))
            let tree = try run(transformer, cache, ForwardBatch(tokens: [root, a1, a2, b1, b2],
                                                                positions: depth.map { Int32(start) + $0 }, mask: mask))
            #expect(cache.count == start + 5)

            // Keep root, b1, b2 (slots start, start + 3, start + 4) and decode one more token.
            cache.keepSlots([start, start + 3, start + 4], from: start)
            #expect(cache.count == start + 3)
            let afterCompaction = try decode(transformer, cache, [next])[0]

            cache.truncate(to: start)
            let chainA = try decode(transformer, cache, [root, a1, a2])
            cache.truncate(to: start)
            let chainB = try decode(transformer, cache, [root, b1, b2, next])

            let label = "\(model), ISA \(KernelGate.name(isa))"
            #expect(bitwiseDifference(tree[0], chainA[0]) == nil, "\(label): root")
            #expect(bitwiseDifference(tree[1], chainA[1]) == nil, "\(label): a1")
            #expect(bitwiseDifference(tree[2], chainA[2]) == nil, "\(label): a2")
            #expect(bitwiseDifference(tree[3], chainB[1]) == nil, "\(label): b1")
            #expect(bitwiseDifference(tree[4], chainB[2]) == nil, "\(label): b2")
            #expect(bitwiseDifference(afterCompaction, chainB[3]) == nil, "\(label): decode after keepSlots")
        }
    }
}
