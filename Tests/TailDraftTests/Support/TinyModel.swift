import Foundation
@testable import TailDraft

/// A tiny random Llama-family model written as a real GGUF file.
///
/// Weights are drawn from a seeded SplitMix64 and stored in `weightType`, or the type
/// `matrixTypes` gives the matrix (norm weights are always F32). Scales are chosen so attention scores spread over a few units, which makes
/// the logits depend visibly on RoPE and on the attention pattern.
struct TinyModelSpec {
    var layerCount = 2
    var hiddenSize = 64
    var headCount = 4
    var kvHeadCount = 2
    var feedForwardSize = 96
    var vocabularySize = 256
    var contextLength = 128
    var rmsNormEpsilon: Float = 1e-5
    var ropeBase: Float = 10_000
    var weightType: GGMLType = .f32
    /// Types that replace `weightType` for some matrices, keyed by tensor name without the
    /// layer prefix (`attn_v.weight` applies to every layer's value matrix).
    var matrixTypes: [String: GGMLType] = [:]
    /// Writes a separate `output.weight`; without it the output head is the token embedding.
    var separateOutput = false
    var seed: UInt64 = 1
    var architecture = "llama"
    /// Writes F32 Q, K and V biases (`blk.N.attn_q.bias`, `attn_k.bias`, `attn_v.bias`).
    var qkvBiases = false
    /// Tensors to leave out, for files that must fail to load.
    var omittedTensors: Set<String> = []

    /// `tokenizer.ggml.pre`.
    var preTokenizer = "gpt2"
    /// Control tokens placed after the 256 byte tokens, in order (ids 256, 257, ...).
    var controlTokens: [String] = []
    var bosTokenId: UInt32 = 1
    var eosTokenId: UInt32 = 2
    /// `tokenizer.ggml.add_bos_token`; nil leaves the key out.
    var addBOS: Bool? = nil
    /// `tokenizer.chat_template`; nil leaves the key out.
    var chatTemplate: String? = nil

    /// A tiny model shaped like a Qwen2 GGUF file. It has the qwen2 architecture with Q, K and
    /// V biases, RoPE base 1e6 and the qwen2 pre-tokenizer. Its ChatML control tokens end with
    /// `<|im_end|>` as EOS, it adds no BOS, and its template has a default system prompt.
    static func qwen2(seed: UInt64, weightType: GGMLType = .f32) -> TinyModelSpec {
        var spec = TinyModelSpec()
        spec.architecture = "qwen2"
        spec.qkvBiases = true
        spec.ropeBase = 1_000_000
        spec.rmsNormEpsilon = 1e-6
        spec.seed = seed
        spec.weightType = weightType
        spec.vocabularySize = 260
        spec.preTokenizer = "qwen2"
        spec.controlTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        spec.bosTokenId = 256
        spec.eosTokenId = 258
        spec.addBOS = false
        spec.chatTemplate = qwen2StyleChatTemplate
        return spec
    }

    var headDim: Int { hiddenSize / headCount }
    var kvDim: Int { kvHeadCount * headDim }
    var queryDim: Int { headCount * headDim }

    /// Returns the type that the matrix `name` is written in.
    func type(ofMatrix name: String) -> GGMLType {
        let key = name.hasPrefix("blk.") ? String(name.split(separator: ".", maxSplits: 2)[2]) : name
        return matrixTypes[key] ?? weightType
    }
}

/// A ChatML template in the shape of Qwen2's: a default system message when the conversation
/// has none, then each message between `<|im_start|>role` and `<|im_end|>`.
let qwen2StyleChatTemplate = """
{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}\
{{ '<|im_start|>system\\nYou are a tiny test model.<|im_end|>\\n' }}{% endif %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
"""

/// Returns the 256 byte tokens in GPT-2's byte-to-unicode form: printable Latin-1 bytes map to
/// themselves, and the other 68 bytes map to U+0100 onwards in byte order.
func gpt2ByteTokens() -> [String] {
    func isPrintable(_ byte: Int) -> Bool {
        (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
    }
    var next = 256
    var tokens: [String] = []
    for byte in 0..<256 {
        let scalar: Int
        if isPrintable(byte) {
            scalar = byte
        } else {
            scalar = next
            next += 1
        }
        tokens.append(String(Character(Unicode.Scalar(UInt32(scalar))!)))
    }
    return tokens
}

/// Float weights of a tiny model, before encoding, by tensor name.
struct TinyModel {
    let spec: TinyModelSpec
    /// Tensors as written to the file, in file order.
    let tensors: [TensorEntry]

    init(spec: TinyModelSpec) {
        self.spec = spec
        var rng = SplitMix64(seed: spec.seed)
        let h = spec.hiddenSize, f = spec.feedForwardSize
        var tensors: [TensorEntry] = []

        // The scales below are tuned for hidden size 64. A matrix output sums about `hiddenSize`
        // products, so wider models scale their weights by sqrt(64 / hiddenSize) to keep
        // activations and attention scores at the same RMS.
        let widthScale = (64 / Float(h)).squareRoot()
        func matrix(_ name: String, rows: Int, cols: Int, scale: Float) {
            let values = rng.floats(rows * cols, scale: name == "token_embd.weight" ? scale : scale * widthScale)
            let type = spec.type(ofMatrix: name)
            tensors.append(TensorEntry(name: name, shape: [cols, rows], type: type, data: Quantizer.encode(values, as: type)))
        }
        func bias(_ name: String, count: Int, scale: Float) {
            tensors.append(.f32(name, shape: [count], values: rng.floats(count, scale: scale)))
        }
        func norm(_ name: String) {
            let values = (0..<h).map { _ in rng.uniform(0.7...1.3) }
            tensors.append(.f32(name, shape: [h], values: values))
        }

        // Embedding rows have RMS about 0.6; RMSNorm rescales them anyway.
        matrix("token_embd.weight", rows: spec.vocabularySize, cols: h, scale: 1.0)
        for layer in 0..<spec.layerCount {
            let p = "blk.\(layer)."
            norm(p + "attn_norm.weight")
            // Q and K entries of +-0.35 give q and k elements of RMS about 1.6 and scores
            // q.k / sqrt(headDim) of RMS about 2.5.
            matrix(p + "attn_q.weight", rows: spec.queryDim, cols: h, scale: 0.35)
            matrix(p + "attn_k.weight", rows: spec.kvDim, cols: h, scale: 0.35)
            matrix(p + "attn_v.weight", rows: spec.kvDim, cols: h, scale: 0.3)
            if spec.qkvBiases {
                // Biases of +-0.5 shift q and k by a third of their RMS: enough to move the
                // logits well past the test tolerances when left out.
                bias(p + "attn_q.bias", count: spec.queryDim, scale: 0.5)
                bias(p + "attn_k.bias", count: spec.kvDim, scale: 0.5)
                bias(p + "attn_v.bias", count: spec.kvDim, scale: 0.3)
            }
            matrix(p + "attn_output.weight", rows: h, cols: spec.queryDim, scale: 0.15)
            norm(p + "ffn_norm.weight")
            matrix(p + "ffn_gate.weight", rows: f, cols: h, scale: 0.3)
            matrix(p + "ffn_up.weight", rows: f, cols: h, scale: 0.3)
            matrix(p + "ffn_down.weight", rows: h, cols: f, scale: 0.15)
        }
        norm("output_norm.weight")
        if spec.separateOutput {
            matrix("output.weight", rows: spec.vocabularySize, cols: h, scale: 0.3)
        }
        self.tensors = tensors.filter { !spec.omittedTensors.contains($0.name) }
    }

    /// The GGUF writer for this model: architecture metadata, a minimal GPT-2 style tokenizer
    /// of the 256 byte tokens and the spec's control tokens, and the tensors.
    var writer: GGUFWriter {
        var writer = GGUFWriter(version: 3)
        let arch = spec.architecture
        writer.add("general.architecture", .string(arch))
        writer.add("general.name", .string("tiny-random-\(arch)"))
        writer.add("general.alignment", .uint32(32))
        writer.add("\(arch).block_count", .uint32(UInt32(spec.layerCount)))
        writer.add("\(arch).context_length", .uint32(UInt32(spec.contextLength)))
        writer.add("\(arch).embedding_length", .uint32(UInt32(spec.hiddenSize)))
        writer.add("\(arch).feed_forward_length", .uint32(UInt32(spec.feedForwardSize)))
        writer.add("\(arch).attention.head_count", .uint32(UInt32(spec.headCount)))
        writer.add("\(arch).attention.head_count_kv", .uint32(UInt32(spec.kvHeadCount)))
        writer.add("\(arch).attention.layer_norm_rms_epsilon", .float32(spec.rmsNormEpsilon))
        writer.add("\(arch).rope.freq_base", .float32(spec.ropeBase))
        writer.add("\(arch).rope.dimension_count", .uint32(UInt32(spec.headDim)))
        writer.add("\(arch).vocab_size", .uint32(UInt32(spec.vocabularySize)))
        writer.add("tokenizer.ggml.model", .string("gpt2"))
        writer.add("tokenizer.ggml.pre", .string(spec.preTokenizer))
        var tokens = gpt2ByteTokens() + spec.controlTokens
        while tokens.count < spec.vocabularySize { tokens.append("<extra_\(tokens.count)>") }
        writer.add("tokenizer.ggml.tokens", .array(elementType: 8, tokens.prefix(spec.vocabularySize).map { .string($0) }))
        // Type 1 is a normal token, 3 a control token.
        let types = tokens.indices.map { GGUFValue.int32($0 >= 256 && $0 < 256 + spec.controlTokens.count ? 3 : 1) }
        writer.add("tokenizer.ggml.token_type", .array(elementType: 5, Array(types.prefix(spec.vocabularySize))))
        writer.add("tokenizer.ggml.merges", .array(elementType: 8, []))
        writer.add("tokenizer.ggml.bos_token_id", .uint32(spec.bosTokenId))
        writer.add("tokenizer.ggml.eos_token_id", .uint32(spec.eosTokenId))
        if let addBOS = spec.addBOS { writer.add("tokenizer.ggml.add_bos_token", .bool(addBOS)) }
        if let template = spec.chatTemplate { writer.add("tokenizer.chat_template", .string(template)) }
        for tensor in tensors { writer.add(tensor) }
        return writer
    }

    /// Writes the model to `name` in `directory` and returns the file's path.
    func write(in directory: URL, name: String = "tiny.gguf") throws -> String {
        let url = directory.appendingPathComponent(name)
        try writer.write(to: url)
        return url.path
    }

    /// Writes the model to a temporary file, loads it with the engine and passes both to
    /// `body`; the file is removed afterwards.
    func withTransformer<T>(threads: Int = 2, _ body: (Transformer) throws -> T) throws -> T {
        try withTemporaryDirectory { directory in
            let path = try write(in: directory)
            let transformer = try Transformer(path: path, threads: threads)
            return try body(transformer)
        }
    }
}

extension TinyModelSpec {
    /// Returns a model with the type mix of a Q4_K_M file: Q4_K by default, Q5_K for the
    /// attention output and up projections, Q6_K for the value, down and output matrices, and
    /// Q5_0 for the keys. Hidden size 256 and feed-forward size 512 make every row a whole
    /// number of 256-element super-blocks.
    static func kQuantMix(seed: UInt64, layerCount: Int = 2) -> TinyModelSpec {
        var spec = TinyModelSpec()
        spec.layerCount = layerCount
        spec.hiddenSize = 256
        spec.feedForwardSize = 512
        spec.weightType = .q4_K
        spec.matrixTypes = [
            "attn_k.weight": .q5_0, "attn_v.weight": .q6_K, "attn_output.weight": .q5_K,
            "ffn_up.weight": .q5_K, "ffn_down.weight": .q6_K, "output.weight": .q6_K,
        ]
        spec.separateOutput = true
        spec.seed = seed
        return spec
    }
}
