import Foundation
import Kernels
import Testing
@testable import TailDraft

// MARK: - Helpers

/// The weight types td_dot_row and td_matmul accept.
private let kernelTypes: [GGMLType] = [.q4_0, .q4_1, .q8_0, .f32, .f16, .bf16]

private func isQuantized(_ type: GGMLType) -> Bool {
    type == .q4_0 || type == .q4_1 || type == .q8_0
}

/// The two RoPE kernels: adjacent pairs (td_rope_pairs) and halves (td_rope_halves).
enum RopeLayout: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case pairs
    case halves

    var testDescription: String { rawValue }

    /// Runs this layout's kernel on `rows` rows of `x`.
    func apply(_ x: inout [Float], rows: Int, stride: Int, heads: Int, headDim: Int, positions: [Int32], base: Float) -> Int32 {
        switch self {
        case .pairs:
            return td_rope_pairs(&x, Int64(rows), Int64(stride), Int32(heads), Int32(headDim), positions, base)
        case .halves:
            return td_rope_halves(&x, Int64(rows), Int64(stride), Int32(heads), Int32(headDim), positions, base)
        }
    }

    /// Returns the indices within a head of pair `i`'s two elements.
    func pair(_ i: Int, headDim: Int) -> (Int, Int) {
        self == .pairs ? (2 * i, 2 * i + 1) : (i, i + headDim / 2)
    }
}

/// Computes the exact dot product of a weight row with the activations the kernel
/// multiplies, and the sum of the magnitudes of the partial products it adds. For Q4_1 a
/// weight is d * q + m and the kernel sums d * q * x and m * x separately, so both count.
private func referenceDot(_ type: GGMLType, _ weights: [UInt8], _ x: [Float]) -> (value: Double, magnitude: Double) {
    let w = dequantize(type, weights, count: x.count).map(Double.init)
    let activations = isQuantized(type) ? quantizedActivations(x) : x.map(Double.init)
    var value = 0.0, magnitude = 0.0
    for i in w.indices {
        value += w[i] * activations[i]
        magnitude += abs(w[i] * activations[i])
    }
    if type == .q4_1 {
        for block in 0..<x.count / 32 {
            let offset = Double(Float(Float16(bitPattern: UInt16(weights[block * 20 + 2]) | UInt16(weights[block * 20 + 3]) << 8)))
            for i in block * 32..<(block + 1) * 32 {
                magnitude += abs(offset * activations[i]) + abs((w[i] - offset) * activations[i])
            }
        }
    }
    return (value, magnitude)
}

/// Builds a row of `n` weights of `type` with every block set to its extreme encoding: the
/// largest scale (65504) and every nibble 15 (Q4_0, Q4_1), every quant -128 (Q8_0), or
/// 65504 for the float types.
private func extremeRow(_ type: GGMLType, count n: Int) -> [UInt8] {
    let maxHalf: [UInt8] = [0xFF, 0x7B]
    switch type {
    case .q4_0:
        return Array((0..<n / 32).map { _ in maxHalf + Array(repeating: 0xFF, count: 16) }.joined())
    case .q4_1:
        return Array((0..<n / 32).map { _ in maxHalf + maxHalf + Array(repeating: 0xFF, count: 16) }.joined())
    case .q8_0:
        return Array((0..<n / 32).map { _ in maxHalf + Array(repeating: 0x80, count: 32) }.joined())
    default:
        return Quantizer.encode(Array(repeating: 65504, count: n), as: type)
    }
}

// MARK: - Tests

@Suite(.serialized) struct KernelTests {
    @Test func blockLayoutSizes() {
        #expect(MemoryLayout<td_block_q4_0>.size == 18)
        #expect(MemoryLayout<td_block_q4_1>.size == 20)
        #expect(MemoryLayout<td_block_q8_0>.size == 34)
        #expect(MemoryLayout<td_block_q8_act>.size == 40)
        #expect(MemoryLayout<td_block_q4_0>.stride == 18)
        #expect(MemoryLayout<td_block_q4_1>.stride == 20)
        #expect(MemoryLayout<td_block_q8_0>.stride == 34)
        #expect(MemoryLayout<td_block_q8_act>.stride == 40)
    }

    @Test func rowBytesPerType() {
        #expect(td_row_bytes(Int32(GGMLType.q4_0.rawValue), 576) == 18 * 18)
        #expect(td_row_bytes(Int32(GGMLType.q4_1.rawValue), 576) == 18 * 20)
        #expect(td_row_bytes(Int32(GGMLType.q8_0.rawValue), 576) == 18 * 34)
        #expect(td_row_bytes(Int32(GGMLType.f16.rawValue), 7) == 14)
        #expect(td_row_bytes(Int32(GGMLType.q4_1.rawValue), 48) == 0)
        #expect(td_row_bytes(Int32(GGMLType.q3_K.rawValue), 256) == 0)
    }

    /// Element j of a 4-bit block is the low nibble of byte j and element j + 16 its high
    /// nibble. The block below (d = 1, m = -1) has low nibbles 0...15 and high nibbles
    /// 15...0, so it holds -1...14 and then 14...-1.
    @Test func q4_1NibbleOrder() {
        let block = bytes(fromHex: "003c00bcf0e1d2c3b4a5968778695a4b3c2d1e0f")
        let expected = (0..<16).map { Float($0 - 1) } + (0..<16).map { Float(14 - $0) }

        #expect(dequantize(.q4_1, block, count: 32) == expected)
        // All-ones activations quantize to q = 127 with scale 1/127, which half precision
        // stores as 0.0078735, so the exact sum 208 comes out as 0.0078735 * 127 * 240 - 32.
        // Activations of 127 have the exact scale 1 and give exactly 208 * 127.
        let halfScale = td_fp16_to_fp32(td_fp32_to_fp16(1 / 127.0))
        let onesExpected = halfScale * 127 * 240 - 32
        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                let ones = dotRow(.q4_1, block, Array(repeating: 1, count: 32))
                #expect(abs(ones - onesExpected) <= 1e-4, "ISA \(KernelGate.name(isa)): dot = \(ones)")
                #expect(abs(ones - 208) <= 208 * 1e-3, "ISA \(KernelGate.name(isa)): dot = \(ones)")
                let exact = dotRow(.q4_1, block, Array(repeating: 127, count: 32))
                #expect(exact == 208 * 127, "ISA \(KernelGate.name(isa)): dot = \(exact)")
            }
        }
    }

    @Test func quantizersMatchFormats() {
        // Q8_0 of 0, 1, ..., 31 scaled by 1/4: d = 7.75 / 127 and q = round(x / d).
        let ramp = (0..<32).map { Float($0) / 4 }
        let q8 = Quantizer.q8_0(ramp)
        #expect(q8.count == 34)
        #expect(q8[2...].map { Int8(bitPattern: $0) } == ramp.map { Int8(($0 / (7.75 / 127)).rounded()) })
        // Q4_0 of -8...7 (max by magnitude -8): d = 1, q = x + 8.
        let q4 = Quantizer.q4_0((0..<32).map { Float($0 % 16 - 8) })
        #expect(q4.count == 18)
        #expect(dequantize(.q4_0, q4, count: 32) == (0..<32).map { Float($0 % 16 - 8) })
        // Q4_1 of 2...17: d = 1, m = 2.
        let q41 = Quantizer.q4_1((0..<32).map { Float($0 % 16 + 2) })
        #expect(q41.count == 20)
        #expect(dequantize(.q4_1, q41, count: 32) == (0..<32).map { Float($0 % 16 + 2) })
    }

    /// Every ISA path, weight type and row length, on random and extreme rows, within 1e-3
    /// of the sum of the partial products' magnitudes from an exact float64 dot product of
    /// the dequantized weights and the activations the kernel multiplies.
    @Test func dotRowMatchesReference() {
        let seed: UInt64 = 0xD07_0001
        var rng = SplitMix64(seed: seed)
        let lengths = [32, 64, 96, 576, 1536]
        var cases: [(label: String, type: GGMLType, weights: [UInt8], x: [Float])] = []
        for type in kernelTypes {
            for n in lengths {
                let random = Quantizer.encode(rng.floats(n, scale: 2), as: type)
                let extreme = extremeRow(type, count: n)
                let alternating = (0..<n).map { Float($0 % 2 == 0 ? 127 : -127) }
                cases.append(("random n=\(n)", type, random, rng.floats(n, scale: 3)))
                cases.append(("random, x=+-127 n=\(n)", type, random, alternating))
                cases.append(("extreme, x=+-127 n=\(n)", type, extreme, alternating))
                cases.append(("extreme, x=1e4 n=\(n)", type, extreme, Array(repeating: 1e4, count: n)))
                cases.append(("extreme, x=+-1e4 mixed n=\(n)", type, extreme, (0..<n).map { $0 % 3 == 0 ? -1e4 : 1e4 }))
            }
        }

        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                for item in cases {
                    let result = dotRow(item.type, item.weights, item.x)
                    let reference = referenceDot(item.type, item.weights, item.x)
                    let label = "seed \(seed), ISA \(KernelGate.name(isa)), \(item.type.name) \(item.label)"
                    #expect(result.isFinite, "\(label): \(result)")
                    #expect(abs(Double(result) - reference.value) <= 1e-3 * reference.magnitude,
                            "\(label): \(result) vs \(reference.value)")
                }
            }
        }
    }

    /// Q4_1 and Q8_0 take the same operations in the same order on every path, so the
    /// scalar reference, AVX2 and AVX-512 agree bit for bit (odd and even block counts alike).
    @Test(arguments: [GGMLType.q4_1, .q8_0])
    func pathsAgreeBitwise(type: GGMLType) {
        let seed: UInt64 = 0xD07_0003
        var rng = SplitMix64(seed: seed)
        var cases: [(label: String, weights: [UInt8], x: [Float])] = []
        for n in [32, 64, 96, 576, 1536] {
            let random = Quantizer.encode(rng.floats(n, scale: 2), as: type)
            cases.append(("random n=\(n)", random, rng.floats(n, scale: 3)))
            cases.append(("extreme n=\(n)", extremeRow(type, count: n), (0..<n).map { Float($0 % 2 == 0 ? 127 : -127) }))
            cases.append(("random, x=1e4 n=\(n)", random, Array(repeating: 1e4, count: n)))
            // Block maximum 127 makes the activation scale 1, so x.5 values are rounding ties.
            cases.append(("random, half-way x n=\(n)", random, (0..<n).map { $0 % 32 == 0 ? 127 : Float($0 % 9) - 4.5 }))
            cases.append(("random, tiny x n=\(n)", random, rng.floats(n, scale: 1e-30)))
        }
        KernelGate.run {
            var results: [[Float]] = []
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                results.append(cases.map { dotRow(type, $0.weights, $0.x) })
            }
            for (index, item) in cases.enumerated() {
                let values = results.map { $0[index] }
                #expect(Set(values.map(\.bitPattern)).count == 1,
                        "seed \(seed), \(type.name) \(item.label): paths \(KernelGate.isaPaths.map(KernelGate.name)) gave \(values)")
            }
        }
    }

    /// A row read back from an interleaved copy dequantizes to the row-major row's floats,
    /// including rows of a partial last group.
    @Test(arguments: [GGMLType.q4_1, .q8_0])
    func interleavedRowsDequantizeLikeOriginal(type: GGMLType) {
        var rng = SplitMix64(seed: 0xD07_0004)
        let rows = 37, cols = 96
        let code = Int32(type.rawValue)
        let weights = Quantizer.encode(rng.floats(rows * cols, scale: 2), as: type)
        let rowBytes = td_row_bytes(code, Int64(cols))
        var copy = [UInt8](repeating: 0, count: td_repacked_bytes(code, Int64(rows), Int64(cols)))
        let status = weights.withUnsafeBytes { source in
            copy.withUnsafeMutableBytes { td_repack(code, source.baseAddress!, Int64(rows), Int64(cols), $0.baseAddress!) }
        }
        #expect(status == TD_OK)
        for row in 0..<rows {
            let expected = dequantize(type, Array(weights[row * rowBytes..<(row + 1) * rowBytes]), count: cols)
            var actual = [Float](repeating: .nan, count: cols)
            let rowStatus = copy.withUnsafeBytes { raw in
                actual.withUnsafeMutableBufferPointer {
                    td_dequantize_interleaved_row(td_interleaved_type(code), raw.baseAddress!, Int64(row), Int64(cols), $0.baseAddress!)
                }
            }
            #expect(rowStatus == TD_OK, "\(type.name) row \(row)")
            #expect(bitwiseDifference(actual, expected) == nil, "\(type.name) row \(row)")
        }
    }

    /// td_matmul computes every element with the path's dot product, or for interleaved
    /// copies (td_repack) with the same operations, so it must equal td_dot_row bit for bit
    /// whatever the layout, batch size and thread count.
    @Test(arguments: [
        (96, [GGMLType.q4_1, .q8_0, .f16], [37, 16, 5], false),
        (576, [GGMLType.q4_0, .f32, .bf16], [19, 33, 2], false),
        (96, [GGMLType.q4_1, .q4_1, .q4_1], [37, 16, 5], true),
        (576, [GGMLType.q4_1, .q8_0], [48, 7], true),
        (64, [GGMLType.q8_0, .q4_0], [33, 16], true),
        (16_416, [GGMLType.q8_0], [17], true),  // over 512 blocks: offsets computed per row
        (2_144, [GGMLType.q4_1], [21], true),   // 67 blocks: many pairs, then an odd last block
    ])
    func matmulEqualsDotRow(cols: Int, types: [GGMLType], rows: [Int], interleave: Bool) throws {
        let seed: UInt64 = 0xD07_0002 &+ UInt64(cols)
        var rng = SplitMix64(seed: seed)
        let maxBatch = 17, xStride = cols + 7
        let weights = zip(types, rows).map { type, count in Quantizer.encode(rng.floats(count * cols, scale: 1), as: type) }
        let x = rng.floats(maxBatch * xStride, scale: 4)
        let activationRows = (0..<maxBatch).map { Array(x[$0 * xStride..<$0 * xStride + cols]) }

        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                // expected[j][i][r]: matrix j, batch row i, output r.
                let expected: [[[Float]]] = types.indices.map { j in
                    let rowBytes = td_row_bytes(Int32(types[j].rawValue), Int64(cols))
                    return activationRows.map { xi in
                        (0..<rows[j]).map { r in dotRow(types[j], Array(weights[j][r * rowBytes..<(r + 1) * rowBytes]), xi) }
                    }
                }
                for threads in 1...3 {
                    for m in 1...maxBatch {
                        let outStrides = rows.map { $0 + 3 }
                        var outputs = zip(rows, outStrides).map { _, stride in [Float](repeating: .nan, count: m * stride) }
                        let status = runMatmul(types: types, rows: rows, weights: weights, outputs: &outputs,
                                               outStrides: outStrides, x: x, m: m, cols: cols, xStride: xStride, threads: threads,
                                               interleave: interleave)
                        let label = "seed \(seed), ISA \(KernelGate.name(isa)), \(threads) threads, m=\(m), interleaved \(interleave)"
                        #expect(status == TD_OK, "\(label)")
                        for j in types.indices {
                            for i in 0..<m {
                                let row = Array(outputs[j][i * outStrides[j]..<i * outStrides[j] + rows[j]])
                                #expect(bitwiseDifference(row, expected[j][i]) == nil,
                                        "\(label), matrix \(types[j].name), batch row \(i)")
                                let padding = outputs[j][i * outStrides[j] + rows[j]..<(i + 1) * outStrides[j]]
                                #expect(padding.allSatisfy { $0.isNaN }, "\(label): padding of \(types[j].name) written")
                            }
                        }
                    }
                }
            }
        }
    }

    private func runMatmul(types: [GGMLType], rows: [Int], weights: [[UInt8]], outputs: inout [[Float]],
                           outStrides: [Int], x: [Float], m: Int, cols: Int, xStride: Int, threads: Int,
                           interleave: Bool = false) -> Int32 {
        var kernelTypes = types.map { Int32($0.rawValue) }
        let weightBuffers = weights.indices.map { j -> UnsafeMutableRawBufferPointer in
            let repacked = interleave ? td_repacked_bytes(kernelTypes[j], Int64(rows[j]), Int64(cols)) : 0
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(repacked, weights[j].count), alignment: 64)
            weights[j].withUnsafeBytes { source in
                if repacked > 0 {
                    let status = td_repack(kernelTypes[j], source.baseAddress!, Int64(rows[j]), Int64(cols), buffer.baseAddress!)
                    precondition(status == TD_OK, "td_repack failed with status \(status)")
                    kernelTypes[j] = td_interleaved_type(kernelTypes[j])
                } else {
                    buffer.copyMemory(from: source)
                }
            }
            return buffer
        }
        let outBuffers = outputs.map { out -> UnsafeMutableBufferPointer<Float> in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: out.count)
            _ = buffer.initialize(from: out)
            return buffer
        }
        defer {
            weightBuffers.forEach { $0.deallocate() }
            outBuffers.forEach { $0.deallocate() }
        }
        let matrices = types.indices.map { j in
            td_matrix(type: kernelTypes[j], rows: Int64(rows[j]), data: UnsafeRawPointer(weightBuffers[j].baseAddress!),
                      out: outBuffers[j].baseAddress!, out_stride: Int64(outStrides[j]))
        }
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, td_matmul_scratch_bytes(Int64(m), Int64(cols))), alignment: 64)
        defer { scratch.deallocate() }
        let status = x.withUnsafeBufferPointer { xs in
            td_matmul(matrices, Int32(matrices.count), xs.baseAddress!, Int64(m), Int64(cols), Int64(xStride), scratch, Int32(threads))
        }
        for j in outputs.indices { outputs[j] = Array(outBuffers[j]) }
        return status
    }

    @Test func fp16RoundTripAllPatterns() {
        var mismatches: [UInt16] = []
        for bits in 0...UInt16.max {
            let value = td_fp16_to_fp32(bits)
            let exact = Float(Float16(bitPattern: bits))
            if exact.isNaN {
                let back = td_fp32_to_fp16(value)
                let backIsNaN = back & 0x7C00 == 0x7C00 && back & 0x03FF != 0
                if !value.isNaN || !backIsNaN || back & 0x8000 != bits & 0x8000 { mismatches.append(bits) }
            } else if value.bitPattern != exact.bitPattern || td_fp32_to_fp16(value) != bits {
                mismatches.append(bits)
            }
        }
        let mismatchCount = mismatches.count
        #expect(mismatchCount == 0, "patterns that do not round-trip, first: \(mismatches.prefix(10).map { String($0, radix: 16) })")
    }

    /// Float to half rounds to nearest, ties to even, like Swift's Float16 conversion,
    /// including subnormal results, overflow to infinity and underflow to zero.
    @Test func fp32ToFp16RoundsToNearestEven() {
        let seed: UInt64 = 0xD07_0003
        var rng = SplitMix64(seed: seed)
        var values: [Float] = [0, -0, 65504, 65519.99, 65520, -65520, 1e-8, 2.98e-8, 2.99e-8, 5.96e-8, 6.1e-5, .infinity, -.infinity]
        for _ in 0..<200_000 {
            // Exponents 2^-30 ... 2^17 cover zero, subnormal, normal and overflowing halves.
            let exponent = UInt32.random(in: 97...144, using: &rng)
            let sign = UInt32.random(in: 0...1, using: &rng) << 31
            values.append(Float(bitPattern: sign | exponent << 23 | UInt32.random(in: 0...0x7F_FFFF, using: &rng)))
        }
        // Exact ties between two halves.
        for bits in stride(from: UInt16(0), to: 0x7C00, by: 97) {
            let low = Float(Float16(bitPattern: bits)), high = Float(Float16(bitPattern: bits + 1))
            values.append((low + high) / 2)
        }
        let wrong = values.filter { td_fp32_to_fp16($0) != Float16($0).bitPattern }
        let wrongCount = wrong.count
        #expect(wrongCount == 0, "seed \(seed): values that round differently, first: \(wrong.prefix(5))")
    }

    @Test func bf16Conversion() {
        #expect(td_bf16_to_fp32(0x3F80) == 1)
        #expect(td_bf16_to_fp32(0xC2F7) == -123.5)
        #expect(td_bf16_to_fp32(0x7F80) == .infinity)
        #expect(td_bf16_to_fp32(0x7FC0).isNaN)
    }

    @Test func quantizeActivationsPerBlock() {
        let seed: UInt64 = 0xD07_0004
        var rng = SplitMix64(seed: seed)
        let x = rng.floats(96, scale: 5) + Array(repeating: 0, count: 32)
        let dequantized = quantizedActivations(x)

        for block in 0..<4 {
            let values = x[block * 32..<(block + 1) * 32]
            let amax = Double(values.reduce(0) { max($0, abs($1)) })
            for i in block * 32..<(block + 1) * 32 {
                // Rounding to the nearest of 255 levels is at most half a step, amax / 254.
                // The scale is then rounded to half precision (relative error 2^-11), which
                // moves a level of at most 127 steps by up to amax / 2048.
                #expect(abs(dequantized[i] - Double(x[i])) <= (amax / 254 + amax / 2048) * (1 + 1e-6), "seed \(seed), element \(i)")
            }
        }
        #expect(dequantized[96...].allSatisfy { $0 == 0 }, "seed \(seed): an all-zero block must stay zero")
    }

    // MARK: - Row operations

    @Test func rmsnormMatchesReference() {
        let seed: UInt64 = 0xD07_0005
        var rng = SplitMix64(seed: seed)
        let m = 3, n = 37
        let eps: Float = 1e-5
        let x = rng.floats(m * n, scale: 3), w = rng.floats(n, scale: 2)
        var y = [Float](repeating: .nan, count: m * n)
        var inPlace = x

        KernelGate.run {
            #expect(td_rmsnorm(x, w, &y, Int64(m), Int64(n), eps) == TD_OK)
            inPlace.withUnsafeMutableBufferPointer { buffer in
                #expect(td_rmsnorm(buffer.baseAddress!, w, buffer.baseAddress!, Int64(m), Int64(n), eps) == TD_OK)
            }
        }
        for row in 0..<m {
            let values = x[row * n..<(row + 1) * n].map(Double.init)
            let scale = 1 / (values.reduce(0) { $0 + $1 * $1 } / Double(n) + Double(eps)).squareRoot()
            for j in 0..<n {
                let reference = values[j] * scale * Double(w[j])
                #expect(abs(Double(y[row * n + j]) - reference) <= 1e-6 * abs(reference) + 1e-12, "seed \(seed), row \(row), element \(j)")
            }
        }
        #expect(inPlace == y, "seed \(seed): in-place result differs")
    }

    /// Both RoPE layouts rotate each pair by the exact angle within float rounding, and leave
    /// the row padding alone.
    @Test(arguments: RopeLayout.allCases)
    func ropeMatchesReference(layout: RopeLayout) {
        let seed: UInt64 = 0xD07_0006
        var rng = SplitMix64(seed: seed)
        let heads = 3, headDim = 6, stride = heads * headDim + 5
        let positions: [Int32] = [0, 7, 1000, 32767]
        let base: Float = 10_000
        let original = rng.floats(positions.count * stride, scale: 2)
        var x = original

        KernelGate.run {
            #expect(layout.apply(&x, rows: positions.count, stride: stride, heads: heads, headDim: headDim,
                                 positions: positions, base: base) == TD_OK)
        }
        for (row, position) in positions.enumerated() {
            // The kernel builds pair i's angle as Float(position) * scale^i by repeated Float
            // multiplication, as llama.cpp does; the rotation is checked against that angle,
            // and the angle against the exact one within its float rounding.
            let thetaScale = powf(base, -2.0 / Float(headDim))
            var floatAngle = Float(position)
            for i in 0..<headDim / 2 {
                let exact = Double(position) * pow(Double(base), -2.0 * Double(i) / Double(headDim))
                let angle = Double(floatAngle)
                #expect(abs(angle - exact) <= Double(i + 2) * 0x1p-23 * exact, "seed \(seed), position \(position), pair \(i)")
                for head in 0..<heads {
                    let (first, second) = layout.pair(i, headDim: headDim)
                    let a = row * stride + head * headDim + first, b = row * stride + head * headDim + second
                    let x0 = Double(original[a]), x1 = Double(original[b])
                    let label = "seed \(seed), \(layout), position \(position), head \(head), pair \(i)"
                    #expect(abs(Double(x[a]) - (x0 * cos(angle) - x1 * sin(angle))) <= 1e-6 * 4, "\(label)")
                    #expect(abs(Double(x[b]) - (x0 * sin(angle) + x1 * cos(angle))) <= 1e-6 * 4, "\(label)")
                }
                floatAngle *= thetaScale
            }
            let padding = row * stride + heads * headDim..<(row + 1) * stride
            #expect(x[padding] == original[padding], "seed \(seed), \(layout): row \(row) padding changed")
        }
    }

    /// td_rope_halves on a head equals td_rope_pairs on the same head with its elements
    /// interleaved (element i and i + headDim/2 moved next to each other), bit for bit: both
    /// kernels turn pair i by the same float angle.
    @Test func ropeLayoutsShareAngles() {
        let seed: UInt64 = 0xD07_000E
        var rng = SplitMix64(seed: seed)
        let heads = 2, headDim = 64, rowStride = heads * headDim
        let positions: [Int32] = [0, 1, 5, 511, 4095, 131_071]
        let base: Float = 1_000_000
        var halves = rng.floats(positions.count * rowStride, scale: 3)
        var pairs = halves
        for start in stride(from: 0, to: halves.count, by: headDim) {
            for i in 0..<headDim / 2 {
                pairs[start + 2 * i] = halves[start + i]
                pairs[start + 2 * i + 1] = halves[start + i + headDim / 2]
            }
        }

        KernelGate.run {
            #expect(td_rope_halves(&halves, Int64(positions.count), Int64(rowStride), Int32(heads), Int32(headDim), positions, base) == TD_OK)
            #expect(td_rope_pairs(&pairs, Int64(positions.count), Int64(rowStride), Int32(heads), Int32(headDim), positions, base) == TD_OK)
        }
        for start in stride(from: 0, to: halves.count, by: headDim) {
            for i in 0..<headDim / 2 {
                let label = "seed \(seed), head at \(start), pair \(i)"
                #expect(halves[start + i].bitPattern == pairs[start + 2 * i].bitPattern, "\(label), first element")
                #expect(halves[start + i + headDim / 2].bitPattern == pairs[start + 2 * i + 1].bitPattern, "\(label), second element")
            }
        }
    }

    @Test func addBiasAddsPerRow() {
        let seed: UInt64 = 0xD07_000F
        var rng = SplitMix64(seed: seed)
        let rows = 3, n = 13, stride = 17
        let original = rng.floats(rows * stride, scale: 4)
        let bias = rng.floats(n, scale: 1)
        var x = original

        KernelGate.run {
            #expect(td_add_bias(&x, Int64(rows), Int64(stride), bias, Int64(n)) == TD_OK)
            #expect(td_add_bias(&x, 1, Int64(n - 1), bias, Int64(n)) == TD_EINVAL)
        }
        for row in 0..<rows {
            for j in 0..<stride {
                let index = row * stride + j
                let expected = j < n ? original[index] + bias[j] : original[index]
                #expect(x[index].bitPattern == expected.bitPattern, "seed \(seed), row \(row), element \(j)")
            }
        }
    }

    /// td_convert_to_half gives the bits whose float value td_round_half_finite returns, and
    /// saturates finite values that round past 65504 instead of making them infinite.
    @Test func halfConversionMatchesRounding() {
        let seed: UInt64 = 0xD07_0010
        var rng = SplitMix64(seed: seed)
        let edges: [Float] = [0, -0.0, 1, -1, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-14, 0x1.ffcp-15, 6.1e-5, 65504, -65504,
                              65519.996, -65519.996, .infinity, -.infinity, Float.leastNormalMagnitude / 4, 0.1, 1.0 / 3]
        let inputs = edges + rng.floats(2000, scale: 70_000) + rng.floats(2000, scale: 1e-3)
        var halves = [td_fp16](repeating: 0, count: inputs.count)
        var rounded = [Float](repeating: .nan, count: inputs.count)

        KernelGate.run {
            #expect(td_convert_to_half(inputs, &halves, Int64(inputs.count)) == TD_OK)
            #expect(td_round_to_half(inputs, &rounded, Int64(inputs.count)) == TD_OK)
        }
        for (index, x) in inputs.enumerated() {
            let stored = td_fp16_to_fp32(halves[index])
            if abs(x) < 65520 || x.isInfinite {
                #expect(stored.bitPattern == rounded[index].bitPattern, "seed \(seed), input \(x): stored \(stored), rounded \(rounded[index])")
                #expect(halves[index] == Quantizer.fp16Bits(x), "seed \(seed), input \(x): bits differ from Float16's")
            } else {
                #expect(stored == (x > 0 ? 65504 : -65504), "seed \(seed), input \(x) stored as \(stored), expected saturation")
            }
        }

        let nan: [Float] = [.nan]
        var nanHalf: [td_fp16] = [0]
        #expect(td_convert_to_half(nan, &nanHalf, 1) == TD_OK)
        #expect(td_fp16_to_fp32(nanHalf[0]).isNaN)
    }

    /// The SIMD paths convert KV cache values to half precision eight at a time. Every path
    /// gives Float16's bits: for normal and subnormal halves, for ties, and for runs of eight
    /// with a value out of half range, which the scalar loop takes over.
    @Test func halfConversionPathsAgreeBitwise() {
        var rng = SplitMix64(seed: 0xD07_0011)
        var inputs = rng.floats(4000, scale: 60_000) + rng.floats(4000, scale: 1e-5) + rng.floats(4000, scale: 1e-7)
        // k * (1 + 2^-11) is halfway between two halves when k is a power of two, close to
        // halfway otherwise.
        inputs += (0..<64).map { Float(1 + $0) * (1 + 0x1p-11) * ($0 % 2 == 0 ? 1 : -1) }
        inputs += [70_000, 1, 2, 3, 65_504, -65_504, 0x1p-25, 0x1.8p-25, -0.0, .infinity, 0, 0x1p-14]
        inputs += rng.floats(21, scale: 100)
        let expected = inputs.map { abs($0) <= 65_504 || $0.isInfinite ? Quantizer.fp16Bits($0) : ($0 > 0 ? 0x7bff : 0xfbff) }
        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                var halves = [td_fp16](repeating: 0, count: inputs.count)
                #expect(td_convert_to_half(inputs, &halves, Int64(inputs.count)) == TD_OK)
                let mismatches = inputs.indices.filter { halves[$0] != expected[$0] }
                #expect(mismatches.isEmpty,
                        "ISA \(KernelGate.name(isa)): \(mismatches.count) inputs differ, first \(mismatches.first.map { inputs[$0] } ?? 0)")
            }
        }
    }

    /// The exponential of attention and SwiGLU gives the same bits on every path, also for
    /// inputs outside its table (|x| >= 88, infinities, NaN) among normal ones in a vector.
    /// It stays within one unit in the last place of float64 exp.
    @Test func exponentialPathsAgreeBitwise() {
        var rng = SplitMix64(seed: 0xD07_0014)
        var x = rng.floats(997, scale: 30) + rng.floats(200, scale: 120)
        x += [0, -0.0, 1, -1, 88.72283, 88.72284, -87.3, -103.27892, -103.279, -103.97207, -103.98, -200,
              .infinity, -.infinity, .nan, .leastNonzeroMagnitude, -.greatestFiniteMagnitude]
        x += (0..<40).map { Float(-110 + $0) + 0.5 }
        let scalar = KernelGate.run(isa: Int32(TD_ISA_SCALAR.rawValue)) { () -> [Float] in
            var y = [Float](repeating: 0, count: x.count)
            #expect(td_exp_row(x, &y, Int64(x.count)) == TD_OK)
            return y
        }
        for isa in KernelGate.isaPaths {
            let y = KernelGate.run(isa: isa) { () -> [Float] in
                var y = [Float](repeating: 0, count: x.count)
                #expect(td_exp_row(x, &y, Int64(x.count)) == TD_OK)
                return y
            }
            // Bit patterns, so NaN results must match too.
            #expect(y.map(\.bitPattern) == scalar.map(\.bitPattern), "ISA \(KernelGate.name(isa))")
        }
        for (input, output) in zip(x, scalar) where input.isFinite {
            let reference = Foundation.exp(Double(input))
            if reference > Double(Float.greatestFiniteMagnitude) {
                #expect(output == .infinity, "e^\(input) overflows: \(output)")
            } else {
                #expect(abs(Double(output) - reference) <= Double(Float(reference).ulp), "e^\(input): \(output) vs \(reference)")
            }
        }
        #expect(scalar[x.firstIndex(of: .infinity)!] == .infinity)
        #expect(scalar[x.firstIndex(of: -.infinity)!] == 0)
        #expect(scalar[x.firstIndex { $0.isNaN }!].isNaN)
    }

    /// SwiGLU's vector path takes the scalar loop's operations per element.
    @Test func swigluPathsAgreeBitwise() {
        var rng = SplitMix64(seed: 0xD07_0015)
        let gate = rng.floats(1_003, scale: 40) + [-100, 100, 0, -0.0, .infinity, -.infinity]
        let up = rng.floats(gate.count, scale: 3)
        func run(_ isa: Int32) -> [Float] {
            KernelGate.run(isa: isa) { () -> [Float] in
                var out = [Float](repeating: .nan, count: gate.count)
                #expect(td_swiglu(gate, up, &out, Int64(gate.count)) == TD_OK)
                return out
            }
        }
        let scalar = run(Int32(TD_ISA_SCALAR.rawValue))
        for isa in KernelGate.isaPaths {
            #expect(run(isa).map(\.bitPattern) == scalar.map(\.bitPattern), "ISA \(KernelGate.name(isa))")
        }
    }

    @Test func swigluMatchesReference() {
        let seed: UInt64 = 0xD07_0007
        var rng = SplitMix64(seed: seed)
        let gate = rng.floats(37, scale: 20) + [-100, 100, 0, -0.0]
        let up = rng.floats(gate.count, scale: 3)
        var out = [Float](repeating: .nan, count: gate.count)

        KernelGate.run {
            #expect(td_swiglu(gate, up, &out, Int64(gate.count)) == TD_OK)
        }
        for i in gate.indices {
            let g = Double(gate[i])
            let reference = g / (1 + exp(-g)) * Double(up[i])
            #expect(abs(Double(out[i]) - reference) <= 1e-6 * abs(reference) + 1e-30, "seed \(seed), element \(i): \(out[i]) vs \(reference)")
        }
    }

    @Test func attentionMatchesReference() throws {
        let problem = AttentionProblem(seed: 0xD07_0008)
        let out = problem.run(rows: Array(problem.slotLists.indices), threads: 2)

        for (row, slots) in problem.slotLists.enumerated() {
            let reference = problem.reference(row: row, slots: slots)
            for j in 0..<problem.heads * problem.headDim {
                #expect(abs(Double(out[row][j]) - reference[j]) <= 1e-5, "seed \(problem.seed), row \(row), element \(j)")
            }
        }
    }

    /// The AVX attention kernel repeats the scalar kernel's arithmetic lane for lane, so all
    /// paths give the same bits, and match float64 within 1e-5.
    @Test(arguments: [8, 16, 64, 128])
    func attentionPathsAgreeBitwise(headDim: Int) {
        let problem = AttentionProblem(seed: 0xD07_000A + UInt64(headDim), headDim: headDim)
        let rows = Array(problem.slotLists.indices)
        let scalar = problem.run(rows: rows, threads: 2, isa: Int32(TD_ISA_SCALAR.rawValue))
        for isa in KernelGate.isaPaths {
            let out = problem.run(rows: rows, threads: 2, isa: isa)
            for row in rows {
                #expect(bitwiseDifference(out[row], scalar[row]) == nil, "seed \(problem.seed), ISA \(KernelGate.name(isa)), row \(row)")
            }
        }
        for (row, slots) in problem.slotLists.enumerated() {
            let reference = problem.reference(row: row, slots: slots)
            for j in 0..<problem.heads * headDim {
                #expect(abs(Double(scalar[row][j]) - reference[j]) <= 1e-5, "seed \(problem.seed), row \(row), element \(j)")
            }
        }
    }

    /// The SIMD kernels take up to four query heads of a KV group in one pass, and the
    /// driver splits groups differently for other thread counts. Every group size, split and
    /// path must give the scalar kernel's bits for each head.
    @Test(arguments: [(1, 1), (2, 1), (5, 1), (8, 2), (12, 2)])
    func attentionGroupSizesAgreeBitwise(heads: Int, kvHeads: Int) {
        let problem = AttentionProblem(seed: 0xD07_0013 + UInt64(heads), headDim: 64, heads: heads, kvHeads: kvHeads)
        let rows = Array(problem.slotLists.indices)
        let scalar = problem.run(rows: rows, threads: 1, isa: Int32(TD_ISA_SCALAR.rawValue))
        for isa in KernelGate.isaPaths {
            for threads in 1...3 {
                let out = problem.run(rows: rows, threads: threads, isa: isa, storage: .float32)
                for row in rows {
                    #expect(bitwiseDifference(out[row], scalar[row]) == nil,
                            "seed \(problem.seed), \(heads) heads over \(kvHeads), ISA \(KernelGate.name(isa)), \(threads) threads, row \(row)")
                }
            }
        }
    }

    /// A row's attention output depends only on its query and listed slots: computing it alone,
    /// in a batch, in reverse order or with 1, 2 or 3 threads gives the same bits.
    @Test(arguments: [KVStorage.float32, .float16])
    func attentionRowIndependentOfBatch(storage: KVStorage) {
        let problem = AttentionProblem(seed: 0xD07_0009)
        let rows = Array(problem.slotLists.indices)
        let alone = rows.map { problem.run(rows: [$0], threads: 1, storage: storage)[0] }

        for threads in 1...3 {
            let batch = problem.run(rows: rows, threads: threads, storage: storage)
            let reversed = problem.run(rows: rows.reversed(), threads: threads, storage: storage)
            for row in rows {
                #expect(bitwiseDifference(batch[row], alone[row]) == nil, "seed \(problem.seed), \(storage), \(threads) threads, row \(row)")
                #expect(bitwiseDifference(reversed[rows.count - 1 - row], alone[row]) == nil,
                        "seed \(problem.seed), \(storage), \(threads) threads, row \(row) in reverse order")
            }
        }
    }

    /// Keys and values stored as F16 give the bits of the same half-precision values in F32
    /// slots, on every ISA path and thread count. The rows' slot lists skip slots as tree
    /// masks do. Head size 12 takes the scalar kernel on every path, the others the SIMD one.
    @Test(arguments: [8, 12, 16, 64])
    func attentionHalfStorageEqualsRoundedFloats(headDim: Int) {
        let problem = AttentionProblem(seed: 0xD07_0011 + UInt64(headDim), headDim: headDim)
        let rows = Array(problem.slotLists.indices)
        let scalar = problem.run(rows: rows, threads: 1, isa: Int32(TD_ISA_SCALAR.rawValue), storage: .float16)
        for isa in KernelGate.isaPaths {
            for threads in 1...3 {
                let rounded = problem.run(rows: rows, threads: threads, isa: isa, storage: .roundedFloat32)
                let halves = problem.run(rows: rows, threads: threads, isa: isa, storage: .float16)
                for row in rows {
                    let label = "seed \(problem.seed), ISA \(KernelGate.name(isa)), \(threads) threads, row \(row)"
                    #expect(bitwiseDifference(halves[row], rounded[row]) == nil, "\(label): F16 against rounded F32")
                    #expect(bitwiseDifference(halves[row], scalar[row]) == nil, "\(label): F16 against scalar F16")
                }
            }
        }
    }

    @Test func attentionRejectsOtherKVTypes() {
        let query = [Float](repeating: 1, count: 8)
        let key = [Float](repeating: 1, count: 8)
        var out = [Float](repeating: 0, count: 8)
        let offsets: [Int32] = [0, 1]
        let slots: [Int32] = [0]
        let status = key.withUnsafeBytes { keyBytes in
            let bases: [UnsafeRawPointer?] = [keyBytes.baseAddress]
            return KernelGate.run {
                td_attention(query, 8, 1, 1, 1, 8, Int32(TD_TYPE_Q8_0.rawValue), bases, bases, 8, offsets, slots, &out, 8, 1)
            }
        }
        #expect(status == TD_ETYPE)
    }
}

/// How an attention test stores its keys and values.
enum KVStorage: String, Sendable, CustomTestStringConvertible {
    /// The floats as drawn, in F32 slots.
    case float32
    /// Each float rounded to half precision by td_round_to_half, in F32 slots.
    case roundedFloat32
    /// Half floats written by td_convert_to_half.
    case float16

    var testDescription: String { rawValue }

    var kernelType: Int32 {
        Int32(self == .float16 ? TD_TYPE_F16.rawValue : TD_TYPE_F32.rawValue)
    }

    /// Copies `floats` into a new buffer in this storage; the caller deallocates it.
    func store(_ floats: [Float]) -> UnsafeMutableRawBufferPointer {
        let elementBytes = self == .float16 ? 2 : 4
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: floats.count * elementBytes, alignment: 64)
        let status: Int32
        switch self {
        case .float32:
            buffer.copyBytes(from: floats.withUnsafeBytes { Array($0) })
            status = TD_OK
        case .roundedFloat32:
            status = td_round_to_half(floats, buffer.baseAddress!.assumingMemoryBound(to: Float.self), Int64(floats.count))
        case .float16:
            status = td_convert_to_half(floats, buffer.baseAddress!.assumingMemoryBound(to: td_fp16.self), Int64(floats.count))
        }
        precondition(status == TD_OK, "storing \(floats.count) floats as \(self) failed with status \(status)")
        return buffer
    }
}

/// Grouped-query attention inputs with odd sizes: 6 query heads over 2 KV heads of 12
/// elements, padded strides, and query rows from two sequences with their own KV buffers.
/// Other head counts exercise other group sizes.
private struct AttentionProblem {
    let seed: UInt64
    let heads: Int, kvHeads: Int
    let slotCount = 20
    let headDim: Int
    var qStride: Int { heads * headDim + 3 }
    var kvStride: Int { kvHeads * headDim + 5 }
    let queries: [[Float]]
    /// keys[sequence], values[sequence]: slotCount slots of kvStride floats.
    let keys: [[Float]]
    let values: [[Float]]
    let sequenceOfRow = [0, 0, 0, 1, 1, 0]
    let slotLists: [[Int32]] = [[0, 1, 2], [0, 2, 5, 7, 9, 11, 13], [3], Array(0..<17), [4, 19], Array(0..<20)]

    /// Head sizes that are multiples of 8 take the SIMD kernel on the AVX paths; others
    /// (12 by default) take the scalar kernel on every path.
    init(seed: UInt64, headDim: Int = 12, heads: Int = 6, kvHeads: Int = 2) {
        self.seed = seed
        self.headDim = headDim
        self.heads = heads
        self.kvHeads = kvHeads
        var rng = SplitMix64(seed: seed)
        let kvFloats = 20 * (kvHeads * headDim + 5)
        queries = (0..<6).map { _ in rng.floats(heads * headDim + 3, scale: 2) }
        keys = (0..<2).map { _ in rng.floats(kvFloats, scale: 2) }
        values = (0..<2).map { _ in rng.floats(kvFloats, scale: 3) }
    }

    /// Runs td_attention on the listed rows, in that order, with keys and values in
    /// `storage`, and returns each row's output.
    func run(rows: [Int], threads: Int, isa: Int32? = nil, storage: KVStorage = .float32) -> [[Float]] {
        let m = rows.count
        let outStride = heads * headDim + 1
        let q = rows.flatMap { queries[$0] }
        var offsets: [Int32] = [0]
        var slots: [Int32] = []
        for row in rows {
            slots += slotLists[row]
            offsets.append(Int32(slots.count))
        }
        var out = [Float](repeating: .nan, count: m * outStride)
        let keyBuffers = keys.map(storage.store)
        let valueBuffers = values.map(storage.store)
        defer {
            keyBuffers.forEach { $0.deallocate() }
            valueBuffers.forEach { $0.deallocate() }
        }
        let keyBases: [UnsafeRawPointer?] = rows.map { UnsafeRawPointer(keyBuffers[sequenceOfRow[$0]].baseAddress!) }
        let valueBases: [UnsafeRawPointer?] = rows.map { UnsafeRawPointer(valueBuffers[sequenceOfRow[$0]].baseAddress!) }
        let status = KernelGate.run(isa: isa) {
            td_attention(q, Int64(qStride), Int64(m), Int32(heads), Int32(kvHeads), Int32(headDim), storage.kernelType,
                         keyBases, valueBases, Int64(kvStride), offsets, slots, &out, Int64(outStride), Int32(threads))
        }
        precondition(status == TD_OK, "td_attention failed with status \(status)")
        return (0..<m).map { Array(out[$0 * outStride..<$0 * outStride + heads * headDim]) }
    }

    /// Float64 attention for one row over its listed slots.
    func reference(row: Int, slots: [Int32]) -> [Double] {
        let group = heads / kvHeads
        let k = keys[sequenceOfRow[row]], v = values[sequenceOfRow[row]]
        var result = [Double](repeating: 0, count: heads * headDim)
        for head in 0..<heads {
            let kvOffset = (head / group) * headDim
            let scores = slots.map { slot -> Double in
                var dot = 0.0
                for j in 0..<headDim {
                    dot += Double(queries[row][head * headDim + j]) * Double(k[Int(slot) * kvStride + kvOffset + j])
                }
                return dot / Double(headDim).squareRoot()
            }
            let top = scores.max()!
            let weights = scores.map { exp($0 - top) }
            let total = weights.reduce(0, +)
            for (index, slot) in slots.enumerated() {
                for j in 0..<headDim {
                    result[head * headDim + j] += weights[index] / total * Double(v[Int(slot) * kvStride + kvOffset + j])
                }
            }
        }
        return result
    }
}
