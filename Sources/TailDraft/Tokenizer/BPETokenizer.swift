/// Special token ids of a vocabulary, nil where the model names none.
public struct SpecialTokenIds: Sendable, Equatable {
    public var bos: Int32?
    public var eos: Int32?
    /// End of turn.
    public var eot: Int32?
    /// End of message (a tool call that expects a reply).
    public var eom: Int32?
    public var padding: Int32?
    public var fimPrefix: Int32?
    public var fimSuffix: Int32?
    public var fimMiddle: Int32?
    public var fimPad: Int32?
    public var fimRepository: Int32?
    public var fimFileSeparator: Int32?

    public init(
        bos: Int32? = nil, eos: Int32? = nil, eot: Int32? = nil, eom: Int32? = nil, padding: Int32? = nil,
        fimPrefix: Int32? = nil, fimSuffix: Int32? = nil, fimMiddle: Int32? = nil,
        fimPad: Int32? = nil, fimRepository: Int32? = nil, fimFileSeparator: Int32? = nil
    ) {
        self.bos = bos
        self.eos = eos
        self.eot = eot
        self.eom = eom
        self.padding = padding
        self.fimPrefix = fimPrefix
        self.fimSuffix = fimSuffix
        self.fimMiddle = fimMiddle
        self.fimPad = fimPad
        self.fimRepository = fimRepository
        self.fimFileSeparator = fimFileSeparator
    }

    /// Each id with the name used in error messages.
    var named: [(role: String, id: Int32?)] {
        [("BOS", bos), ("EOS", eos), ("EOT", eot), ("EOM", eom), ("padding", padding),
         ("FIM prefix", fimPrefix), ("FIM suffix", fimSuffix), ("FIM middle", fimMiddle),
         ("FIM pad", fimPad), ("FIM repository", fimRepository), ("FIM file separator", fimFileSeparator)]
    }
}

/// A GPT-2 style byte-level BPE tokenizer that reproduces llama.cpp's token ids.
///
/// Encoding runs in four steps, as llama.cpp's does. First, special-token texts are cut out of
/// the input, and `parseSpecial` decides whether control tokens count. The `PreTokenizer` then
/// splits the remaining text into words. Each word's UTF-8 bytes become byte symbols, and the
/// merge rules join adjacent symbols in rank order. Instances are immutable and safe to share
/// across threads.
public final class BPETokenizer: Sendable {
    /// The number of tokens in the vocabulary.
    public let vocabularySize: Int
    public let preTokenizer: PreTokenizer
    public let specialIds: SpecialTokenIds
    /// Whether `encode` puts BOS first when `addSpecial` is true.
    public let addBOS: Bool
    /// Whether `encode` puts EOS last when `addSpecial` is true.
    public let addEOS: Bool
    /// The ids that end generation, by llama.cpp's rule (see `SpecialTokenRules.resolve`).
    public let endOfGenerationIds: Set<Int32>
    /// The Jinja chat template stored with the model, if any.
    public let chatTemplateSource: String?

    /// Token texts as stored: the byte-level mapped form for normal tokens.
    let tokenTexts: [String]
    /// Token types after llama.cpp's text-based overrides.
    let tokenTypes: [TokenType]
    /// The id of every token text and of every extra merge symbol.
    let idForText: [String: Int32]
    /// The decoded pieces of all tokens, concatenated. Token `i`'s piece is
    /// `pieceStorage[pieceOffsets[i]..<pieceOffsets[i + 1]]`.
    let pieceStorage: [UInt8]
    let pieceOffsets: [Int32]
    /// The symbol id of each single byte.
    let byteSymbols: [Int32]
    /// Mapped texts of symbols that merges name but the vocabulary lacks, from id `vocabularySize` on.
    let extraSymbolTexts: [String]
    let merges: BPEMergeTable
    /// Control, user-defined and unknown tokens, longest text first, with their UTF-8 bytes.
    let specialTokens: [(id: Int32, bytes: [UInt8])]

    public var bosId: Int32? { specialIds.bos }
    public var eosId: Int32? { specialIds.eos }

    /// Builds a tokenizer from vocabulary arrays.
    ///
    /// - Parameters:
    ///   - tokens: Token texts by id, with normal tokens in the byte-level mapped form (`Ġthe`).
    ///     An empty text becomes `[EMPTY_<id>]`, as in llama.cpp.
    ///   - merges: Merge rules `"left right"` in rank order.
    ///   - tokenTypes: One type per token. Nil makes every token normal.
    ///   - preTokenizer: A `tokenizer.ggml.pre` name from `PreTokenizer.acceptedNames`.
    ///   - specialIds: BOS, EOS and the other special ids.
    ///   - addBOS: Whether to add BOS. Nil takes the pre-tokenizer's default (true only for
    ///     `llama-bpe`).
    ///   - addEOS: Whether to add EOS.
    ///   - chatTemplate: The model's Jinja chat template, if any.
    /// - Throws: `TokenizerError` for an unknown pre-tokenizer, a duplicate token text, too few
    ///   token types, an out-of-range special id, or `addBOS`/`addEOS` without the token.
    /// - Complexity: O(total length of `tokens` and `merges`).
    public init(
        tokens: [String], merges: [String], tokenTypes: [TokenType]? = nil, preTokenizer: String,
        specialIds: SpecialTokenIds = SpecialTokenIds(), addBOS: Bool? = nil, addEOS: Bool = false,
        chatTemplate: String? = nil
    ) throws {
        let rule = try PreTokenizer(name: preTokenizer)
        let count = tokens.count
        var types = tokenTypes ?? [TokenType](repeating: .normal, count: count)
        guard types.count >= count else {
            throw TokenizerError.tokenTypeCountMismatch(tokenCount: count, typeCount: types.count)
        }
        types.removeLast(types.count - count)
        for (role, id) in specialIds.named {
            if let id, !(0..<count).contains(Int(id)) {
                throw TokenizerError.specialTokenOutOfRange(role: role, id: Int(id), vocabularySize: count)
            }
        }
        let addsBOS = addBOS ?? rule.addsBOSByDefault
        if addsBOS && specialIds.bos == nil {
            throw TokenizerError.missingSpecialToken(role: "BOS", requiredBy: "adding BOS")
        }
        if addEOS && specialIds.eos == nil {
            throw TokenizerError.missingSpecialToken(role: "EOS", requiredBy: "adding EOS")
        }

        var texts = tokens
        var idForText: [String: Int32] = [:]
        idForText.reserveCapacity(count)
        for id in 0..<count {
            if texts[id].isEmpty { texts[id] = "[EMPTY_\(id)]" }
            if let previous = idForText.updateValue(Int32(id), forKey: texts[id]) {
                throw TokenizerError.duplicateToken(text: texts[id], firstId: Int(previous), secondId: id)
            }
        }

        var extraTexts: [String] = []
        func symbolId(_ text: String) -> Int32 {
            if let id = idForText[text] { return id }
            let id = Int32(count + extraTexts.count)
            extraTexts.append(text)
            idForText[text] = id
            return id
        }
        self.byteSymbols = ByteLevelEncoding.textForByte.map(symbolId)
        self.merges = BPEMergeTable(merges: merges, symbolId: symbolId)
        self.extraSymbolTexts = extraTexts

        let declared = SpecialTokenRules.DeclaredIds(
            eos: specialIds.eos, eot: specialIds.eot, eom: specialIds.eom,
            fimPad: specialIds.fimPad, fimRepository: specialIds.fimRepository,
            fimFileSeparator: specialIds.fimFileSeparator, fimPrefix: specialIds.fimPrefix,
            fimSuffix: specialIds.fimSuffix, fimMiddle: specialIds.fimMiddle)
        self.endOfGenerationIds = SpecialTokenRules.resolve(texts: texts, types: &types, idForText: idForText, declared: declared)

        var storage: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(count + 1)
        for id in 0..<count {
            storage.append(contentsOf: Self.piece(text: texts[id], type: types[id]))
            offsets.append(Int32(storage.count))
        }
        self.pieceStorage = storage
        self.pieceOffsets = offsets

        // Equal lengths keep id order, where llama.cpp's unstable sort leaves the order unspecified.
        self.specialTokens = (0..<count)
            .filter { types[$0] == .control || types[$0] == .userDefined || types[$0] == .unknown }
            .map { (id: Int32($0), bytes: Array(texts[$0].utf8)) }
            .sorted { $0.bytes.count > $1.bytes.count || ($0.bytes.count == $1.bytes.count && $0.id < $1.id) }

        self.vocabularySize = count
        self.preTokenizer = rule
        self.specialIds = specialIds
        self.addBOS = addsBOS
        self.addEOS = addEOS
        self.chatTemplateSource = chatTemplate
        self.tokenTexts = texts
        self.tokenTypes = types
        self.idForText = idForText
    }

    /// Computes the bytes llama.cpp renders for a token with special rendering off.
    private static func piece(text: String, type: TokenType) -> [UInt8] {
        switch type {
        case .normal:
            return ByteLevelEncoding.decode(text)
        case .userDefined:
            return Array(text.utf8)
        case .byte:
            // `<0xXX>`
            let utf8 = Array(text.utf8)
            guard utf8.count == 6, let value = UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16) else {
                return []
            }
            return [value]
        case .control, .unknown, .unused, .undefined:
            return []
        }
    }

    // MARK: - Token queries

    /// Returns the stored text of token `id` (mapped form for normal tokens), or nil when out of range.
    public func tokenText(_ id: Int32) -> String? {
        (0..<vocabularySize).contains(Int(id)) ? tokenTexts[Int(id)] : nil
    }

    /// Returns the type of token `id` after llama.cpp's overrides, or nil when out of range.
    public func tokenType(_ id: Int32) -> TokenType? {
        (0..<vocabularySize).contains(Int(id)) ? tokenTypes[Int(id)] : nil
    }

    /// Returns the id of the token whose stored text is `text`, or nil.
    public func tokenId(forText text: String) -> Int32? {
        guard let id = idForText[text], Int(id) < vocabularySize else { return nil }
        return id
    }

    /// Tests whether token `id` is a control token, which is false for an id out of range.
    public func isControl(_ id: Int32) -> Bool {
        tokenType(id) == .control
    }

    /// Tests whether token `id` ends generation.
    public func isEndOfGeneration(_ id: Int32) -> Bool {
        endOfGenerationIds.contains(id)
    }

    /// Returns the bytes token `id` renders as, with control and unknown tokens empty, as
    /// llama.cpp renders them with special rendering off. A piece may be part of a UTF-8
    /// character. An id out of range renders as empty.
    public func pieceBytes(_ id: Int32) -> [UInt8] {
        guard (0..<vocabularySize).contains(Int(id)) else { return [] }
        return Array(pieceStorage[Int(pieceOffsets[Int(id)])..<Int(pieceOffsets[Int(id) + 1])])
    }

    /// Appends the piece of token `id` to `bytes`, or nothing for an id out of range.
    func appendPiece(_ id: Int32, to bytes: inout [UInt8]) {
        guard (0..<vocabularySize).contains(Int(id)) else { return }
        bytes.append(contentsOf: pieceStorage[Int(pieceOffsets[Int(id)])..<Int(pieceOffsets[Int(id) + 1])])
    }

    // MARK: - Decoding

    /// Decodes token ids to text: the concatenated pieces, with invalid UTF-8 replaced by U+FFFD.
    ///
    /// Spaces are kept as they are: no space before punctuation is removed, unlike llama.cpp's
    /// `clean_up_tokenization_spaces`, which is off for the `smollm` and `qwen2` pre-tokenizers.
    /// Complexity: O(output length).
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            appendPiece(id, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Encoding

    /// Encodes text to token ids.
    ///
    /// - Parameters:
    ///   - parseSpecial: Whether control-token texts such as `<|im_start|>` in `text` become
    ///     control tokens (llama.cpp's rule for a raw prompt). When false they are ordinary
    ///     text (the rule for user content). User-defined tokens are matched either way.
    ///   - addSpecial: Whether to add BOS and EOS as `addBOS` and `addEOS` specify.
    /// - Complexity: O(n log n) for n bytes, plus O(n) per special token.
    public func encode(_ text: String, parseSpecial: Bool, addSpecial: Bool = true) -> [Int32] {
        var output: [Int32] = []
        if addSpecial && addBOS, let bos = specialIds.bos {
            output.append(bos)
        }
        let bytes = Array(text.utf8)
        var scratch = EncodingScratch()
        for fragment in partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case let .token(id):
                output.append(id)
            case let .text(range):
                encodeText(bytes[range], into: &output, scratch: &scratch)
            }
        }
        if addSpecial && addEOS, let eos = specialIds.eos {
            output.append(eos)
        }
        return output
    }

    /// Encodes text without special-token matching or BOS: pre-tokenization and merges only.
    func encodeText(_ bytes: ArraySlice<UInt8>, into output: inout [Int32], scratch: inout EncodingScratch) {
        scratch.scalars.removeAll(keepingCapacity: true)
        scratch.scalarOffsets.removeAll(keepingCapacity: true)
        UTF8Scalars.decode(bytes, scalars: &scratch.scalars, offsets: &scratch.scalarOffsets)

        scratch.words.removeAll(keepingCapacity: true)
        preTokenizer.split(scratch.scalars, into: &scratch.words)

        for word in scratch.words {
            let start = scratch.scalarOffsets[word.lowerBound]
            let end = scratch.scalarOffsets[word.upperBound]
            let wordBytes = bytes[start..<end]

            if preTokenizer.ignoresMergesForVocabularyWords,
               let id = idForText[ByteLevelEncoding.encode(wordBytes)], Int(id) < vocabularySize {
                output.append(id)
                continue
            }

            scratch.symbols.removeAll(keepingCapacity: true)
            for byte in wordBytes {
                scratch.symbols.append(byteSymbols[Int(byte)])
            }
            merges.apply(to: &scratch.symbols, scratch: &scratch.merge)
            for symbol in scratch.symbols {
                if Int(symbol) < vocabularySize {
                    output.append(symbol)
                } else {
                    appendFallback(forExtraSymbol: symbol, to: &output)
                }
            }
        }
    }

    /// Emits a symbol that is not a token the way llama.cpp does: each byte of its mapped text
    /// that is itself a one-byte token text becomes that token, and other bytes are dropped.
    private func appendFallback(forExtraSymbol symbol: Int32, to output: inout [Int32]) {
        for byte in extraSymbolTexts[Int(symbol) - vocabularySize].utf8 where byte < 0x80 {
            if let id = idForText[String(UnicodeScalar(byte))], Int(id) < vocabularySize {
                output.append(id)
            }
        }
    }
}

/// Reusable buffers for one `encode` call.
struct EncodingScratch {
    var scalars: [UInt32] = []
    /// The byte offset of each scalar, plus the end offset.
    var scalarOffsets: [Int] = []
    var words: [Range<Int>] = []
    var symbols: [Int32] = []
    var merge = MergeScratch()
}

/// UTF-8 decoding into scalar values with byte offsets.
enum UTF8Scalars {
    /// Decodes well-formed UTF-8 `bytes`, appending each scalar and its offset in `bytes`'
    /// indices, then the end offset. Bytes from a Swift `String` are always well-formed.
    static func decode(_ bytes: ArraySlice<UInt8>, scalars: inout [UInt32], offsets: inout [Int]) {
        var index = bytes.startIndex
        let end = bytes.endIndex
        while index < end {
            let lead = bytes[index]
            var value: UInt32
            var length: Int
            switch lead {
            case 0..<0x80: value = UInt32(lead); length = 1
            case 0xC0..<0xE0: value = UInt32(lead & 0x1F); length = 2
            case 0xE0..<0xF0: value = UInt32(lead & 0x0F); length = 3
            default: value = UInt32(lead & 0x07); length = 4
            }
            length = min(length, end - index)
            for offset in 1..<max(length, 1) {
                value = value << 6 | UInt32(bytes[index + offset] & 0x3F)
            }
            scalars.append(value)
            offsets.append(index)
            index += length
        }
        offsets.append(end)
    }
}
