import Kernels

/// A weight matrix inside the memory-mapped GGUF file: `rows` outputs of `cols` inputs.
public struct WeightMatrix: @unchecked Sendable {
    public let name: String
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// Start of row 0; rows follow each other, `rowBytes` apart.
    public let data: UnsafeRawPointer

    public var rowBytes: Int { td_row_bytes(Int32(type.rawValue), Int64(cols)) }

    /// Dequantizes row `row` into `destination` (`cols` floats).
    func dequantizeRow(_ row: Int, into destination: UnsafeMutablePointer<Float>) {
        let status = td_dequantize_row(Int32(type.rawValue), data + row * rowBytes, destination, Int64(cols))
        precondition(status == TD_OK, "td_dequantize_row failed with status \(status) for \(name)")
    }
}

/// The weights of one decoder layer.
public struct LayerWeights: Sendable {
    public let attentionNorm: [Float]
    public let query: WeightMatrix
    public let key: WeightMatrix
    public let value: WeightMatrix
    public let attentionOutput: WeightMatrix
    public let feedForwardNorm: [Float]
    public let gate: WeightMatrix
    public let up: WeightMatrix
    public let down: WeightMatrix
}

/// All weights of a Llama model. Matrices point into the memory-mapped file (no copy); norm
/// vectors, a few KB each, are converted to Float arrays.
public struct ModelWeights: @unchecked Sendable {
    public let tokenEmbedding: WeightMatrix
    public let layers: [LayerWeights]
    public let outputNorm: [Float]
    /// The output head; the token embedding when the file has no `output.weight` (tied).
    public let output: WeightMatrix
    public let tiedOutput: Bool
    /// The file the matrices point into; kept alive here.
    public let file: GGUFFile

    /// Locates and checks every tensor the forward pass needs.
    ///
    /// - Throws: `GGUFError` naming a missing tensor, a wrong shape or an unsupported type.
    public init(file: GGUFFile, config: ModelConfig) throws {
        self.file = file
        let h = config.hiddenSize
        tokenEmbedding = try Self.matrix(file, "token_embd.weight", rows: config.vocabularySize, cols: h)
        outputNorm = try Self.vector(file, "output_norm.weight", count: h)
        if file.tensor(named: "output.weight") != nil {
            output = try Self.matrix(file, "output.weight", rows: config.vocabularySize, cols: h)
            tiedOutput = false
        } else {
            output = tokenEmbedding
            tiedOutput = true
        }
        var layers: [LayerWeights] = []
        for i in 0..<config.layerCount {
            let p = "blk.\(i)."
            layers.append(LayerWeights(
                attentionNorm: try Self.vector(file, p + "attn_norm.weight", count: h),
                query: try Self.matrix(file, p + "attn_q.weight", rows: config.queryDim, cols: h),
                key: try Self.matrix(file, p + "attn_k.weight", rows: config.kvDim, cols: h),
                value: try Self.matrix(file, p + "attn_v.weight", rows: config.kvDim, cols: h),
                attentionOutput: try Self.matrix(file, p + "attn_output.weight", rows: h, cols: config.queryDim),
                feedForwardNorm: try Self.vector(file, p + "ffn_norm.weight", count: h),
                gate: try Self.matrix(file, p + "ffn_gate.weight", rows: config.feedForwardSize, cols: h),
                up: try Self.matrix(file, p + "ffn_up.weight", rows: config.feedForwardSize, cols: h),
                down: try Self.matrix(file, p + "ffn_down.weight", rows: h, cols: config.feedForwardSize)))
        }
        self.layers = layers
    }

    private static func tensor(_ file: GGUFFile, _ name: String) throws -> GGUFTensorInfo {
        guard let info = file.tensor(named: name) else {
            throw GGUFError.badTensor(name: name, problem: "the tensor is missing from the file")
        }
        guard info.type.isSupported else {
            throw GGUFError.unsupportedTensorType(name: name, typeCode: info.type.rawValue, typeName: info.type.name)
        }
        return info
    }

    static func matrix(_ file: GGUFFile, _ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        let info = try tensor(file, name)
        guard info.shape == [cols, rows] else {
            throw GGUFError.badTensor(name: name, problem: "shape is \(info.shape), expected [\(cols), \(rows)]")
        }
        return WeightMatrix(name: name, type: info.type, rows: rows, cols: cols, data: file.dataPointer(info))
    }

    static func vector(_ file: GGUFFile, _ name: String, count: Int) throws -> [Float] {
        let info = try tensor(file, name)
        guard info.shape == [count] else {
            throw GGUFError.badTensor(name: name, problem: "shape is \(info.shape), expected [\(count)]")
        }
        var values = [Float](repeating: 0, count: count)
        let status = values.withUnsafeMutableBufferPointer {
            td_dequantize_row(Int32(info.type.rawValue), file.dataPointer(info), $0.baseAddress!, Int64(count))
        }
        guard status == TD_OK else {
            throw GGUFError.badTensor(name: name, problem: "cannot convert type \(info.type.name) to floats")
        }
        return values
    }
}
