import Kernels
import TailDraft

/// Measures the machine's limits (memory read bandwidth, int8 multiply-add peak) and each
/// quantized matrix kernel against them, at one thread count, in one run.
///
/// Weights are random blocks with a fixed scale. For M = 1 the weights of each call come from
/// a different copy in a pool larger than the L3 cache, so they stream from DRAM as in decode.
struct KernelBenchmark {
    let threads: Int
    let rounds: Int
    static let shapes: [(rows: Int, cols: Int)] = [(576, 576), (1536, 576), (576, 1536), (49_152, 576)]
    /// Qwen2.5-1.5B's attention and MLP shapes (rows x cols), where Q4_K_M files use the
    /// K-quants and Q5_0.
    static let qwenShapes: [(rows: Int, cols: Int)] = [(1536, 1536), (8960, 1536), (1536, 8960)]
    static let types: [GGMLType] = [.q4_0, .q4_1, .q8_0, .q5_0, .q4_K, .q5_K, .q6_K]
    static let batchSizes = [1, 2, 4, 8, 16, 32, 64]
    /// Weight bytes cycled through per measurement, larger than a 32 MiB L3.
    static let poolBytes = 160 << 20

    struct Row {
        var type: GGMLType
        var rows: Int
        var cols: Int
        var batch: Int
        var seconds: Double
        var gigabytesPerSecond: Double
        var gigaMACsPerSecond: Double
    }

    struct Report {
        var threads: Int
        var bandwidth: Double
        var peak: Double
        /// GMAC/s when each int8 dot instruction also feeds a float multiply-add (see
        /// td_int8_scaled_peak): the ceiling of the Q4_1 kernels' accumulation order.
        var scaledPeak: Double
        var rows: [Row]

        func table() -> String {
            var lines = ["cpu: \(cpuModel())", "kernels: \(KernelPath.active), threads: \(threads)",
                         "memory read bandwidth: \(decimals(bandwidth, 1)) GB/s, int8 peak: \(decimals(peak, 1)) GMAC/s",
                         "int8 peak with a float multiply-add per dot instruction (Q4_1's accumulation order): " +
                         "\(decimals(scaledPeak, 1)) GMAC/s" + (peak > 0 ? " (\(decimals(100 * scaledPeak / peak, 1)) % of int8 peak)" : ""), "",
                         "type  shape        M   us/call    GB/s   of bandwidth  GMAC/s  of peak"]
            for row in rows {
                let shape = "\(row.rows)x\(row.cols)"
                lines.append("\(row.type.name.padding(5)) \(shape.padding(12)) \(String(row.batch).padding(3)) " +
                             "\(decimals(row.seconds * 1e6, 1).padding(10)) \(decimals(row.gigabytesPerSecond, 1).padding(6)) " +
                             "\((decimals(100 * row.gigabytesPerSecond / bandwidth, 1) + " %").padding(13)) " +
                             "\(decimals(row.gigaMACsPerSecond, 1).padding(7)) \(peak > 0 ? decimals(100 * row.gigaMACsPerSecond / peak, 1) + " %" : "-")")
            }
            return lines.joined(separator: "\n")
        }

        func json() -> String {
            let entries = rows.map {
                "{\"type\": \"\($0.type.name)\", \"rows\": \($0.rows), \"cols\": \($0.cols), \"m\": \($0.batch), " +
                "\"seconds\": \($0.seconds), \"gb_per_second\": \($0.gigabytesPerSecond), \"gmac_per_second\": \($0.gigaMACsPerSecond)}"
            }
            return "{\"threads\": \(threads), \"isa\": \"\(KernelPath.active)\", \"bandwidth_gb_per_second\": \(bandwidth), " +
                   "\"int8_peak_gmac_per_second\": \(peak), \"scaled_int8_peak_gmac_per_second\": \(scaledPeak), \"results\": [\(entries.joined(separator: ", "))]}"
        }

    }

    func run(progress: Bool) -> Report {
        let bandwidth = measureBandwidth()
        let peak = measurePeak(td_int8_peak)
        let scaledPeak = measurePeak(td_int8_scaled_peak)
        if progress { Console.error("limits measured: \(Int(bandwidth)) GB/s, \(Int(peak)) GMAC/s") }
        var rows: [Row] = []
        for type in Self.types {
            for shape in Self.shapes(for: type) {
                rows += measureMatmul(type: type, rows: shape.rows, cols: shape.cols)
            }
            if progress { Console.error("\(type.name) done") }
        }
        return Report(threads: threads, bandwidth: bandwidth, peak: peak, scaledPeak: scaledPeak, rows: rows)
    }

    /// SmolLM2's shapes for the 32-element block types, Qwen2.5-1.5B's for Q5_0 and the
    /// K-quants.
    static func shapes(for type: GGMLType) -> [(rows: Int, cols: Int)] {
        [.q5_0, .q4_K, .q5_K, .q6_K].contains(type) ? qwenShapes : shapes
    }

    /// Median GB/s of summing a 512 MiB array.
    private func measureBandwidth() -> Double {
        let count = (512 << 20) / 8
        let data = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
        defer { data.deallocate() }
        for i in 0..<count { data[i] = UInt64(i) }
        var samples: [Double] = []
        var checksum: UInt64 = 0
        for _ in 0..<max(3, rounds) {
            let start = now()
            checksum &+= td_sum_words(data, count, Int32(threads))
            samples.append(Double(count * 8) / (now() - start) / 1e9)
        }
        precondition(checksum != 1, "keeps the sum alive")
        return Summary(samples: samples).median
    }

    /// Median GMAC/s of a register-only int8 loop (td_int8_peak or td_int8_scaled_peak); 0 on
    /// the scalar path.
    private func measurePeak(_ loop: (Int64, Int32) -> Int64) -> Double {
        let perIteration = td_int8_peak_macs_per_iteration()
        guard perIteration > 0 else { return 0 }
        let iterations: Int64 = 20_000_000
        var samples: [Double] = []
        for _ in 0..<max(3, rounds) {
            let start = now()
            let value = loop(iterations, Int32(threads))
            precondition(value != 1, "keeps the loop alive")
            samples.append(Double(perIteration) * Double(iterations) * Double(threads) / (now() - start) / 1e9)
        }
        return Summary(samples: samples).median
    }

    private func measureMatmul(type: GGMLType, rows: Int, cols: Int) -> [Row] {
        let rowBytes = td_row_bytes(Int32(type.rawValue), Int64(cols))
        let matrixBytes = rowBytes * rows
        let copies = max(1, Self.poolBytes / matrixBytes)
        let pool = UnsafeMutableRawPointer.allocate(byteCount: copies * matrixBytes, alignment: 64)
        defer { pool.deallocate() }
        fillBlocks(pool, bytes: copies * matrixBytes, type: type)
        // Measure the layout the engine multiplies: interleaved where the type has one.
        let kernelType = interleave(pool, copies: copies, type: type, rows: rows, cols: cols)
        let maxBatch = Self.batchSizes.max()!
        let x = (0..<(maxBatch * cols)).map { Float(($0 * 37) % 101) / 50 - 1 }
        var out = [Float](repeating: 0, count: maxBatch * rows)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: td_matmul_scratch_bytes(Int64(maxBatch), Int64(cols)), alignment: 64)
        defer { scratch.deallocate() }

        return Self.batchSizes.map { m in
            var samples: [Double] = []
            let calls = max(4, min(copies, 64))
            for round in 0..<rounds {
                let start = now()
                for call in 0..<calls {
                    let weights = pool + ((round * calls + call) % copies) * matrixBytes
                    out.withUnsafeMutableBufferPointer { buffer in
                        var matrix = td_matrix(type: kernelType, rows: Int64(rows), data: weights,
                                               out: buffer.baseAddress!, out_stride: Int64(rows))
                        let status = td_matmul(&matrix, 1, x, Int64(m), Int64(cols), Int64(cols), scratch, Int32(threads))
                        precondition(status == TD_OK, "td_matmul failed with status \(status)")
                    }
                }
                samples.append((now() - start) / Double(calls))
            }
            let seconds = Summary(samples: samples).median
            return Row(type: type, rows: rows, cols: cols, batch: m, seconds: seconds,
                       gigabytesPerSecond: Double(matrixBytes) / seconds / 1e9,
                       gigaMACsPerSecond: Double(rows * cols * m) / seconds / 1e9)
        }
    }

    /// Rewrites each copy in the pool into the type's interleaved layout when it has one and
    /// the copy keeps its size (rows a multiple of 16). Returns the td_type to multiply.
    private func interleave(_ pool: UnsafeMutableRawPointer, copies: Int, type: GGMLType, rows: Int, cols: Int) -> Int32 {
        let rowMajor = Int32(type.rawValue)
        let matrixBytes = td_row_bytes(rowMajor, Int64(cols)) * rows
        guard td_repacked_bytes(rowMajor, Int64(rows), Int64(cols)) == matrixBytes else { return rowMajor }
        let staging = UnsafeMutableRawPointer.allocate(byteCount: matrixBytes, alignment: 64)
        defer { staging.deallocate() }
        for copy in 0..<copies {
            let matrix = pool + copy * matrixBytes
            staging.copyMemory(from: matrix, byteCount: matrixBytes)
            precondition(td_repack(rowMajor, staging, Int64(rows), Int64(cols), matrix) == TD_OK, "td_repack failed")
        }
        return td_interleaved_type(rowMajor)
    }

    /// Random quantized blocks whose half-precision scales are all 1/64 (and Q4_1 minimums
    /// -1/8, Q4_K and Q5_K minimum scales 1/64), so every value is finite.
    private func fillBlocks(_ pool: UnsafeMutableRawPointer, bytes: Int, type: GGMLType) {
        var random = RandomGenerator(seed: 7)
        let words = pool.bindMemory(to: UInt64.self, capacity: bytes / 8)
        for i in 0..<(bytes / 8) { words[i] = random.next() }
        let blockBytes = type.blockBytes!
        let bytesPointer = pool.assumingMemoryBound(to: UInt8.self)
        // Q6_K keeps its scale d in the last two bytes of a block, the other types in the first two.
        let scaleOffset = type == .q6_K ? blockBytes - 2 : 0
        for block in stride(from: 0, to: bytes - blockBytes + 1, by: blockBytes) {
            bytesPointer[block + scaleOffset] = 0x00; bytesPointer[block + scaleOffset + 1] = 0x24   // d = 1/64
            if type == .q4_1 { bytesPointer[block + 2] = 0x00; bytesPointer[block + 3] = 0xB0 }  // m = -1/8
            if type == .q4_K || type == .q5_K { bytesPointer[block + 2] = 0x00; bytesPointer[block + 3] = 0x24 }  // dmin = 1/64
        }
    }
}
