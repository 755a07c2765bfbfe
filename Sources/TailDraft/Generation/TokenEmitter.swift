/// The output side of generation: applies the stop tokens and the token limit, and streams
/// complete text pieces as tokens arrive.
struct TokenEmitter {
    let tokenizer: BPETokenizer
    let stopTokens: Set<Int32>
    let maxTokens: Int
    let onText: ((String) -> Void)?
    let shouldStop: (() -> Bool)?
    private var detokenizer: StreamingDetokenizer
    private(set) var tokens: [Int32] = []
    private(set) var finishReason = FinishReason.length
    /// Whether generation has ended (a stop token or the limit).
    private(set) var ended = false

    init(tokenizer: BPETokenizer, stopTokens: Set<Int32>, maxTokens: Int, onText: ((String) -> Void)?,
         shouldStop: (() -> Bool)? = nil) {
        self.tokenizer = tokenizer
        self.stopTokens = stopTokens
        self.maxTokens = maxTokens
        self.onText = onText
        self.shouldStop = shouldStop
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        ended = maxTokens == 0
    }

    /// Takes the next token. Returns false when generation has ended: the token was a stop
    /// token (not emitted), `shouldStop` returned true (the token is not emitted) or it
    /// reached the limit (emitted). Tokens after the end are ignored.
    mutating func emit(_ token: Int32) -> Bool {
        guard !ended else { return false }
        if shouldStop?() == true {
            finishReason = .interrupted
            ended = true
            return false
        }
        if stopTokens.contains(token) {
            finishReason = .stop
            ended = true
            return false
        }
        tokens.append(token)
        let piece = detokenizer.append(token)
        if !piece.isEmpty { onText?(piece) }
        if tokens.count >= maxTokens { ended = true }
        return !ended
    }

    /// Flushes an incomplete UTF-8 tail, once.
    mutating func finish() {
        let tail = detokenizer.finish()
        if !tail.isEmpty { onText?(tail) }
    }
}
