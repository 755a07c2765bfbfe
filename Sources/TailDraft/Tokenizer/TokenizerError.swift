/// An error found while building a tokenizer from a vocabulary or a chat template.
///
/// Errors about a GGUF key are reported as `GGUFError`, which names the key. These cases cover
/// the arrays and names passed to `BPETokenizer`'s array initializer and the chat template.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The pre-tokenizer name is not one this engine implements.
    case unsupportedPreTokenizer(name: String, supported: [String])
    /// Two tokens have the same text.
    case duplicateToken(text: String, firstId: Int, secondId: Int)
    /// The token type array is shorter than the token array.
    case tokenTypeCountMismatch(tokenCount: Int, typeCount: Int)
    /// A special token id (BOS, EOS, ...) is not below the vocabulary size.
    case specialTokenOutOfRange(role: String, id: Int, vocabularySize: Int)
    /// A setting requires a special token that the vocabulary does not name.
    case missingSpecialToken(role: String, requiredBy: String)
    /// The chat template is not one this engine can render.
    case unsupportedChatTemplate(reason: String)

    public var description: String {
        switch self {
        case let .unsupportedPreTokenizer(name, supported):
            return "pre-tokenizer '\(name)' is not supported; supported names are \(supported.joined(separator: ", ")): use a model whose tokenizer uses one of them"
        case let .duplicateToken(text, firstId, secondId):
            return "token text '\(text)' appears at ids \(firstId) and \(secondId); every token text must be unique, so the vocabulary is corrupt"
        case let .tokenTypeCountMismatch(tokenCount, typeCount):
            return "the vocabulary has \(tokenCount) tokens but only \(typeCount) token types; pass one type per token"
        case let .specialTokenOutOfRange(role, id, vocabularySize):
            return "\(role) token id \(id) is out of range for a vocabulary of \(vocabularySize) tokens; pass an id in 0..<\(vocabularySize)"
        case let .missingSpecialToken(role, requiredBy):
            return "\(requiredBy) is set, but no \(role) token id is given; pass the \(role) token id or turn the setting off"
        case let .unsupportedChatTemplate(reason):
            return "unsupported chat template: \(reason)"
        }
    }
}
