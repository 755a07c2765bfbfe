/// llama.cpp's text-based rules for special tokens: which ids end generation and which token
/// types it overrides when it loads a vocabulary.
///
/// The lists follow llama.cpp's `llama_vocab::impl::load` (src/llama-vocab.cpp, read at commit
/// 00ad355e). llama.cpp picks the fill-in-the-middle (FIM) markers by iterating a hash map, so
/// its choice is unspecified when several tokens match one list. This type picks the lowest id.
enum SpecialTokenRules {
    /// Token texts that end generation wherever they occur in a vocabulary.
    static let endOfGenerationTexts: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<｜end▁of▁sentence｜>", "[e~[",
    ]

    /// FIM marker texts, one list per role, in the order llama.cpp checks them.
    static let fimPrefixTexts = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]
    static let fimSuffixTexts = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]
    static let fimMiddleTexts = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]
    static let fimPadTexts = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]
    static let fimRepositoryTexts = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]
    static let fimFileSeparatorTexts = ["<|file_sep|>"]

    /// Tokens llama.cpp always renders, whatever their stored type (the gpt-oss chat markers).
    static let forcedUserDefinedTexts: Set<String> = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]

    /// Special token ids read from the file, nil where the file names none.
    struct DeclaredIds {
        var eos: Int32?
        var eot: Int32?
        var eom: Int32?
        var fimPad: Int32?
        var fimRepository: Int32?
        var fimFileSeparator: Int32?
        var fimPrefix: Int32?
        var fimSuffix: Int32?
        var fimMiddle: Int32?
    }

    /// Applies llama.cpp's overrides to `types` and returns the end-of-generation ids.
    ///
    /// A FIM role without a declared id takes the lowest id whose text is on its list, and that
    /// token becomes a control token. Every token whose text is on the end-of-generation list
    /// ends generation and becomes a control token. The FIM pad, repository and file-separator
    /// tokens, EOS, EOT and EOM end generation too. Two exceptions follow llama.cpp. When
    /// `<|return|>` and `<|call|>` (or `<|calls|>` and `<|flush|>`) end generation, `<|end|>`
    /// does not and is rendered as text. When `<|tool_response>` ends generation, `</s>` is
    /// ordinary text.
    /// Complexity: O(vocabulary size).
    static func resolve(texts: [String], types: inout [TokenType], idForText: [String: Int32], declared: DeclaredIds) -> Set<Int32> {
        func firstMatch(_ candidates: [String]) -> Int32? {
            candidates.compactMap { idForText[$0] }.min()
        }
        func detect(_ declaredId: Int32?, _ candidates: [String]) -> Int32? {
            if let declaredId { return declaredId }
            guard let id = firstMatch(candidates) else { return nil }
            types[Int(id)] = .control
            return id
        }

        _ = detect(declared.fimPrefix, fimPrefixTexts)
        _ = detect(declared.fimSuffix, fimSuffixTexts)
        _ = detect(declared.fimMiddle, fimMiddleTexts)
        let fimPad = detect(declared.fimPad, fimPadTexts)
        let fimRepository = detect(declared.fimRepository, fimRepositoryTexts)
        let fimFileSeparator = detect(declared.fimFileSeparator, fimFileSeparatorTexts)

        var endIds = Set<Int32>()
        for id in [fimPad, fimRepository, fimFileSeparator].compactMap({ $0 }) {
            endIds.insert(id)
        }
        for text in endOfGenerationTexts {
            guard let id = idForText[text] else { continue }
            endIds.insert(id)
            types[Int(id)] = .control
        }
        for text in forcedUserDefinedTexts {
            if let id = idForText[text] { types[Int(id)] = .userDefined }
        }
        for id in [declared.eos, declared.eot, declared.eom].compactMap({ $0 }) {
            endIds.insert(id)
        }

        let endTexts = Set(endIds.map { texts[Int($0)] })
        let hasHarmonyEnds = endTexts.contains("<|return|>") && endTexts.contains("<|call|>")
        let hasSolarEnds = endTexts.contains("<|calls|>") && endTexts.contains("<|flush|>")
        if (hasHarmonyEnds || hasSolarEnds), let id = endIds.first(where: { texts[Int($0)] == "<|end|>" }) {
            endIds.remove(id)
            types[Int(id)] = .userDefined
        }
        if endTexts.contains("<|tool_response>"), let id = endIds.first(where: { texts[Int($0)] == "</s>" }) {
            endIds.remove(id)
            types[Int(id)] = .normal
        }
        return endIds
    }
}
