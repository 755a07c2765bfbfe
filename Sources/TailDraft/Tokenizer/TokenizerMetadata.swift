/// Building a `BPETokenizer` from GGUF metadata.
extension BPETokenizer {
    /// Builds the tokenizer described by a GGUF file's `tokenizer.*` metadata.
    ///
    /// - Throws: `GGUFError` naming the key, as `init(metadata:)` describes.
    public convenience init(gguf: GGUFFile) throws {
        try self.init(metadata: gguf.metadata)
    }

    /// Builds the tokenizer described by GGUF `tokenizer.*` metadata.
    ///
    /// Reads `tokenizer.ggml.model` (must be `gpt2`), `.tokens`, `.merges`, `.token_type`,
    /// `.pre`, the special ids (`bos_token_id`, `eos_token_id`, `eot_token_id`,
    /// `eom_token_id`, `padding_token_id` and the `fim_*_token_id` keys), `add_bos_token`,
    /// `add_eos_token` and `tokenizer.chat_template`. Only the model, tokens, merges and
    /// pre-tokenizer are required.
    ///
    /// - Throws: `GGUFError.missingKey` for an absent required key or a value of the wrong type,
    ///   `GGUFError.invalidValue` for an unsupported model or pre-tokenizer, too few token types
    ///   or a special id out of range, and `TokenizerError.duplicateToken` for a repeated token.
    /// - Complexity: O(total length of the tokens and merges).
    public convenience init(metadata: [String: GGUFValue]) throws {
        let reader = TokenizerMetadataReader(metadata: metadata)

        let model = try reader.string("tokenizer.ggml.model")
        guard model == "gpt2" else {
            throw GGUFError.invalidValue(
                key: "tokenizer.ggml.model", value: "\"\(model)\"",
                expected: "\"gpt2\" (byte-level BPE), the only tokenizer model this engine supports; use a model with a GPT-2 style tokenizer")
        }
        let tokens = try reader.stringArray("tokenizer.ggml.tokens")
        let merges = try reader.stringArray("tokenizer.ggml.merges")

        let pre = try reader.string("tokenizer.ggml.pre")
        guard PreTokenizer.acceptedNames.contains(where: { $0.name == pre }) else {
            let names = PreTokenizer.acceptedNames.map(\.name).joined(separator: ", ")
            throw GGUFError.invalidValue(
                key: "tokenizer.ggml.pre", value: "\"\(pre)\"",
                expected: "one of \(names); use a model whose tokenizer uses one of these pre-tokenizers")
        }

        var types: [TokenType]? = nil
        if let codes = try reader.optionalIntArray("tokenizer.ggml.token_type") {
            guard codes.count >= tokens.count else {
                throw GGUFError.invalidValue(
                    key: "tokenizer.ggml.token_type", value: "an array of \(codes.count) entries",
                    expected: "one entry per token (\(tokens.count)); the file is corrupt")
            }
            types = codes.prefix(tokens.count).map(TokenType.init(code:))
        }

        func tokenId(_ key: String) throws -> Int32? {
            guard let id = try reader.optionalInt(key) else { return nil }
            guard (0..<tokens.count).contains(id) else {
                throw GGUFError.invalidValue(
                    key: key, value: String(id), expected: "a token id in 0..<\(tokens.count); the file is corrupt")
            }
            return Int32(id)
        }
        let ids = SpecialTokenIds(
            bos: try tokenId("tokenizer.ggml.bos_token_id"),
            eos: try tokenId("tokenizer.ggml.eos_token_id"),
            eot: try tokenId("tokenizer.ggml.eot_token_id"),
            eom: try tokenId("tokenizer.ggml.eom_token_id"),
            padding: try tokenId("tokenizer.ggml.padding_token_id"),
            fimPrefix: try tokenId("tokenizer.ggml.fim_pre_token_id"),
            fimSuffix: try tokenId("tokenizer.ggml.fim_suf_token_id"),
            fimMiddle: try tokenId("tokenizer.ggml.fim_mid_token_id"),
            fimPad: try tokenId("tokenizer.ggml.fim_pad_token_id"),
            fimRepository: try tokenId("tokenizer.ggml.fim_rep_token_id"),
            fimFileSeparator: try tokenId("tokenizer.ggml.fim_sep_token_id"))

        let addBOS = try reader.optionalBool("tokenizer.ggml.add_bos_token")
        let addEOS = try reader.optionalBool("tokenizer.ggml.add_eos_token") ?? false
        if addBOS == true && ids.bos == nil {
            throw GGUFError.missingKey(key: "tokenizer.ggml.bos_token_id", expected: "an integer (tokenizer.ggml.add_bos_token is true)")
        }
        if addEOS && ids.eos == nil {
            throw GGUFError.missingKey(key: "tokenizer.ggml.eos_token_id", expected: "an integer (tokenizer.ggml.add_eos_token is true)")
        }

        try self.init(
            tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: pre, specialIds: ids,
            addBOS: addBOS, addEOS: addEOS, chatTemplate: try reader.optionalString("tokenizer.chat_template"))
    }
}

/// Typed reads of tokenizer metadata, with errors that name the key.
private struct TokenizerMetadataReader {
    let metadata: [String: GGUFValue]

    func string(_ key: String) throws -> String {
        guard let value = metadata[key]?.stringValue else { throw GGUFError.missingKey(key: key, expected: "a string") }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = metadata[key] else { return nil }
        guard let string = value.stringValue else {
            throw GGUFError.invalidValue(key: key, value: value.summary, expected: "a string")
        }
        return string
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let value = metadata[key] else { return nil }
        guard let int = value.intValue else {
            throw GGUFError.invalidValue(key: key, value: value.summary, expected: "an integer")
        }
        return int
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let value = metadata[key] else { return nil }
        guard let bool = value.boolValue else {
            throw GGUFError.invalidValue(key: key, value: value.summary, expected: "a boolean")
        }
        return bool
    }

    func stringArray(_ key: String) throws -> [String] {
        guard let items = metadata[key]?.arrayValue else {
            throw GGUFError.missingKey(key: key, expected: "an array of strings")
        }
        var strings: [String] = []
        strings.reserveCapacity(items.count)
        for item in items {
            guard let string = item.stringValue else {
                throw GGUFError.missingKey(key: key, expected: "an array of strings")
            }
            strings.append(string)
        }
        return strings
    }

    func optionalIntArray(_ key: String) throws -> [Int]? {
        guard let value = metadata[key] else { return nil }
        guard let items = value.arrayValue else {
            throw GGUFError.invalidValue(key: key, value: value.summary, expected: "an array of integers")
        }
        var ints: [Int] = []
        ints.reserveCapacity(items.count)
        for item in items {
            guard let int = item.intValue else {
                throw GGUFError.invalidValue(key: key, value: value.summary, expected: "an array of integers")
            }
            ints.append(int)
        }
        return ints
    }
}
