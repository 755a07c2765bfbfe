import Foundation
@testable import TailDraft

/// Swift encoders for Q5_0 and the K-quants (Q4_K, Q5_K, Q6_K), producing the block layouts of
/// Kernels/include/td_quant.h.
///
/// Q5_0 follows ggml's reference quantizer. The K-quant encoders are simpler than ggml's,
/// which search for the scales that minimize the error: they pick each sub-block's scale and
/// minimum from its range and round to nearest. The files they write are valid for any GGUF
/// reader; only the quantization error is larger than ggml's.
extension Quantizer {
    static let superBlockSize = 256

    /// Q5_0: d = (the value of largest magnitude, with its sign) / -16,
    /// q = min(31, trunc(x / d + 16.5)). The low nibbles are stored as in Q4_0, and bit 4 of
    /// element i is bit i of the little-endian word qh.
    static func q5_0(_ values: [Float]) -> [UInt8] {
        precondition(values.count % blockSize == 0, "Q5_0 needs a multiple of 32 values, got \(values.count)")
        var writer = ByteWriter()
        for start in stride(from: 0, to: values.count, by: blockSize) {
            let block = Array(values[start..<start + blockSize])
            var amax: Float = 0
            var signedMax: Float = 0
            for x in block where abs(x) > amax {
                amax = abs(x)
                signedMax = x
            }
            let d = signedMax / -16
            let inverse: Float = d != 0 ? 1 / d : 0
            let levels = block.map { UInt8(min(31, Int8(($0 * inverse + 16.5).rounded(.towardZero)))) }
            writer.append(fp16Bits(d))
            writer.append(bytes: packQ5_0(levels))
        }
        return writer.bytes
    }

    /// Packs 32 levels (0...31) as Q5_0's qh (4 bytes) and qs (16 bytes).
    static func packQ5_0(_ levels: [UInt8]) -> [UInt8] {
        var highBits: UInt32 = 0
        for (i, level) in levels.enumerated() where level & 16 != 0 { highBits |= 1 << UInt32(i) }
        var bytes = withUnsafeBytes(of: highBits.littleEndian) { Array($0) }
        for j in 0..<blockSize / 2 { bytes.append(levels[j] & 15 | (levels[j + 16] & 15) << 4) }
        return bytes
    }

    /// Packs eight 6-bit scales and eight 6-bit minimums into the 12 bytes of a Q4_K or Q5_K
    /// super-block. Sub-blocks 0...3 keep both in the low 6 bits of bytes 0...7. Sub-blocks
    /// 4...7 keep their low 4 bits in bytes 8...11 and their top 2 bits in the top bits of
    /// bytes 0...7.
    static func packScalesAndMins(scales: [UInt8], mins: [UInt8]) -> [UInt8] {
        precondition(scales.count == 8 && mins.count == 8 && (scales + mins).allSatisfy { $0 < 64 }, "expected 8 + 8 six-bit values")
        var packed = [UInt8](repeating: 0, count: 12)
        for s in 0..<4 {
            packed[s] = scales[s] | (scales[s + 4] >> 4) << 6
            packed[s + 4] = mins[s] | (mins[s + 4] >> 4) << 6
            packed[s + 8] = scales[s + 4] & 15 | (mins[s + 4] & 15) << 4
        }
        return packed
    }

    /// Encodes Q4_K (levels = 16) or Q5_K (levels = 32). Each 32-element sub-block gets the
    /// scale (max - min) / (levels - 1) and the minimum -min(0, min x). d and dmin are the
    /// largest of those divided by 63. Each sub-block's 6-bit scale and minimum are its scale
    /// and minimum in units of d and dmin, rounded.
    private static func q4_5_K(_ values: [Float], levels: Int) -> [UInt8] {
        let typeName = levels == 16 ? "Q4_K" : "Q5_K"
        precondition(values.count % superBlockSize == 0, "\(typeName) needs a multiple of 256 values, got \(values.count)")
        var writer = ByteWriter()
        for start in stride(from: 0, to: values.count, by: superBlockSize) {
            let block = Array(values[start..<start + superBlockSize])
            var subScales: [Float] = [], subMins: [Float] = []
            for s in 0..<8 {
                let sub = block[32 * s..<32 * (s + 1)]
                let low = min(0, sub.min()!), high = sub.max()!
                subScales.append((high - low) / Float(levels - 1))
                subMins.append(-low)
            }
            let d = Float(Float16(subScales.max()! / 63)), dmin = Float(Float16(subMins.max()! / 63))
            let scales = subScales.map { d > 0 ? UInt8(min(63, ($0 / d).rounded())) : 0 }
            let mins = subMins.map { dmin > 0 ? UInt8(min(63, ($0 / dmin).rounded())) : 0 }

            var q = [UInt8](repeating: 0, count: superBlockSize)
            for s in 0..<8 {
                let scale = d * Float(scales[s]), offset = dmin * Float(mins[s])
                guard scale > 0 else { continue }
                for l in 0..<32 {
                    let level = ((block[32 * s + l] + offset) / scale).rounded()
                    q[32 * s + l] = UInt8(max(0, min(Float(levels - 1), level)))
                }
            }
            writer.append(fp16Bits(d))
            writer.append(fp16Bits(dmin))
            writer.append(bytes: packScalesAndMins(scales: scales, mins: mins))
            if levels == 32 {
                var qh = [UInt8](repeating: 0, count: 32)
                for s in 0..<8 {
                    for l in 0..<32 where q[32 * s + l] & 16 != 0 { qh[l] |= 1 << UInt8(s) }
                }
                writer.append(bytes: qh)
            }
            for p in 0..<4 {
                for l in 0..<32 { writer.append(q[64 * p + l] & 15 | (q[64 * p + 32 + l] & 15) << 4) }
            }
        }
        return writer.bytes
    }

    static func q4_K(_ values: [Float]) -> [UInt8] { q4_5_K(values, levels: 16) }

    static func q5_K(_ values: [Float]) -> [UInt8] { q4_5_K(values, levels: 32) }

    /// Q6_K: each 16-element sub-block gets the scale (its value of largest magnitude, with its
    /// sign) / -32. d is the largest scale magnitude / 127, and the int8 scales are the
    /// sub-block scales in units of d, rounded. q = round(x / (d * scale)) + 32, clamped to
    /// 0...63.
    static func q6_K(_ values: [Float]) -> [UInt8] {
        precondition(values.count % superBlockSize == 0, "Q6_K needs a multiple of 256 values, got \(values.count)")
        var writer = ByteWriter()
        for start in stride(from: 0, to: values.count, by: superBlockSize) {
            let block = Array(values[start..<start + superBlockSize])
            var subScales: [Float] = []
            for s in 0..<16 {
                var amax: Float = 0, signedMax: Float = 0
                for x in block[16 * s..<16 * (s + 1)] where abs(x) > amax {
                    amax = abs(x)
                    signedMax = x
                }
                subScales.append(signedMax / -32)
            }
            let d = Float(Float16(subScales.map(abs).max()! / 127))
            let scales = subScales.map { d > 0 ? Int8(max(-128, min(127, ($0 / d).rounded()))) : 0 }
            var q = [UInt8](repeating: 32, count: superBlockSize)
            for i in 0..<superBlockSize {
                let scale = d * Float(scales[i / 16])
                guard scale != 0 else { continue }
                q[i] = UInt8(max(0, min(63, (block[i] / scale).rounded() + 32)))
            }
            writer.append(bytes: packQ6_K(q))
            writer.append(bytes: scales.map { UInt8(bitPattern: $0) })
            writer.append(fp16Bits(d))
        }
        return writer.bytes
    }

    /// Packs 256 levels (0...63) as Q6_K's ql (128 bytes) and qh (64 bytes): element
    /// 128h + 32g + l has its low 4 bits in ql[64h + 32(g % 2) + l] (low nibble for g < 2,
    /// high nibble otherwise) and its top 2 bits at bits 2g...2g+1 of qh[32h + l].
    static func packQ6_K(_ q: [UInt8]) -> [UInt8] {
        var ql = [UInt8](repeating: 0, count: 128), qh = [UInt8](repeating: 0, count: 64)
        for h in 0..<2 {
            for g in 0..<4 {
                for l in 0..<32 {
                    let level = q[128 * h + 32 * g + l]
                    ql[64 * h + 32 * (g % 2) + l] |= (level & 15) << (g < 2 ? 0 : 4)
                    qh[32 * h + l] |= (level >> 4) << UInt8(2 * g)
                }
            }
        }
        return ql + qh
    }
}

/// Dequantizes Q5_0 and K-quant bytes in Swift, from the layouts ggml defines, so the C
/// kernels are checked against code that shares nothing with them.
///
/// Each element is `scaled - offset`: the scaled level and the sub-block minimum term, which
/// the dot products accumulate apart (offset is 0 for Q5_0 and Q6_K). Values are computed
/// in Float in ggml's order, so `value` must equal td_dequantize_row's output bit for bit.
enum ReferenceDequantizer {
    struct Element {
        var scaled: Float
        var offset: Float
        var value: Float { scaled - offset }
    }

    static func half(_ bytes: ArraySlice<UInt8>) -> Float {
        let start = bytes.startIndex
        return Float(Float16(bitPattern: UInt16(bytes[start]) | UInt16(bytes[start + 1]) << 8))
    }

    /// Unpacks the 6-bit scale and minimum of sub-block s from the 12 packed bytes.
    static func scaleAndMin(_ packed: ArraySlice<UInt8>, _ s: Int) -> (scale: UInt8, min: UInt8) {
        let p = Array(packed)
        if s < 4 { return (p[s] & 63, p[s + 4] & 63) }
        return (p[s + 4] & 15 | (p[s - 4] >> 6) << 4, p[s + 4] >> 4 | (p[s] >> 6) << 4)
    }

    static func elements(_ type: GGMLType, _ data: [UInt8], count: Int) -> [Element] {
        switch type {
        case .q5_0: return q5_0(data, count: count)
        case .q4_K: return q4_5_K(data, count: count, hasHighBits: false)
        case .q5_K: return q4_5_K(data, count: count, hasHighBits: true)
        case .q6_K: return q6_K(data, count: count)
        default: preconditionFailure("no reference dequantizer for \(type.name)")
        }
    }

    static func values(_ type: GGMLType, _ data: [UInt8], count: Int) -> [Float] {
        elements(type, data, count: count).map(\.value)
    }

    private static func q5_0(_ data: [UInt8], count: Int) -> [Element] {
        var result: [Element] = []
        for b in 0..<count / 32 {
            let block = data[b * 22..<(b + 1) * 22]
            let base = block.startIndex
            let d = half(block)
            let highBits = (0..<4).reduce(UInt32(0)) { $0 | UInt32(block[base + 2 + $1]) << (8 * UInt32($1)) }
            for i in 0..<32 {
                let byte = block[base + 6 + i % 16]
                let nibble = i < 16 ? byte & 15 : byte >> 4
                let level = Int(nibble) | Int((highBits >> UInt32(i)) & 1) << 4
                result.append(Element(scaled: Float(level - 16) * d, offset: 0))
            }
        }
        return result
    }

    private static func q4_5_K(_ data: [UInt8], count: Int, hasHighBits: Bool) -> [Element] {
        let blockBytes = hasHighBits ? 176 : 144
        var result: [Element] = []
        for b in 0..<count / 256 {
            let block = Array(data[b * blockBytes..<(b + 1) * blockBytes])
            let d = half(block[0..<2]), dmin = half(block[2..<4])
            let packed = block[4..<16]
            let qhStart = 16, qsStart = hasHighBits ? 48 : 16
            for s in 0..<8 {
                let (scale, minimum) = scaleAndMin(packed, s)
                let factor = d * Float(scale), offset = dmin * Float(minimum)
                for l in 0..<32 {
                    let byte = block[qsStart + 32 * (s / 2) + l]
                    var level = Int(s % 2 == 0 ? byte & 15 : byte >> 4)
                    if hasHighBits && (block[qhStart + l] >> UInt8(s)) & 1 == 1 { level += 16 }
                    result.append(Element(scaled: factor * Float(level), offset: offset))
                }
            }
        }
        return result
    }

    private static func q6_K(_ data: [UInt8], count: Int) -> [Element] {
        var result: [Element] = []
        for b in 0..<count / 256 {
            let block = Array(data[b * 210..<(b + 1) * 210])
            let d = half(block[208..<210])
            for i in 0..<256 {
                let h = i / 128, g = (i % 128) / 32, l = i % 32
                let low = block[64 * h + 32 * (g % 2) + l]
                let nibble = g < 2 ? low & 15 : low >> 4
                let top = (block[128 + 32 * h + l] >> UInt8(2 * g)) & 3
                let level = Int(nibble | top << 4) - 32
                let scale = Float(Int8(bitPattern: block[192 + i / 16]))
                result.append(Element(scaled: d * scale * Float(level), offset: 0))
            }
        }
        return result
    }
}
