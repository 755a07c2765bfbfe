import Kernels
@testable import TailDraft

// Helpers shared by the kernel test suites.

/// Decodes a string of hexadecimal byte pairs, such as "003c", into bytes.
func bytes(fromHex hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// Dequantizes `n` elements of `type` with td_dequantize_row.
func dequantize(_ type: GGMLType, _ data: [UInt8], count n: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: n)
    let status = data.withUnsafeBytes { raw in
        out.withUnsafeMutableBufferPointer {
            td_dequantize_row(Int32(type.rawValue), raw.baseAddress!, $0.baseAddress!, Int64(n))
        }
    }
    precondition(status == TD_OK, "td_dequantize_row(\(type.name)) failed with status \(status)")
    return out
}

/// Returns the activations as the quantized dot products see them: d * q per 32-element block,
/// from td_quantize_row_q8_act.
func quantizedActivations(_ x: [Float]) -> [Double] {
    var blocks = [td_block_q8_act](repeating: td_block_q8_act(), count: x.count / 32)
    let status = x.withUnsafeBufferPointer { xs in
        blocks.withUnsafeMutableBufferPointer { td_quantize_row_q8_act(xs.baseAddress!, $0.baseAddress!, Int64(x.count)) }
    }
    precondition(status == TD_OK, "td_quantize_row_q8_act failed with status \(status)")
    var result: [Double] = []
    for block in blocks {
        withUnsafeBytes(of: block.qs) { qs in
            for q in qs.bindMemory(to: Int8.self) { result.append(Double(block.d) * Double(q)) }
        }
    }
    return result
}

/// td_dot_row on the active ISA path.
func dotRow(_ type: GGMLType, _ weights: [UInt8], _ x: [Float]) -> Float {
    var result = Float.nan
    let status = weights.withUnsafeBytes { w in
        x.withUnsafeBufferPointer { td_dot_row(Int32(type.rawValue), w.baseAddress!, $0.baseAddress!, Int64(x.count), &result) }
    }
    precondition(status == TD_OK, "td_dot_row(\(type.name)) failed with status \(status)")
    return result
}
