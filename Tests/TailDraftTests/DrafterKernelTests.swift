import Foundation
import Kernels
import Testing
@testable import TailDraft

/// The drafter's F32 kernels: every ISA path equals the scalar reference bitwise, products
/// are batch-invariant, and the small helpers follow their contracts.
@Suite(.serialized) struct DrafterKernelTests {
    /// y = x * W^T on the active path.
    func linear(_ x: [Float], rows m: Int, _ w: [Float], out: Int, threads: Int = 1) -> [Float] {
        let cols = x.count / m
        var y = [Float](repeating: .nan, count: m * out)
        let status = td_drafter_linear(x, Int64(m), Int64(cols), w, Int64(out), &y, Int32(threads))
        precondition(status == TD_OK, "td_drafter_linear failed with status \(status)")
        return y
    }

    @Test(arguments: [(1, 1, 1), (3, 17, 5), (5, 64, 9), (8, 100, 33), (2, 576, 12)])
    func linearPathsMatchScalar(_ shape: (Int, Int, Int)) {
        let (m, cols, out) = shape
        var rng = SplitMix64(seed: UInt64(m * 1000 + cols))
        let x = rng.floats(m * cols, scale: 1), w = rng.floats(out * cols, scale: 1)
        KernelGate.run {
            KernelGate.select(Int32(TD_ISA_SCALAR.rawValue))
            let reference = linear(x, rows: m, w, out: out)
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                for threads in [1, 2] {
                    let y = linear(x, rows: m, w, out: out, threads: threads)
                    #expect(bitwiseDifference(y, reference) == nil, "\(KernelGate.name(isa)), \(threads) threads, shape \(shape), seed \(rng.seed)")
                }
            }
        }
    }

    @Test func linearRowsAreBatchInvariant() {
        var rng = SplitMix64(seed: 7)
        let cols = 96, out = 21, m = 11
        let x = rng.floats(m * cols, scale: 1), w = rng.floats(out * cols, scale: 1)
        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                let batch = linear(x, rows: m, w, out: out, threads: 2)
                for row in 0..<m {
                    let alone = linear(Array(x[row * cols ..< (row + 1) * cols]), rows: 1, w, out: out)
                    #expect(bitwiseDifference(alone, Array(batch[row * out ..< (row + 1) * out])) == nil,
                            "\(KernelGate.name(isa)), row \(row)")
                }
            }
        }
    }

    @Test(arguments: [(1, 5, 3), (4, 33, 7), (19, 40, 37)])
    func linearBackwardMatchesDefinition(_ shape: (Int, Int, Int)) {
        let (m, cols, out) = shape
        var rng = SplitMix64(seed: UInt64(m * 31 + cols))
        let x = rng.floats(m * cols, scale: 1), w = rng.floats(out * cols, scale: 1), dy = rng.floats(m * out, scale: 1)
        let start = rng.floats(out * cols, scale: 1)
        KernelGate.run {
            var results: [[Float]] = []
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                var dx = [Float](repeating: .nan, count: m * cols)
                var dw = start
                let status = td_drafter_linear_backward(dy, x, Int64(m), Int64(cols), w, Int64(out), &dx, 0, &dw, 2)
                #expect(status == TD_OK)
                results.append(dx + dw)
                for i in 0..<m {
                    for c in 0..<cols {
                        var expected = 0.0
                        for r in 0..<out { expected += Double(dy[i * out + r]) * Double(w[r * cols + c]) }
                        #expect(abs(Double(dx[i * cols + c]) - expected) < 1e-4, "dx[\(i), \(c)] on \(KernelGate.name(isa))")
                    }
                }
                for r in 0..<out {
                    for c in 0..<cols {
                        var expected = Double(start[r * cols + c])
                        for i in 0..<m { expected += Double(dy[i * out + r]) * Double(x[i * cols + c]) }
                        #expect(abs(Double(dw[r * cols + c]) - expected) < 1e-4, "dw[\(r), \(c)] on \(KernelGate.name(isa))")
                    }
                }
            }
            for result in results.dropFirst() {
                #expect(bitwiseDifference(result, results[0]) == nil, "every path computes the scalar reference's gradients")
            }
        }
    }

    @Test func topKIsSortedWithSoftmaxProbabilities() {
        let logits: [Float] = [0.5, 2, -1, 2, 1.5, 0]
        var indices = [Int32](repeating: -1, count: 3)
        var probabilities = [Float](repeating: .nan, count: 3)
        #expect(td_drafter_top_k(logits, 6, 3, &indices, &probabilities) == TD_OK)
        #expect(indices == [1, 3, 4], "ties keep the lower index first")
        let total = logits.reduce(0.0) { $0 + exp(Double($1)) }
        for (index, probability) in zip(indices, probabilities) {
            #expect(abs(Double(probability) - exp(Double(logits[Int(index)])) / total) < 1e-6)
        }
        #expect(td_drafter_top_k(logits, 6, 7, &indices, &probabilities) == TD_EINVAL)
    }

    /// Each weight comes back within half a step of its block's half-precision scale, the
    /// scale is the block's largest magnitude / 127, and an all-zero block stays zero.
    @Test(arguments: [32, 96, 576])
    func q8_0QuantizationIsWithinHalfAStep(_ n: Int) {
        var rng = SplitMix64(seed: UInt64(n))
        var x = (0..<n).map { _ in Float.random(in: -3..<3, using: &rng) }
        x.replaceSubrange(0..<32, with: repeatElement(0, count: 32))
        var blocks = [UInt8](repeating: 0, count: td_row_bytes(Int32(TD_TYPE_Q8_0.rawValue), Int64(n)))
        #expect(td_quantize_row_q8_0(x, &blocks, Int64(n)) == TD_OK)
        var y = [Float](repeating: .nan, count: n)
        #expect(td_dequantize_row(Int32(TD_TYPE_Q8_0.rawValue), blocks, &y, Int64(n)) == TD_OK)
        for block in 0..<(n / 32) {
            let range = block * 32 ..< block * 32 + 32
            let amax = x[range].map(abs).max()!
            let d = td_fp16_to_fp32(td_fp32_to_fp16(amax / 127))
            for i in range {
                #expect(abs(x[i] - y[i]) <= d / 2, "element \(i): \(x[i]) came back as \(y[i]) with scale \(d)")
            }
        }
        #expect(y[0..<32].allSatisfy { $0 == 0 })
        #expect(td_quantize_row_q8_0(x, &blocks, 31) == TD_EINVAL, "n must be a multiple of 32")
    }

    @Test func adamwFirstStepMovesByLearningRate() {
        var parameters: [Float] = [1, -2, 0.5]
        let gradients: [Float] = [0.3, -4, 0]
        var m1 = [Float](repeating: 0, count: 3), m2 = [Float](repeating: 0, count: 3)
        var step = td_adamw_step(learning_rate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0,
                                 grad_scale: 1, bias_correction1: 0.1, bias_correction2: 0.001)
        #expect(td_drafter_adamw(&parameters, gradients, &m1, &m2, 3, &step) == TD_OK)
        // With bias correction the first update is lr * sign(g).
        #expect(abs(parameters[0] - 0.9) < 1e-5)
        #expect(abs(parameters[1] - -1.9) < 1e-5)
        #expect(parameters[2] == 0.5)
    }

    @Test(arguments: [0, 7, 8, 1 << 20, (1 << 20) + 13, 3 * (1 << 20) + 5])
    func fileHashEqualsHashOfBytes(_ count: Int) throws {
        var rng = SplitMix64(seed: UInt64(count))
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("bytes")
            try Data(bytes).write(to: url)
            var hash: UInt64 = 0, size: UInt64 = 0
            #expect(td_drafter_hash_file(url.path, &hash, &size) == TD_OK)
            #expect(size == UInt64(count))
            #expect(hash == bytes.withUnsafeBytes { td_drafter_hash($0.baseAddress, $0.count) })
        }
        var missingHash: UInt64 = 0, missingSize: UInt64 = 0
        #expect(td_drafter_hash_file("/nonexistent/taildraft", &missingHash, &missingSize) == TD_EINVAL)
    }
}
