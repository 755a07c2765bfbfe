/// The kind of a vocabulary entry, with the codes of `tokenizer.ggml.token_type`.
public enum TokenType: Int32, Sendable, CaseIterable {
    /// Code 0 or a code outside 0...6, rendered as empty text like `unused`.
    case undefined = 0
    /// Ordinary text, stored in the byte-level mapped form.
    case normal = 1
    /// The unknown-token placeholder, rendered as empty text.
    case unknown = 2
    /// A control token such as `<|im_start|>`, rendered as empty text and matched in input
    /// text only when special-token parsing is on.
    case control = 3
    /// A token added by the model author, always matched in input text and rendered as its
    /// stored text.
    case userDefined = 4
    /// A reserved slot, rendered as empty text.
    case unused = 5
    /// A byte token written `<0xXX>`, rendered as that byte.
    case byte = 6

    /// Creates the type for a stored code, mapping codes outside 0...6 to `undefined` as llama.cpp does.
    public init(code: Int) {
        self = Int32(exactly: code).flatMap(TokenType.init(rawValue:)) ?? .undefined
    }

    /// Tests whether input text is searched for this token's text before pre-tokenization.
    func isMatchedInText(parseSpecial: Bool) -> Bool {
        switch self {
        case .userDefined: return true
        case .control, .unknown: return parseSpecial
        default: return false
        }
    }
}
