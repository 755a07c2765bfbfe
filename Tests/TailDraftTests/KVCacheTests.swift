import Foundation
import Kernels
import Testing
@testable import TailDraft

/// A tiny model for the cache tests, loaded once; its file is deleted right after loading
/// because the weights stay memory-mapped.
private let cacheTestModel: Result<Transformer, any Error> = Result {
    var spec = TinyModelSpec()
    spec.weightType = .q8_0
    spec.seed = 0xCA_0001
    return try TinyModel(spec: spec).withTransformer { $0 }
}

/// Returns whether `a` and `b` contain the same bytes in their first `count` slots of every layer.
private func sameContents(_ a: KVCache, _ b: KVCache, slots count: Int) -> Bool {
    let bytes = count * a.bytesPerSlot
    return (0..<a.layerCount).allSatisfy { layer in
        UnsafeRawBufferPointer(start: a.keys(layer: layer), count: bytes)
            .elementsEqual(UnsafeRawBufferPointer(start: b.keys(layer: layer), count: bytes))
            && UnsafeRawBufferPointer(start: a.values(layer: layer), count: bytes)
            .elementsEqual(UnsafeRawBufferPointer(start: b.values(layer: layer), count: bytes))
    }
}

@Suite(.serialized) struct KVCacheTests {
    @Test func byteCountFollowsPrecision() throws {
        let config = try cacheTestModel.get().config
        let half = KVCache(config: config, capacity: 100, precision: .float16)
        let single = KVCache(config: config, capacity: 100, precision: .float32)
        let elements = 2 * config.layerCount * 100 * config.kvDim

        #expect(half.byteCount == elements * 2)
        #expect(single.byteCount == elements * 4)
        #expect(KVCache.byteCount(config: config, capacity: 100, precision: .float16) == half.byteCount)
        #expect(half.bytesPerSlot == config.kvDim * 2)
    }

    /// A half cache holds the bits td_convert_to_half gives for the float keys and values that
    /// a float32 cache of the same run holds. Layer 0 is compared because its keys and values
    /// depend only on the tokens; later layers read attention over the differently rounded cache.
    @Test func halfCacheStoresConvertedFloats() throws {
        let model = try cacheTestModel.get()
        let tokens: [Int32] = Array("half cache".utf8.map(Int32.init))
        let count = tokens.count * model.config.kvDim

        try KernelGate.run {
            let half = KVCache(config: model.config, capacity: 32, precision: .float16)
            let single = KVCache(config: model.config, capacity: 32, precision: .float32)
            _ = try model.forward(.causal(tokens: tokens, startPosition: 0), caches: [half])
            _ = try model.forward(.causal(tokens: tokens, startPosition: 0), caches: [single])
            for (name, floats, halves) in [("keys", single.keys(layer: 0), half.keys(layer: 0)),
                                           ("values", single.values(layer: 0), half.values(layer: 0))] {
                var expected = [td_fp16](repeating: 0, count: count)
                #expect(td_convert_to_half(floats.assumingMemoryBound(to: Float.self), &expected, Int64(count)) == TD_OK)
                let stored = Array(UnsafeBufferPointer(start: halves.assumingMemoryBound(to: td_fp16.self), count: count))
                #expect(stored == expected, "layer 0 \(name)")
            }
        }
    }

    /// A tree batch compacted with keepSlots leaves the bytes that a causal run of the kept
    /// path writes, and decoding on gives the same logits. Truncating and redoing does too.
    @Test(arguments: [KVCache.Precision.float16, .float32])
    func compactionEqualsRebuiltCache(precision: KVCache.Precision) throws {
        let model = try cacheTestModel.get()
        let prefix: [Int32] = Array("prefix".utf8.map(Int32.init))
        let (root, a1, b1, b2, next): (Int32, Int32, Int32, Int32, Int32) = (10, 20, 30, 40, 50)
        let start = prefix.count
        // Rows: root, a1, b1, b2 with parents -1, 0, 0, 2.
        let mask: [[Bool]] = [[true, false, false, false], [true, true, false, false],
                              [true, false, true, false], [true, false, true, true]]
        let positions: [Int32] = [0, 1, 1, 2].map { Int32(start) + $0 }

        try KernelGate.run {
            let cache = KVCache(config: model.config, capacity: 32, precision: precision)
            _ = try model.forward(.causal(tokens: prefix, startPosition: 0, logitRows: []), caches: [cache])
            _ = try model.forward(ForwardBatch(tokens: [root, a1, b1, b2], positions: positions, mask: mask), caches: [cache])
            cache.keepSlots([start, start + 2, start + 3], from: start)
            let afterCompaction = try model.forward(.causal(tokens: [next], startPosition: cache.count), caches: [cache])

            let rebuilt = KVCache(config: model.config, capacity: 32, precision: precision)
            let chain = try model.forward(.causal(tokens: prefix + [root, b1, b2, next], startPosition: 0), caches: [rebuilt])
            #expect(cache.count == rebuilt.count)
            #expect(sameContents(cache, rebuilt, slots: cache.count), "\(precision): cache bytes after keepSlots")
            #expect(bitwiseDifference(Array(afterCompaction.logits(row: 0)), Array(chain.logits(row: start + 3))) == nil,
                    "\(precision): logits after keepSlots")

            cache.truncate(to: start + 1)
            let redone = try model.forward(.causal(tokens: [b1, b2, next], startPosition: start + 1), caches: [cache])
            #expect(sameContents(cache, rebuilt, slots: cache.count), "\(precision): cache bytes after truncate and redo")
            #expect(bitwiseDifference(Array(redone.logits(row: 2)), Array(chain.logits(row: start + 3))) == nil,
                    "\(precision): logits after truncate and redo")
        }
    }

    @Test func mixedPrecisionsRejected() throws {
        let model = try cacheTestModel.get()
        let half = KVCache(config: model.config, capacity: 8, precision: .float16)
        let single = KVCache(config: model.config, capacity: 8, precision: .float32)
        let batch = ForwardBatch(tokens: [1, 2], positions: [0, 0], sequences: [0, 1])

        #expect(throws: ForwardError.mixedCachePrecisions(["float16", "float32"])) {
            try KernelGate.run { try model.forward(batch, caches: [half, single]) }
        }
        #expect(half.count == 0)
        #expect(single.count == 0)
    }
}
