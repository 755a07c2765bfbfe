import Kernels

/// A weight matrix inside the memory-mapped GGUF file: `rows` outputs of `cols` inputs.
public struct WeightMatrix: @unchecked Sendable {
    public let name: String
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// Start of row 0 in the file; rows follow each other, `rowBytes` apart.
    public let data: UnsafeRawPointer
    /// The data `td_matmul` reads: the file data, or an interleaved copy of it (`kernelType` is
    /// then an engine-internal td_type such as TD_TYPE_Q4_1_X16). Products are bitwise equal.
    public private(set) var kernelType: Int32
    public private(set) var kernelData: UnsafeRawPointer

    public var rowBytes: Int { td_row_bytes(Int32(type.rawValue), Int64(cols)) }

    init(name: String, type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer) {
        self.name = name
        self.type = type
        self.rows = rows
        self.cols = cols
        self.data = data
        self.kernelType = Int32(type.rawValue)
        self.kernelData = data
    }

    /// Whether `td_repack` has an interleaved layout for this matrix.
    var canInterleave: Bool { td_repacked_bytes(Int32(type.rawValue), Int64(rows), Int64(cols)) > 0 }

    /// Points the kernels at an interleaved copy made by `InterleavedArena`.
    mutating func useInterleaved(_ copy: UnsafeRawPointer) {
        kernelType = td_interleaved_type(Int32(type.rawValue))
        kernelData = copy
    }

    /// Dequantizes row `row` into `destination` (`cols` floats), from the interleaved copy
    /// when there is one, so a tied embedding never reads the file pages it was copied from.
    func dequantizeRow(_ row: Int, into destination: UnsafeMutablePointer<Float>) {
        let status = kernelType == Int32(type.rawValue)
            ? td_dequantize_row(kernelType, data + row * rowBytes, destination, Int64(cols))
            : td_dequantize_interleaved_row(kernelType, kernelData, Int64(row), Int64(cols), destination)
        precondition(status == TD_OK, "td_dequantize_row failed with status \(status) for \(name)")
    }
}

/// The weights of one decoder layer.
public struct LayerWeights: Sendable {
    public let attentionNorm: [Float]
    public internal(set) var query: WeightMatrix
    public internal(set) var key: WeightMatrix
    public internal(set) var value: WeightMatrix
    /// Biases added to the Q, K and V projections, nil when the file has none.
    public let queryBias: [Float]?
    public let keyBias: [Float]?
    public let valueBias: [Float]?
    public internal(set) var attentionOutput: WeightMatrix
    public let feedForwardNorm: [Float]
    public internal(set) var gate: WeightMatrix
    public internal(set) var up: WeightMatrix
    public internal(set) var down: WeightMatrix
}

/// All weights of a Llama or Qwen2 model. Matrices point into the memory-mapped file. The Q4_1
/// and Q8_0 matrices the forward pass multiplies (output head included) are also copied once
/// into the interleaved layout the batch kernels read fastest, and the file pages they came
/// from leave the resident set. Norm and bias vectors, a few KB each, become Float arrays.
public struct ModelWeights: @unchecked Sendable {
    public private(set) var tokenEmbedding: WeightMatrix
    public private(set) var layers: [LayerWeights]
    public let outputNorm: [Float]
    /// The output head; the token embedding when the file has no `output.weight` (tied).
    public private(set) var output: WeightMatrix
    public let tiedOutput: Bool
    /// The file the matrices point into; kept alive here.
    public let file: GGUFFile
    /// Owner of the interleaved copies, if any.
    private var arena: InterleavedArena?

    /// Locates and checks every tensor the forward pass needs.
    ///
    /// - Parameter interleave: copy the layers' matrices into the interleaved layout (the
    ///   default). Off keeps every matrix in the file; results are bitwise the same.
    /// - Throws: `GGUFError` naming a missing tensor, a wrong shape or an unsupported type.
    ///   Q, K and V biases are optional unless `config.requiresQKVBiases`.
    public init(file: GGUFFile, config: ModelConfig, interleave: Bool = true) throws {
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
        func bias(_ name: String, count: Int) throws -> [Float]? {
            guard config.requiresQKVBiases || file.tensor(named: name) != nil else { return nil }
            return try Self.vector(file, name, count: count)
        }
        for i in 0..<config.layerCount {
            let p = "blk.\(i)."
            layers.append(LayerWeights(
                attentionNorm: try Self.vector(file, p + "attn_norm.weight", count: h),
                query: try Self.matrix(file, p + "attn_q.weight", rows: config.queryDim, cols: h),
                key: try Self.matrix(file, p + "attn_k.weight", rows: config.kvDim, cols: h),
                value: try Self.matrix(file, p + "attn_v.weight", rows: config.kvDim, cols: h),
                queryBias: try bias(p + "attn_q.bias", count: config.queryDim),
                keyBias: try bias(p + "attn_k.bias", count: config.kvDim),
                valueBias: try bias(p + "attn_v.bias", count: config.kvDim),
                attentionOutput: try Self.matrix(file, p + "attn_output.weight", rows: h, cols: config.queryDim),
                feedForwardNorm: try Self.vector(file, p + "ffn_norm.weight", count: h),
                gate: try Self.matrix(file, p + "ffn_gate.weight", rows: config.feedForwardSize, cols: h),
                up: try Self.matrix(file, p + "ffn_up.weight", rows: config.feedForwardSize, cols: h),
                down: try Self.matrix(file, p + "ffn_down.weight", rows: h, cols: config.feedForwardSize)))
        }
        self.layers = layers
        arena = nil
        if interleave { self.interleave() }
    }

    /// Replaces every matrix the forward pass multiplies (layers and output head) that has
    /// an interleaved layout by its copy. The token embedding keeps reading the file.
    private mutating func interleave() {
        let paths: [WritableKeyPath<LayerWeights, WeightMatrix>] =
            [\.query, \.key, \.value, \.attentionOutput, \.gate, \.up, \.down]
        var selected: [(layer: Int, path: WritableKeyPath<LayerWeights, WeightMatrix>)] = []
        for index in layers.indices {
            for path in paths where layers[index][keyPath: path].canInterleave {
                selected.append((index, path))
            }
        }
        var matrices = selected.map { layers[$0.layer][keyPath: $0.path] }
        if output.canInterleave { matrices.append(output) }
        guard let (arena, copies) = InterleavedArena.make(matrices) else { return }
        for (entry, copy) in zip(selected, copies) {
            layers[entry.layer][keyPath: entry.path].useInterleaved(copy)
        }
        if output.canInterleave {
            output.useInterleaved(copies[selected.count])
            if tiedOutput { tokenEmbedding.useInterleaved(copies[selected.count]) }
        }
        self.arena = arena
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
