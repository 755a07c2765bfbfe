import TailDraft

/// `taildraft info`: prints what a GGUF model file contains.
enum InfoCommand {
    static func run(_ arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(Help.info); return }
        let args = try Arguments(command: "info", arguments: arguments, valueOptions: ["model"], flagOptions: [])
        let file = try GGUFFile.openModel(path: try args.required("model"))
        let config = try ModelConfig(file: file)
        let weights = try ModelWeights(file: file, config: config)
        let tokenizer = try BPETokenizer(gguf: file)

        print("file: \(file.path) (GGUF v\(file.version), \(megabytes(file.fileSize)) MB, \(file.tensors.count) tensors)")
        print("name: \(file.metadata["general.name"]?.stringValue ?? "(none)")")
        print("architecture: \(config.architecture)")
        print("layers: \(config.layerCount), hidden size: \(config.hiddenSize), feed-forward size: \(config.feedForwardSize)")
        print("attention heads: \(config.headCount) (key/value heads: \(config.kvHeadCount), head size: \(config.headDim))")
        print("trained context: \(config.trainedContextLength) tokens, RoPE base: \(config.ropeBase), RMSNorm epsilon: \(config.rmsNormEpsilon)")
        print("output head: \(weights.tiedOutput ? "tied to the token embedding" : "output.weight") (\(weights.output.type.name))")

        var typeCounts: [String: (count: Int, bytes: Int)] = [:]
        for tensor in file.tensors {
            typeCounts[tensor.type.name, default: (0, 0)].count += 1
            typeCounts[tensor.type.name, default: (0, 0)].bytes += tensor.byteCount
        }
        let types = typeCounts.sorted { $0.value.bytes > $1.value.bytes }
            .map { "\($0.key) \($0.value.count) \($0.value.count == 1 ? "tensor" : "tensors") \(megabytes($0.value.bytes)) MB" }
        print("tensor types: \(types.joined(separator: ", "))")
        let pre = file.metadata["tokenizer.ggml.pre"]?.stringValue ?? "(none)"
        print("tokenizer: \(file.metadata["tokenizer.ggml.model"]?.stringValue ?? "?") BPE, pre-tokenizer \(pre), \(tokenizer.vocabularySize) tokens")
        print("end-of-generation ids: \(tokenizer.endOfGenerationIds.sorted())")
        let kvBytesPerToken = KVCache.byteCount(config: config, capacity: 1, precision: .float16)
        print("KV cache: \(kvBytesPerToken) bytes per token (half-precision keys and values)")
        print("kernels: \(KernelPath.active) (best on this CPU: \(KernelPath.best); set TAILDRAFT_ISA to scalar, avx2 or avx512 to choose)")
    }

    static func megabytes(_ bytes: Int) -> String {
        fixed(Double(bytes) / 1_000_000, 1)
    }
}
