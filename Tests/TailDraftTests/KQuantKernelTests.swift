import Foundation
import Kernels
import Testing
@testable import TailDraft

// MARK: - Helpers

/// The types these tests cover, with the row lengths the dot product tests use.
private let kQuantTypes: [GGMLType] = [.q4_K, .q5_K, .q6_K]
private let newTypes: [GGMLType] = [.q5_0] + kQuantTypes

private func rowLengths(_ type: GGMLType) -> [Int] {
    type == .q5_0 ? [32, 64, 576, 1536] : [256, 512, 1536]
}

/// Returns the float64 dot product of the weights, dequantized in Swift, with the activations
/// the kernel multiplies. It also returns the sum of the magnitudes of the partial products,
/// which counts the scaled levels and the K-quant minimum terms apart because the kernels sum
/// them apart.
private func referenceDot(_ type: GGMLType, _ weights: [UInt8], _ x: [Float]) -> (value: Double, magnitude: Double) {
    let elements = ReferenceDequantizer.elements(type, weights, count: x.count)
    let activations = quantizedActivations(x)
    var value = 0.0, magnitude = 0.0
    for i in elements.indices {
        value += Double(elements[i].value) * activations[i]
        magnitude += abs(Double(elements[i].scaled) * activations[i]) + abs(Double(elements[i].offset) * activations[i])
    }
    return (value, magnitude)
}

private enum ExtremeLevels {
    /// Every level at its maximum: 15 for Q5_0 (31 - 16), 15 or 31 for Q4_K and Q5_K, 31
    /// for Q6_K (63 - 32), with Q6_K scales of 127.
    case highest
    /// Every level at its minimum: -16 for Q5_0, 0 for Q4_K and Q5_K, -32 for Q6_K, with Q6_K
    /// scales of -128.
    case lowest
}

/// Builds one block with every half-precision scale at 65504 (the largest finite half), the
/// 6-bit K-quant scales and minimums at 63, and every level at `levels`.
private func extremeBlock(_ type: GGMLType, levels: ExtremeLevels) -> [UInt8] {
    let maxHalf: [UInt8] = [0xFF, 0x7B]
    let fill: UInt8 = levels == .highest ? 0xFF : 0x00
    let sixBitScales = [UInt8](repeating: 0xFF, count: 12)
    switch type {
    case .q5_0: return maxHalf + Array(repeating: fill, count: 20)
    case .q4_K: return maxHalf + maxHalf + sixBitScales + Array(repeating: fill, count: 128)
    case .q5_K: return maxHalf + maxHalf + sixBitScales + Array(repeating: fill, count: 160)
    case .q6_K:
        let scale: Int8 = levels == .highest ? 127 : -128
        return Array(repeating: fill, count: 192) + Array(repeating: UInt8(bitPattern: scale), count: 16) + maxHalf
    default: preconditionFailure("no block layout for \(type.name)")
    }
}

/// Returns a row of n elements made of copies of `block`.
private func row(of block: [UInt8], _ type: GGMLType, count n: Int) -> [UInt8] {
    Array(repeatElement(block, count: n / type.blockSize).joined())
}

/// Random bytes in every field, with finite half-precision scales drawn from -0.5...0.5.
private func randomBitsRow(_ type: GGMLType, count n: Int, rng: inout SplitMix64) -> [UInt8] {
    let blockBytes = type.blockBytes!
    var data = (0..<n / type.blockSize * blockBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let halfOffsets: [Int] = switch type {
    case .q5_0: [0]
    case .q4_K, .q5_K: [0, 2]
    default: [208]
    }
    for block in stride(from: 0, to: data.count, by: blockBytes) {
        for offset in halfOffsets {
            let bits = Quantizer.fp16Bits(rng.uniform(-0.5...0.5))
            data[block + offset] = UInt8(bits & 0xFF)
            data[block + offset + 1] = UInt8(bits >> 8)
        }
    }
    return data
}

// MARK: - Tests

@Suite(.serialized) struct KQuantKernelTests {
    @Test func blockLayoutSizes() {
        #expect(MemoryLayout<td_block_q5_0>.size == 22)
        #expect(MemoryLayout<td_block_q4_K>.size == 144)
        #expect(MemoryLayout<td_block_q5_K>.size == 176)
        #expect(MemoryLayout<td_block_q6_K>.size == 210)
        #expect(MemoryLayout<td_block_q5_0>.stride == 22)
        #expect(MemoryLayout<td_block_q4_K>.stride == 144)
        #expect(MemoryLayout<td_block_q5_K>.stride == 176)
        #expect(MemoryLayout<td_block_q6_K>.stride == 210)
        for type in newTypes {
            #expect(td_type_supported(Int32(type.rawValue)) == 1, "\(type.name)")
            #expect(type.isSupported, "\(type.name)")
        }
    }

    @Test func rowBytesRequireWholeBlocks() {
        #expect(td_row_bytes(Int32(GGMLType.q5_0.rawValue), 576) == 18 * 22)
        #expect(td_row_bytes(Int32(GGMLType.q4_K.rawValue), 1536) == 6 * 144)
        #expect(td_row_bytes(Int32(GGMLType.q5_K.rawValue), 256) == 176)
        #expect(td_row_bytes(Int32(GGMLType.q6_K.rawValue), 8960) == 35 * 210)
        #expect(td_row_bytes(Int32(GGMLType.q5_0.rawValue), 48) == 0)
        #expect(td_row_bytes(Int32(GGMLType.q4_K.rawValue), 128) == 0)
        #expect(td_row_bytes(Int32(GGMLType.q5_K.rawValue), 288) == 0)
        #expect(td_row_bytes(Int32(GGMLType.q6_K.rawValue), 576) == 0)
    }

    /// Elements 0...15 of a Q5_0 block come from the low nibbles and bits 0...15 of qh,
    /// elements 16...31 from the high nibbles and bits 16...31. The block below (d = 1) has
    /// low nibbles 0...15, high nibbles 15...0 and only bits 16...31 set, so it holds
    /// -16...-1 and then 15...0.
    @Test func q5_0BitOrder() {
        let block = bytes(fromHex: "003c0000ffff" + "f0e1d2c3b4a5968778695a4b3c2d1e0f")
        let expected = (0..<16).map { Float($0 - 16) } + (0..<16).map { Float(15 - $0) }

        #expect(dequantize(.q5_0, block, count: 32) == expected)
        #expect(ReferenceDequantizer.values(.q5_0, block, count: 32) == expected)
        #expect(Quantizer.q5_0(expected) == block)
        // Activations of 127 have the exact scale 1, so every path must give the exact sum.
        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                let dot = dotRow(.q5_0, block, Array(repeating: 127, count: 32))
                #expect(dot == -16 * 127, "ISA \(KernelGate.name(isa)): dot = \(dot)")
            }
        }
    }

    /// A Q4_K and a Q5_K super-block with hand-packed 6-bit scales and minimums, including
    /// values of 16 and more whose top bits sit in the upper bits of bytes 0...7.
    @Test(arguments: [GGMLType.q4_K, .q5_K])
    func q4_5_KLayout(type: GGMLType) {
        let scales: [UInt8] = [1, 2, 3, 63, 16, 33, 48, 63]
        let mins: [UInt8] = [0, 5, 10, 63, 17, 32, 47, 60]
        let packed = bytes(fromHex: "4182c3ff40858aff1001f0cf")
        #expect(Quantizer.packScalesAndMins(scales: scales, mins: mins) == packed)

        let qh = (0..<32).map { UInt8(truncatingIfNeeded: $0 * 37) }
        let qs = (0..<128).map { (l: Int) -> UInt8 in UInt8(l % 16) | UInt8(15 - l % 16) << 4 }
        let highBits: [UInt8] = type == .q5_K ? qh : []
        let block: [UInt8] = bytes(fromHex: "003c0038") + packed + highBits + qs
        var expected: [Float] = []
        for s in 0..<8 {
            for l in 0..<32 {
                var level = s % 2 == 0 ? l % 16 : 15 - l % 16
                if type == .q5_K && (qh[l] >> UInt8(s)) & 1 == 1 { level += 16 }
                expected.append(Float(scales[s]) * Float(level) - 0.5 * Float(mins[s]))
            }
        }

        #expect(dequantize(type, block, count: 256) == expected)
        #expect(ReferenceDequantizer.values(type, block, count: 256) == expected)
        let exact = expected.reduce(0, +) * 127
        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                let dot = dotRow(type, block, Array(repeating: 127, count: 256))
                #expect(dot == exact, "ISA \(KernelGate.name(isa)): dot = \(dot), expected \(exact)")
            }
        }
    }

    /// Q6_K elements checked by hand: element i = 128h + 32g + l takes its low bits from
    /// ql[64h + 32(g % 2) + l] (high nibble for g >= 2), bits 4...5 from bits 2g...2g+1 of
    /// qh[32h + l], and its scale from scales[i / 16]. Here ql[k] = k, qh[k] = k and d = 0.25.
    @Test func q6_KLayout() {
        let scales: [Int8] = [-128, -100, -50, -9, -1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 127]
        let ql = (0..<128).map { UInt8($0) }, qh = (0..<64).map { UInt8($0) }
        let block: [UInt8] = ql + qh + scales.map { UInt8(bitPattern: $0) } + [0x00, 0x34]
        #expect(block.count == 210)
        let values = dequantize(.q6_K, block, count: 256)

        // Element 0: q = 0 - 32, scale -128. Element 45 (g = 1, l = 13): low nibble 13 of
        // ql[45], bits 2...3 of qh[13] = 3, so q = 61 - 32, scale -50. Element 77 (g = 2,
        // l = 13): high nibble of ql[13] is 0, bits 4...5 of qh[13] are 0, scale -1.
        // Element 200 (h = 1, g = 2, l = 8): high nibble of ql[72] is 4, bits 4...5 of qh[40]
        // are 2, so q = 36 - 32, scale 34. Element 255: high nibble of ql[127] is 7, bits
        // 6...7 of qh[63] are 0, so q = 7 - 32, scale 127.
        #expect(values[0] == 0.25 * -128 * -32)
        #expect(values[45] == 0.25 * -50 * 29)
        #expect(values[77] == 0.25 * -1 * -32)
        #expect(values[200] == 0.25 * 34 * 4)
        #expect(values[255] == 0.25 * 127 * -25)
        #expect(ReferenceDequantizer.values(.q6_K, block, count: 256) == values)

        let levels = (0..<256).map { i -> UInt8 in
            UInt8((Double(values[i]) / (0.25 * Double(scales[i / 16]))).rounded() + 32)
        }
        #expect(Quantizer.packQ6_K(levels) == Array(block[0..<192]))
    }

    /// td_dequantize_row gives bit for bit the values of the Swift dequantizer, which follows
    /// ggml's formulas in ggml's order, on blocks of random bits.
    @Test(arguments: newTypes)
    func dequantizeMatchesSwiftReference(type: GGMLType) {
        let seed: UInt64 = 0x6B51_0001 &+ UInt64(type.rawValue)
        var rng = SplitMix64(seed: seed)
        for n in rowLengths(type) {
            let data = randomBitsRow(type, count: n, rng: &rng)
            let kernel = dequantize(type, data, count: n)
            let reference = ReferenceDequantizer.values(type, data, count: n)
            #expect(bitwiseDifference(kernel, reference) == nil, "seed \(seed), \(type.name), n=\(n)")
        }
    }

    /// td_dequantize_row gives bit for bit the values that the gguf Python package of the
    /// llama.cpp project dequantizes the same random blocks to. scripts/make-kquant-golden.py
    /// wrote the fixture.
    @Test func dequantizeMatchesGGUFPackage() throws {
        let golden = try JSONDecoder().decode(DequantizeGolden.self, from: Data(contentsOf: Fixtures.url("kquant-dequantize.json")))
        #expect(golden.cases.map(\.type) == ["Q5_0", "Q4_K", "Q5_K", "Q6_K"])

        for item in golden.cases {
            let type = try #require(GGMLType.allCases.first { $0.name == item.type }, "unknown type \(item.type)")
            let expected = item.values_bits.map { Float(bitPattern: UInt32($0, radix: 16)!) }
            let values = dequantize(type, bytes(fromHex: item.blocks_hex), count: item.count)
            #expect(expected.count == item.count, "\(item.type)")
            #expect(bitwiseDifference(values, expected) == nil, "\(item.type) against \(golden.generator)")
        }
    }

    /// The test quantizers keep the RMS error well below the RMS of the values, so the tiny
    /// models' weights are meaningful. Bounds are loose: the K-quant encoders round scales
    /// to 6 or 8 bits without searching for better ones.
    @Test(arguments: [(GGMLType.q5_0, 0.06), (.q4_K, 0.12), (.q5_K, 0.06), (.q6_K, 0.03)])
    func quantizersRoundTrip(type: GGMLType, bound: Double) {
        let seed: UInt64 = 0x6B51_0002
        var rng = SplitMix64(seed: seed)
        let values = rng.floats(1536, scale: 1)
        let restored = dequantize(type, Quantizer.encode(values, as: type), count: values.count)
        let errorSquares = zip(values, restored).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let valueSquares = values.reduce(0.0) { $0 + Double($1) * Double($1) }
        let relativeRMS = (errorSquares / valueSquares).squareRoot()
        #expect(relativeRMS <= bound, "seed \(seed), \(type.name): relative RMS error \(relativeRMS)")
    }

    /// Every ISA path, type and row length, on random and extreme blocks, within 1e-3 of the
    /// sum of the partial products' magnitudes from an exact float64 dot product of the
    /// weights, dequantized in Swift, and the activations the kernel multiplies. For the
    /// extreme rows all products share one sign, so this is 1e-3 of the result itself.
    @Test(arguments: newTypes)
    func dotRowMatchesFloat64Reference(type: GGMLType) {
        let seed: UInt64 = 0x6B51_0003 &+ UInt64(type.rawValue)
        var rng = SplitMix64(seed: seed)
        let highest = extremeBlock(type, levels: .highest)
        let lowest = extremeBlock(type, levels: .lowest)

        var cases: [(label: String, weights: [UInt8], x: [Float])] = []
        for n in rowLengths(type) {
            let quantized = Quantizer.encode(rng.floats(n, scale: 2), as: type)
            let randomBits = randomBitsRow(type, count: n, rng: &rng)
            let alternating = (0..<n).map { Float($0 % 2 == 0 ? 127 : -127) }
            let large = [Float](repeating: 1e4, count: n)
            cases.append(("quantized, random x n=\(n)", quantized, rng.floats(n, scale: 3)))
            cases.append(("quantized, x=+-127 n=\(n)", quantized, alternating))
            cases.append(("random bits, random x n=\(n)", randomBits, rng.floats(n, scale: 3)))
            cases.append(("random bits, x=1e4 n=\(n)", randomBits, large))
            cases.append(("highest, x=+-127 n=\(n)", row(of: highest, type, count: n), alternating))
            cases.append(("highest, x=1e4 n=\(n)", row(of: highest, type, count: n), large))
            cases.append(("highest, x=+-1e4 mixed n=\(n)", row(of: highest, type, count: n), (0..<n).map { $0 % 3 == 0 ? -1e4 : 1e4 }))
            cases.append(("lowest, x=1e4 n=\(n)", row(of: lowest, type, count: n), large))
            cases.append(("lowest, x=-127 n=\(n)", row(of: lowest, type, count: n), [Float](repeating: -127, count: n)))
        }

        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                for item in cases {
                    let result = dotRow(type, item.weights, item.x)
                    let reference = referenceDot(type, item.weights, item.x)
                    let label = "seed \(seed), ISA \(KernelGate.name(isa)), \(type.name) \(item.label)"
                    #expect(result.isFinite, "\(label): \(result)")
                    #expect(abs(Double(result) - reference.value) <= 1e-3 * reference.magnitude,
                            "\(label): \(result) vs \(reference.value)")
                }
            }
        }
    }

    /// Every batch row of a td_matmul call with M = 2...64 equals, bit for bit, the same row
    /// computed alone (M = 1), at 1 and 2 threads on every ISA path. M >= 4 runs the
    /// four-activation-row kernels, so this also checks them against the one-row kernels.
    /// Q5_0 uses 17 blocks per row so the AVX-512 kernels' odd last block is covered.
    @Test(arguments: [(512, [GGMLType.q4_K, .q5_K, .q6_K], [37, 16, 21]), (544, [GGMLType.q5_0], [37])])
    func batchRowsEqualSingleRows(cols: Int, types: [GGMLType], rows: [Int]) {
        let seed: UInt64 = 0x6B51_0004 &+ UInt64(cols)
        var rng = SplitMix64(seed: seed)
        let maxBatch = 64, xStride = cols + 5
        let matrices = zip(types, rows).map { type, count in
            MatmulInput(type: type, rows: count, data: Quantizer.encode(rng.floats(count * cols, scale: 1), as: type))
        }
        let x = rng.floats(maxBatch * xStride, scale: 4)
        let activationRows = (0..<maxBatch).map { Array(x[$0 * xStride..<$0 * xStride + cols]) }

        KernelGate.run {
            for isa in KernelGate.isaPaths {
                KernelGate.select(isa)
                let label = "seed \(seed), ISA \(KernelGate.name(isa))"
                // alone[i][j]: batch row i computed by itself, matrix j.
                let alone = activationRows.map { row in runMatmul(matrices, x: row, m: 1, cols: cols, xStride: cols, threads: 1) }
                for (j, matrix) in matrices.enumerated() {
                    let rowBytes = td_row_bytes(Int32(matrix.type.rawValue), Int64(cols))
                    let single = (0..<matrix.rows).map { r in dotRow(matrix.type, Array(matrix.data[r * rowBytes..<(r + 1) * rowBytes]), activationRows[5]) }
                    #expect(bitwiseDifference(alone[5][j][0], single) == nil, "\(label), \(matrix.type.name): td_matmul vs td_dot_row")
                }
                for threads in 1...2 {
                    for m in 2...maxBatch {
                        let batch = runMatmul(matrices, x: x, m: m, cols: cols, xStride: xStride, threads: threads)
                        for (j, matrix) in matrices.enumerated() {
                            for i in 0..<m {
                                #expect(bitwiseDifference(batch[j][i], alone[i][j][0]) == nil,
                                        "\(label), \(threads) threads, \(matrix.type.name), row \(i) of M=\(m)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// K-quant rows must be whole super-blocks: the kernels reject 288 columns (9 blocks of
    /// 32, not a multiple of 256).
    @Test(arguments: kQuantTypes)
    func partialSuperBlockRejected(type: GGMLType) {
        let weights = [UInt8](repeating: 0, count: 4096)
        let x = [Float](repeating: 1, count: 288)
        var result: Float = 0
        let status = weights.withUnsafeBytes { td_dot_row(Int32(type.rawValue), $0.baseAddress!, x, 288, &result) }
        #expect(status == TD_EINVAL, "\(type.name): status \(status)")

        var out = [Float](repeating: 0, count: 4)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: td_matmul_scratch_bytes(1, 288), alignment: 64)
        defer { scratch.deallocate() }
        let matmulStatus = weights.withUnsafeBytes { w in
            out.withUnsafeMutableBufferPointer { o in
                var matrix = td_matrix(type: Int32(type.rawValue), rows: 4, data: w.baseAddress!, out: o.baseAddress!, out_stride: 4)
                return td_matmul(&matrix, 1, x, 1, 288, 288, scratch, 1)
            }
        }
        #expect(matmulStatus == TD_EINVAL, "\(type.name): status \(matmulStatus)")
    }
}

/// Blocks of random bits and their values as the gguf Python package dequantizes them.
private struct DequantizeGolden: Decodable {
    struct Case: Decodable {
        let type: String
        let count: Int
        let blocks_hex: String
        /// Float32 bit patterns in hexadecimal, in element order.
        let values_bits: [String]
    }

    let generator: String
    let cases: [Case]
}

/// One weight matrix for `runMatmul`.
private struct MatmulInput {
    let type: GGMLType
    let rows: Int
    let data: [UInt8]
}

/// Runs td_matmul over `matrices` for the first m rows of x and returns out[j][i]: matrix j's
/// outputs for batch row i. Output rows are padded so a write past a row shows up.
private func runMatmul(_ matrices: [MatmulInput], x: [Float], m: Int, cols: Int, xStride: Int, threads: Int) -> [[[Float]]] {
    let weightBuffers = matrices.map { matrix -> UnsafeMutableRawBufferPointer in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: matrix.data.count, alignment: 64)
        matrix.data.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return buffer
    }
    let outStrides = matrices.map { $0.rows + 3 }
    let outBuffers = zip(matrices, outStrides).map { _, stride in
        UnsafeMutableBufferPointer<Float>.allocate(capacity: m * stride)
    }
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: td_matmul_scratch_bytes(Int64(m), Int64(cols)), alignment: 64)
    defer {
        weightBuffers.forEach { $0.deallocate() }
        outBuffers.forEach { $0.deallocate() }
        scratch.deallocate()
    }
    for buffer in outBuffers { buffer.initialize(repeating: .nan) }
    let tdMatrices = matrices.indices.map { j in
        td_matrix(type: Int32(matrices[j].type.rawValue), rows: Int64(matrices[j].rows), data: UnsafeRawPointer(weightBuffers[j].baseAddress!),
                  out: outBuffers[j].baseAddress!, out_stride: Int64(outStrides[j]))
    }
    let status = x.withUnsafeBufferPointer { xs in
        td_matmul(tdMatrices, Int32(tdMatrices.count), xs.baseAddress!, Int64(m), Int64(cols), Int64(xStride), scratch, Int32(threads))
    }
    precondition(status == TD_OK, "td_matmul failed with status \(status)")
    return matrices.indices.map { j in
        (0..<m).map { i in
            let start = i * outStrides[j]
            let padding = outBuffers[j][start + matrices[j].rows..<start + outStrides[j]]
            precondition(padding.allSatisfy { $0.isNaN }, "td_matmul wrote past row \(i) of matrix \(j)")
            return Array(outBuffers[j][start..<start + matrices[j].rows])
        }
    }
}
