/// A loaded model with its tokenizer: the library's entry point.
///
/// ```swift
/// let engine = try Engine(modelPath: "models/SmolLM2-135M-Instruct.Q4_1.gguf")
/// let result = try engine.generate(prompt: "The capital of France is", options: .init(maxTokens: 16))
/// print(result.text)
/// ```
/// Not thread-safe: one generation at a time per engine.
public final class Engine: @unchecked Sendable {
    public let file: GGUFFile
    public let model: Transformer
    public let tokenizer: BPETokenizer
    public let generator: Generator

    /// Opens the GGUF file at `modelPath` and prepares a KV cache of `contextLength` tokens
    /// (default: the model's trained context, at most 4096).
    ///
    /// - Throws: `GGUFError` for a missing, truncated or unsupported file;
    ///   `DrafterError.checkpointGivenAsModel` for a learned-drafter checkpoint;
    ///   `GenerationError.invalidOption` for a context length outside 2 up to the model's
    ///   trained context, where RoPE positions beyond training give meaningless output.
    public init(modelPath: String, threads: Int? = nil, contextLength: Int? = nil) throws {
        file = try GGUFFile.openModel(path: modelPath)
        let config = try ModelConfig(file: file)
        let weights = try ModelWeights(file: file, config: config)
        tokenizer = try BPETokenizer(gguf: file)
        let context = contextLength ?? min(config.trainedContextLength, 4096)
        guard (2...config.trainedContextLength).contains(context) else {
            throw GenerationError.invalidOption(
                name: "context length", value: String(context),
                expected: "2...\(config.trainedContextLength) tokens, the context this model was trained for")
        }
        model = Transformer(config: config, weights: weights, threads: threads ?? Engine.defaultThreadCount)
        generator = Generator(model: model, tokenizer: tokenizer, contextLength: context)
    }

    /// Number of online CPU cores.
    public static var defaultThreadCount: Int { ProcessorCount.online }

    /// Tokenizes a raw prompt: control-token strings in `text` become control tokens.
    public func tokenizePrompt(_ text: String) -> [Int32] {
        tokenizer.encode(text, parseSpecial: true)
    }

    /// Tokenizes `userMessage` as one user turn of the model's chat template, with the
    /// assistant's turn opened. The message itself is plain text: control-token strings
    /// typed in it stay ordinary text.
    /// - Throws: `TokenizerError.unsupportedChatTemplate` when the file's template is not ChatML.
    public func tokenizeChat(userMessage: String) throws -> [Int32] {
        let template = try tokenizer.chatTemplate()
        return tokenizer.encodeChat([ChatMessage(role: "user", content: userMessage)], template: template, addGenerationPrompt: true)
    }

    /// Generates from `prompt` (tokenized as a raw prompt). See `Generator.generate`.
    public func generate(prompt: String, options: GenerationOptions, onText: ((String) -> Void)? = nil) throws -> GenerationResult {
        try generator.generate(promptTokens: tokenizePrompt(prompt), options: options, onText: onText)
    }
}
