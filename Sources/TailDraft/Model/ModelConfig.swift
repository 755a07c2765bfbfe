/// The pairing of head elements that RoPE rotates together.
public enum RopeStyle: String, Sendable, Equatable {
    /// Adjacent elements (2i, 2i + 1), as GGUF files of the llama architecture store Q and K.
    case adjacentPairs
    /// Element i with element i + headDim / 2 (GPT-NeoX style), as qwen2 files expect.
    case halves
}

/// Hyperparameters of a Llama-family model (the llama and qwen2 architectures), read from GGUF
/// metadata under the architecture's key prefix (`llama.block_count`, `qwen2.block_count`, ...).
public struct ModelConfig: Sendable, Equatable {
    public var architecture: String
    public var layerCount: Int
    /// Width of the residual stream (embedding length), H.
    public var hiddenSize: Int
    /// Inner width of the SwiGLU MLP.
    public var feedForwardSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabularySize: Int
    /// Context length the model was trained for, in tokens.
    public var trainedContextLength: Int
    public var rmsNormEpsilon: Float
    public var ropeBase: Float
    public var ropeStyle: RopeStyle
    /// Whether every layer must have Q, K and V bias vectors (`blk.N.attn_q.bias`, ...), as
    /// qwen2 has. Llama files may carry them too, and the forward pass then adds them.
    public var requiresQKVBiases: Bool

    /// Floats per token of one layer's keys (or values): kvHeadCount * headDim.
    public var kvDim: Int { kvHeadCount * headDim }
    /// Floats per token of all query heads: headCount * headDim.
    public var queryDim: Int { headCount * headDim }

    /// Architectures whose forward pass this engine implements. Both are the Llama decoder
    /// (RMSNorm, grouped-query attention with RoPE, SwiGLU); qwen2 adds Q, K and V biases and
    /// rotates halves of each head.
    public static let supportedArchitectures = ["llama", "qwen2"]

    /// Reads and checks the configuration of `file`.
    ///
    /// - Throws: `DrafterError.checkpointGivenAsModel` for a learned-drafter checkpoint.
    ///   `GGUFError` when the architecture is not supported, a required key is missing, or
    ///   the sizes are inconsistent (for example heads that do not divide H).
    public init(file: GGUFFile) throws {
        let arch = try file.string("general.architecture")
        if arch == DrafterCheckpoint.architecture {
            throw DrafterError.checkpointGivenAsModel(path: file.path)
        }
        guard Self.supportedArchitectures.contains(arch) else {
            throw GGUFError.invalidValue(
                key: "general.architecture", value: "'\(arch)'",
                expected: "one of \(Self.supportedArchitectures.joined(separator: ", ")); this engine cannot run '\(arch)' models yet")
        }
        architecture = arch
        ropeStyle = arch == "qwen2" ? .halves : .adjacentPairs
        requiresQKVBiases = arch == "qwen2"
        layerCount = try file.int("\(arch).block_count")
        hiddenSize = try file.int("\(arch).embedding_length")
        feedForwardSize = try file.int("\(arch).feed_forward_length")
        headCount = try file.int("\(arch).attention.head_count")
        kvHeadCount = (try? file.int("\(arch).attention.head_count_kv")) ?? headCount
        trainedContextLength = try file.int("\(arch).context_length")
        rmsNormEpsilon = Float((try? file.double("\(arch).attention.layer_norm_rms_epsilon")) ?? 1e-5)
        ropeBase = Float((try? file.double("\(arch).rope.freq_base")) ?? 10_000)
        if let tokens = file.metadata["tokenizer.ggml.tokens"]?.arrayValue {
            vocabularySize = tokens.count
        } else if let embedding = file.tensor(named: "token_embd.weight"), embedding.shape.count == 2 {
            vocabularySize = embedding.shape[1]
        } else {
            throw GGUFError.missingKey(key: "tokenizer.ggml.tokens", expected: "an array of strings")
        }
        headDim = headCount > 0 ? hiddenSize / headCount : 0
        try validate(file: file)
    }

    private func validate(file: GGUFFile) throws {
        let arch = architecture
        func check(_ ok: Bool, _ key: String, _ value: Int, _ expected: String) throws {
            if !ok { throw GGUFError.invalidValue(key: key, value: String(value), expected: expected) }
        }
        try check((1...1024).contains(layerCount), "\(arch).block_count", layerCount, "1...1024")
        try check((1...65536).contains(hiddenSize), "\(arch).embedding_length", hiddenSize, "1...65536")
        try check((1...262_144).contains(feedForwardSize), "\(arch).feed_forward_length", feedForwardSize, "1...262144")
        try check(headCount >= 1 && hiddenSize % headCount == 0, "\(arch).attention.head_count", headCount,
                  "a divisor of the embedding length \(hiddenSize)")
        try check(headDim % 2 == 0, "\(arch).attention.head_count", headCount, "a head size (embedding length / heads) that is even, for RoPE")
        try check(kvHeadCount >= 1 && headCount % kvHeadCount == 0, "\(arch).attention.head_count_kv", kvHeadCount,
                  "a divisor of the head count \(headCount)")
        try check(trainedContextLength >= 1, "\(arch).context_length", trainedContextLength, "at least 1")
        try check((1...1_000_000).contains(vocabularySize), "tokenizer.ggml.tokens", vocabularySize, "1...1000000 tokens")
        if let rotated = file.metadata["\(arch).rope.dimension_count"]?.intValue, rotated != headDim {
            throw GGUFError.invalidValue(key: "\(arch).rope.dimension_count", value: String(rotated),
                                         expected: "the head size \(headDim); partial rotary embeddings are not supported")
        }
        if let scaling = file.metadata["\(arch).rope.scaling.type"]?.stringValue, scaling != "none" {
            throw GGUFError.invalidValue(key: "\(arch).rope.scaling.type", value: "'\(scaling)'",
                                         expected: "'none'; RoPE scaling is not supported yet")
        }
        guard rmsNormEpsilon > 0, rmsNormEpsilon < 1 else {
            throw GGUFError.invalidValue(key: "\(arch).attention.layer_norm_rms_epsilon", value: String(rmsNormEpsilon), expected: "a value in (0, 1)")
        }
        guard ropeBase > 1 else {
            throw GGUFError.invalidValue(key: "\(arch).rope.freq_base", value: String(ropeBase), expected: "a value above 1")
        }
    }
}
