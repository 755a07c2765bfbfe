/// The rule that splits text into words before byte-level BPE, named by `tokenizer.ggml.pre`.
///
/// Each case reproduces the split that llama.cpp (src/unicode.cpp and src/llama-vocab.cpp)
/// computes for that name. Merges never cross a word boundary, so the split decides which token
/// ids are reachable. The splitters work on Unicode scalars with three classes: letters
/// (general category L), numbers (N) and whitespace (the White_Space property). Every other
/// scalar, including unassigned ones, counts as "other". Swift's Unicode tables may be a newer
/// Unicode version than llama.cpp's, so a scalar assigned in between can classify differently.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// Every number scalar on its own, then the GPT-2 rule on the text between them.
    case smollm
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// The Llama 3 rule: case-insensitive contractions, one optional non-letter before a
    /// letter run, numbers in groups of up to three, punctuation runs that take trailing
    /// line breaks, and whitespace runs that end at their last line break.
    case llamaBPE = "llama-bpe"
    /// The Llama 3 rule with every number scalar on its own.
    case qwen2

    /// The `tokenizer.ggml.pre` values this engine accepts, with the rule each selects.
    ///
    /// `gpt2` is accepted as an alias for llama.cpp's name `gpt-2`.
    public static let acceptedNames: [(name: String, rule: PreTokenizer)] = [
        ("smollm", .smollm),
        ("gpt-2", .gpt2),
        ("gpt2", .gpt2),
        ("llama-bpe", .llamaBPE),
        ("llama3", .llamaBPE),
        ("llama-v3", .llamaBPE),
        ("qwen2", .qwen2),
        ("deepseek-r1-qwen", .qwen2),
    ]

    /// Looks up the rule for a `tokenizer.ggml.pre` value.
    ///
    /// - Throws: `TokenizerError.unsupportedPreTokenizer` naming `name` and the accepted names.
    public init(name: String) throws {
        guard let match = Self.acceptedNames.first(where: { $0.name == name }) else {
            throw TokenizerError.unsupportedPreTokenizer(name: name, supported: Self.acceptedNames.map(\.name))
        }
        self = match.rule
    }

    /// Whether a word that is itself a vocabulary token skips the merges (llama.cpp's
    /// `ignore_merges`, set for the Llama 3 rule).
    var ignoresMergesForVocabularyWords: Bool { self == .llamaBPE }

    /// Whether the tokenizer adds BOS when the file has no `tokenizer.ggml.add_bos_token`.
    var addsBOSByDefault: Bool { self == .llamaBPE }

    /// Splits `scalars` into words and appends each word's scalar index range to `words`.
    ///
    /// The ranges are contiguous, non-empty and cover `scalars` in order. Complexity: O(n).
    func split(_ scalars: [UInt32], into words: inout [Range<Int>]) {
        var splitter = WordSplitter(scalars: scalars)
        switch self {
        case .gpt2:
            splitter.splitGPT2(0..<scalars.count, into: &words)
        case .smollm:
            splitter.splitEachNumber(0..<scalars.count, into: &words) { splitter, chunk, words in
                splitter.splitGPT2(chunk, into: &words)
            }
        case .llamaBPE:
            splitter.splitLlama3(0..<scalars.count, maximumDigits: 3, into: &words)
        case .qwen2:
            splitter.splitLlama3(0..<scalars.count, maximumDigits: 1, into: &words)
        }
    }

    /// Splits `text` into words, for tests and debugging.
    func words(of text: String) -> [String] {
        let scalars = text.unicodeScalars.map(\.value)
        var ranges: [Range<Int>] = []
        split(scalars, into: &ranges)
        return ranges.map { range in
            var view = String.UnicodeScalarView()
            for value in scalars[range] { view.append(Unicode.Scalar(value)!) }
            return String(view)
        }
    }
}

/// The three scalar classes the splitters test, as bit flags.
///
/// `outside` (zero) marks a position past the end of the chunk being split, which llama.cpp's
/// splitters treat differently from every real scalar.
enum ScalarClass {
    static let outside: UInt8 = 0
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let other: UInt8 = 8

    private static let ascii: [UInt8] = (0..<128).map { value in
        switch UInt8(value) {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"): return letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return number
        case 0x09...0x0D, 0x20: return whitespace
        default: return other
        }
    }

    /// Returns the class of scalar value `value`.
    static func of(_ value: UInt32) -> UInt8 {
        if value < 128 { return ascii[Int(value)] }
        if isWhitespace(value) { return whitespace }
        guard let scalar = Unicode.Scalar(value) else { return other }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return other
        }
    }

    /// Tests whether a non-ASCII scalar has the Unicode White_Space property.
    private static func isWhitespace(_ value: UInt32) -> Bool {
        switch value {
        case 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }
}

/// The splitting state for one text: its scalars and their classes.
private struct WordSplitter {
    let scalars: [UInt32]
    let classes: [UInt8]

    init(scalars: [UInt32]) {
        self.scalars = scalars
        self.classes = scalars.map(ScalarClass.of)
    }

    /// Puts every number scalar in a chunk of its own and hands each chunk to `splitChunk`,
    /// as llama.cpp's first `\p{N}` pass does before the main rule.
    mutating func splitEachNumber(
        _ range: Range<Int>, into words: inout [Range<Int>],
        _ splitChunk: (inout WordSplitter, Range<Int>, inout [Range<Int>]) -> Void
    ) {
        var chunkStart = range.lowerBound
        for position in range where classes[position] == ScalarClass.number {
            if chunkStart < position {
                splitChunk(&self, chunkStart..<position, &words)
            }
            words.append(position..<position + 1)
            chunkStart = position + 1
        }
        if chunkStart < range.upperBound {
            splitChunk(&self, chunkStart..<range.upperBound, &words)
        }
    }

    /// Splits one chunk with the GPT-2 rule.
    ///
    /// `\s+(?!\S)` takes a whitespace run but leaves its last scalar for the next word when a
    /// non-whitespace scalar follows inside the chunk, so `"  world"` splits as `" "`,
    /// `" world"`. A run that ends the chunk is taken whole.
    func splitGPT2(_ range: Range<Int>, into words: inout [Range<Int>]) {
        let end = range.upperBound
        func classAt(_ position: Int) -> UInt8 { position < end ? classes[position] : ScalarClass.outside }

        var position = range.lowerBound
        var wordStart = position
        func emit(_ wordEnd: Int) {
            if wordEnd > wordStart { words.append(wordStart..<wordEnd) }
            wordStart = wordEnd
        }

        while position < end {
            let scalar = scalars[position]

            if scalar == 0x27, position + 1 < end {  // apostrophe: 's 't 'm 'd 're 've 'll
                let next = scalars[position + 1]
                if next == 0x73 || next == 0x74 || next == 0x6D || next == 0x64 {
                    position += 2
                    emit(position)
                    continue
                }
                if position + 2 < end {
                    let pair = (next, scalars[position + 2])
                    if pair == (0x72, 0x65) || pair == (0x76, 0x65) || pair == (0x6C, 0x6C) {
                        position += 3
                        emit(position)
                        continue
                    }
                }
            }

            // An optional leading U+0020 joins the run that follows it.
            let isSpace = scalar == 0x20
            let runClass = isSpace ? classAt(position + 1) : classes[position]
            if runClass == ScalarClass.letter || runClass == ScalarClass.number {
                if isSpace { position += 1 }
                while classAt(position) == runClass { position += 1 }
                emit(position)
                continue
            }
            if runClass == ScalarClass.other {
                if isSpace { position += 1 }
                while classAt(position) == ScalarClass.other { position += 1 }
                emit(position)
                continue
            }

            var whitespaceCount = 0
            while classAt(position + whitespaceCount) == ScalarClass.whitespace { whitespaceCount += 1 }
            if whitespaceCount > 1 && position + whitespaceCount < end {
                position += whitespaceCount - 1
            } else if whitespaceCount > 0 {
                position += whitespaceCount
            } else {
                position += 1
            }
            emit(position)
        }
    }

    /// Splits one chunk with the Llama 3 rule, putting numbers in groups of up to
    /// `maximumDigits` scalars.
    func splitLlama3(_ range: Range<Int>, maximumDigits: Int, into words: inout [Range<Int>]) {
        let end = range.upperBound
        func classAt(_ position: Int) -> UInt8 { position < end ? classes[position] : ScalarClass.outside }
        func isLineBreak(_ position: Int) -> Bool {
            position < end && (scalars[position] == 0x0A || scalars[position] == 0x0D)
        }

        var position = range.lowerBound
        var wordStart = position
        func emit(_ wordEnd: Int) {
            if wordEnd > wordStart { words.append(wordStart..<wordEnd) }
            wordStart = wordEnd
        }

        while position < end {
            let scalar = scalars[position]
            let scalarClass = classes[position]

            if scalar == 0x27, position + 1 < end {  // apostrophe, with ASCII case folding
                let next = asciiLowercase(scalars[position + 1])
                if next == 0x73 || next == 0x74 || next == 0x6D || next == 0x64 {
                    position += 2
                    emit(position)
                    continue
                }
                if position + 2 < end {
                    let pair = (next, asciiLowercase(scalars[position + 2]))
                    if pair == (0x72, 0x65) || pair == (0x76, 0x65) || pair == (0x6C, 0x6C) {
                        position += 3
                        emit(position)
                        continue
                    }
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !isLineBreak(position) && scalarClass != ScalarClass.number {
                if scalarClass == ScalarClass.letter || classAt(position + 1) == ScalarClass.letter {
                    position += 1
                    while classAt(position) == ScalarClass.letter { position += 1 }
                    emit(position)
                    continue
                }
            }

            // \p{N}{1,maximumDigits}
            if scalarClass == ScalarClass.number {
                var groupStart = position
                while classAt(position) == ScalarClass.number {
                    position += 1
                    if position - groupStart >= maximumDigits {
                        emit(position)
                        groupStart = position
                    }
                }
                emit(position)
                continue
            }

            // " ?[^\s\p{L}\p{N}]+[\r\n]*", which also takes a lone space at the chunk end.
            let isSpace = scalar == 0x20
            let runClass = isSpace ? classAt(position + 1) : scalarClass
            if runClass == ScalarClass.other || (isSpace && runClass == ScalarClass.outside) {
                if isSpace { position += 1 }
                while classAt(position) == ScalarClass.other { position += 1 }
                while isLineBreak(position) { position += 1 }
                emit(position)
                continue
            }

            var whitespaceCount = 0
            var lastLineBreakEnd = 0
            while classAt(position + whitespaceCount) == ScalarClass.whitespace {
                if isLineBreak(position + whitespaceCount) {
                    lastLineBreakEnd = position + whitespaceCount + 1
                }
                whitespaceCount += 1
            }
            if lastLineBreakEnd > 0 {  // \s*[\r\n]+
                position = lastLineBreakEnd
            } else if whitespaceCount > 1 && position + whitespaceCount < end {  // \s+(?!\S)
                position += whitespaceCount - 1
            } else if whitespaceCount > 0 {  // \s+
                position += whitespaceCount
            } else {
                position += 1
            }
            emit(position)
        }
    }

    private func asciiLowercase(_ value: UInt32) -> UInt32 {
        (0x41...0x5A).contains(value) ? value + 0x20 : value
    }
}
