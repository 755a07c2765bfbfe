import Foundation
import Kernels
@testable import TailDraft

/// A float64 Llama-family forward pass in plain Swift, for checking the engine.
///
/// Weights are the exact values the engine multiplies: each tensor's bytes go through
/// td_dequantize_row, then widen to Double. Everything after that (RMSNorm, Q, K and V biases,
/// RoPE, causal grouped-query attention, SwiGLU, output head) is computed in Double, one token
/// at a time, with no activation quantization.
struct ReferenceModel {
    /// How RoPE pairs the elements of a head.
    enum RopePairing {
        /// (x[2i], x[2i+1]): the llama architecture's layout.
        case adjacent
        /// (x[i], x[i + headDim/2]): the GPT-NeoX layout, which the qwen2 architecture uses.
        case halves
    }

    /// A row-major matrix: `rows` outputs of `cols` inputs.
    struct Matrix {
        let rows: Int
        let cols: Int
        let values: [Double]

        /// Rounds each matmul input to 8-bit levels per 32-element block, as the engine does
        /// for quantized weights (d = max|x| / 127, q = round(x / d)); off for float weights.
        let roundsInputs: Bool

        func apply(_ input: [Double]) -> [Double] {
            precondition(input.count == cols, "matrix of \(cols) columns applied to \(input.count) values")
            let x = roundsInputs ? ReferenceModel.roundedToInt8Blocks(input) : input
            var result = [Double](repeating: 0, count: rows)
            values.withUnsafeBufferPointer { w in
                x.withUnsafeBufferPointer { v in
                    for r in 0..<rows {
                        var sum = 0.0
                        let row = r * cols
                        for c in 0..<cols { sum += w[row + c] * v[c] }
                        result[r] = sum
                    }
                }
            }
            return result
        }

        func row(_ r: Int) -> [Double] { Array(values[r * cols..<(r + 1) * cols]) }
    }

    struct Layer {
        let attentionNorm: [Double]
        let query, key, value, attentionOutput: Matrix
        /// Q, K and V biases; nil when the model has none or they are ignored.
        let queryBias, keyBias, valueBias: [Double]?
        let feedForwardNorm: [Double]
        let gate, up, down: Matrix
    }

    struct Output {
        /// Per position: vocabularySize logits.
        var logits: [[Double]]
        /// Per position: the final RMSNorm output that the output head multiplies.
        var hidden: [[Double]]
    }

    /// Returns `x` with each 32-element block replaced by d * q, as the engine quantizes
    /// activations: q = x * 127 / max|x| rounded half to even, and d = max|x| / 127 rounded
    /// to half precision.
    static func roundedToInt8Blocks(_ x: [Double]) -> [Double] {
        var result = x
        for start in stride(from: 0, to: x.count, by: 32) {
            let block = start..<min(start + 32, x.count)
            let amax = x[block].reduce(0) { max($0, abs($1)) }
            guard amax > 0 else { continue }
            let d = Double(Float16(Float(amax / 127)))
            for i in block { result[i] = d * (x[i] * 127 / amax).rounded(.toNearestOrEven) }
        }
        return result
    }

    let spec: TinyModelSpec
    let embedding: Matrix
    let layers: [Layer]
    let outputNorm: [Double]
    let output: Matrix

    /// Builds the reference from the tensors a `TinyModel` writes. `useTokenEmbeddingAsOutput`
    /// forces the tied head even when the model has `output.weight`, and `ignoringBiases`
    /// leaves out the Q, K and V biases the model may have.
    init(model: TinyModel, useTokenEmbeddingAsOutput: Bool = false, roundingMatmulInputs: Bool = false,
         ignoringBiases: Bool = false) {
        spec = model.spec
        var byName: [String: TensorEntry] = [:]
        for tensor in model.tensors { byName[tensor.name] = tensor }

        func values(_ name: String) -> [Double] {
            guard let tensor = byName[name] else { preconditionFailure("tiny model has no tensor \(name)") }
            let count = tensor.shape.reduce(1) { $0 * Int($1) }
            var floats = [Float](repeating: 0, count: count)
            let status = tensor.data.withUnsafeBytes { raw in
                floats.withUnsafeMutableBufferPointer {
                    td_dequantize_row(Int32(tensor.typeCode), raw.baseAddress!, $0.baseAddress!, Int64(count))
                }
            }
            precondition(status == TD_OK, "td_dequantize_row failed with status \(status) for \(name)")
            return floats.map(Double.init)
        }
        func matrix(_ name: String) -> Matrix {
            let shape = byName[name]!.shape
            return Matrix(rows: Int(shape[1]), cols: Int(shape[0]), values: values(name), roundsInputs: roundingMatmulInputs)
        }

        func bias(_ name: String) -> [Double]? {
            byName[name] != nil && !ignoringBiases ? values(name) : nil
        }

        embedding = matrix("token_embd.weight")
        layers = (0..<spec.layerCount).map { i in
            let p = "blk.\(i)."
            return Layer(attentionNorm: values(p + "attn_norm.weight"),
                         query: matrix(p + "attn_q.weight"), key: matrix(p + "attn_k.weight"),
                         value: matrix(p + "attn_v.weight"), attentionOutput: matrix(p + "attn_output.weight"),
                         queryBias: bias(p + "attn_q.bias"), keyBias: bias(p + "attn_k.bias"),
                         valueBias: bias(p + "attn_v.bias"),
                         feedForwardNorm: values(p + "ffn_norm.weight"),
                         gate: matrix(p + "ffn_gate.weight"), up: matrix(p + "ffn_up.weight"),
                         down: matrix(p + "ffn_down.weight"))
        }
        outputNorm = values("output_norm.weight")
        if byName["output.weight"] != nil && !useTokenEmbeddingAsOutput {
            output = matrix("output.weight")
        } else {
            output = embedding
        }
    }

    func rmsNorm(_ x: [Double], _ weight: [Double]) -> [Double] {
        let meanSquare = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
        let scale = 1 / (meanSquare + Double(spec.rmsNormEpsilon)).squareRoot()
        return zip(x, weight).map { $0 * scale * $1 }
    }

    /// Rotates each head of `x` (heads * headDim values) for position `position`: pair i
    /// turns by position * base^(-2i / headDim).
    func rope(_ x: [Double], heads: Int, position: Int, pairing: RopePairing) -> [Double] {
        let d = spec.headDim
        var result = x
        for head in 0..<heads {
            for i in 0..<d / 2 {
                let angle = Double(position) * pow(Double(spec.ropeBase), -2.0 * Double(i) / Double(d))
                let (a, b) = pairing == .adjacent ? (head * d + 2 * i, head * d + 2 * i + 1)
                                                  : (head * d + i, head * d + i + d / 2)
                result[a] = x[a] * cos(angle) - x[b] * sin(angle)
                result[b] = x[a] * sin(angle) + x[b] * cos(angle)
            }
        }
        return result
    }

    /// Returns `x + bias`, or `x` when `bias` is nil.
    func adding(_ bias: [Double]?, to x: [Double]) -> [Double] {
        guard let bias else { return x }
        return zip(x, bias).map { $0 + $1 }
    }

    /// The RoPE layout of the model's architecture: halves for qwen2, adjacent pairs otherwise.
    var naturalPairing: RopePairing { spec.architecture == "qwen2" ? .halves : .adjacent }

    /// Runs `tokens` at positions 0, 1, ... with causal attention, rotating with `pairing`
    /// (default: the architecture's own).
    func forward(_ tokens: [Int], pairing requestedPairing: RopePairing? = nil) -> Output {
        let pairing = requestedPairing ?? naturalPairing
        let d = spec.headDim
        let group = spec.headCount / spec.kvHeadCount
        var states = tokens.map { embedding.row($0) }
        for layer in layers {
            var keys: [[Double]] = []
            var values: [[Double]] = []
            var queries: [[Double]] = []
            for (position, x) in states.enumerated() {
                let normed = rmsNorm(x, layer.attentionNorm)
                let query = adding(layer.queryBias, to: layer.query.apply(normed))
                let key = adding(layer.keyBias, to: layer.key.apply(normed))
                queries.append(rope(query, heads: spec.headCount, position: position, pairing: pairing))
                keys.append(rope(key, heads: spec.kvHeadCount, position: position, pairing: pairing))
                values.append(adding(layer.valueBias, to: layer.value.apply(normed)))
            }
            for t in states.indices {
                var attended = [Double](repeating: 0, count: spec.queryDim)
                for head in 0..<spec.headCount {
                    let kvOffset = (head / group) * d, qOffset = head * d
                    var scores: [Double] = []
                    for s in 0...t {
                        var dot = 0.0
                        for j in 0..<d { dot += queries[t][qOffset + j] * keys[s][kvOffset + j] }
                        scores.append(dot / Double(d).squareRoot())
                    }
                    let top = scores.max()!
                    let weights = scores.map { exp($0 - top) }
                    let total = weights.reduce(0, +)
                    for s in 0...t {
                        for j in 0..<d { attended[qOffset + j] += weights[s] / total * values[s][kvOffset + j] }
                    }
                }
                let delta = layer.attentionOutput.apply(attended)
                for j in 0..<spec.hiddenSize { states[t][j] += delta[j] }
            }
            for t in states.indices {
                let normed = rmsNorm(states[t], layer.feedForwardNorm)
                let gate = layer.gate.apply(normed), up = layer.up.apply(normed)
                let activated = zip(gate, up).map { g, u in g / (1 + exp(-g)) * u }
                let delta = layer.down.apply(activated)
                for j in 0..<spec.hiddenSize { states[t][j] += delta[j] }
            }
        }
        let hidden = states.map { rmsNorm($0, outputNorm) }
        return Output(logits: hidden.map { output.apply($0) }, hidden: hidden)
    }
}
