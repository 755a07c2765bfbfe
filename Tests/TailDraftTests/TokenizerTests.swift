import Foundation
import Testing
@testable import TailDraft

/// The real SmolLM2 tokenizer and the llama.cpp fixtures, loaded once.
private enum SmolLM2 {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let repositoryRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static let modelPath = repositoryRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let modelMissingMessage: Comment = "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent; run scripts/fetch-model.sh"

    static var modelIsPresent: Bool { FileManager.default.fileExists(atPath: modelPath) }

    static let tokenizer: BPETokenizer? = {
        guard modelIsPresent else { return nil }
        return try? BPETokenizer(gguf: GGUFFile(path: modelPath))
    }()

    struct TokenizeCase: Decodable {
        let text: String
        let ids_parse_special: [Int32]
        let ids_plain_text: [Int32]?
    }

    struct GreedyCase: Decodable {
        let id: String
        let prompt: String
        let prompt_token_ids: [Int32]
        let generated_token_ids: [Int32]
        let generated_text: String
    }

    static func fixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let url = testsDirectory.deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }

    static func loadedTokenizer() throws -> BPETokenizer {
        try #require(tokenizer, "the tokenizer failed to load from \(modelPath)")
    }
}

/// Builds a tiny vocabulary: the 256 byte tokens followed by `extra` tokens.
private func tinyTokenizer(
    extra: [(String, TokenType)] = [], merges: [String] = [], preTokenizer: String = "smollm",
    specialIds: SpecialTokenIds = SpecialTokenIds(), addBOS: Bool? = nil
) throws -> BPETokenizer {
    let tokens = ByteLevelEncoding.textForByte + extra.map(\.0)
    let types = [TokenType](repeating: .normal, count: 256) + extra.map(\.1)
    return try BPETokenizer(
        tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: preTokenizer,
        specialIds: specialIds, addBOS: addBOS)
}

/// Minimal valid tokenizer metadata for the bad-input tests.
private func tinyMetadata() -> [String: GGUFValue] {
    let tokens = ByteLevelEncoding.textForByte + ["<|endoftext|>"]
    return [
        "tokenizer.ggml.model": .string("gpt2"),
        "tokenizer.ggml.pre": .string("smollm"),
        "tokenizer.ggml.tokens": .array(elementType: 8, tokens.map { .string($0) }),
        "tokenizer.ggml.merges": .array(elementType: 8, [.string("Ġ a")]),
        "tokenizer.ggml.token_type": .array(elementType: 5, tokens.indices.map { .int32($0 == 256 ? 3 : 1) }),
        "tokenizer.ggml.eos_token_id": .uint32(256),
    ]
}

@Suite struct PreTokenizerTests {
    @Test func smollmSplits() throws {
        let cases: [(String, [String])] = [
            ("Hello  world", ["Hello", " ", " world"]),
            ("  leading", [" ", " leading"]),
            ("a\n\nb", ["a", "\n", "\n", "b"]),
            ("\n\n\nA", ["\n\n", "\n", "A"]),
            ("x = 12345", ["x", " =", " ", "1", "2", "3", "4", "5"]),
            ("I'M", ["I", "'", "M"]),
            ("I'm", ["I", "'m"]),
            ("hello\r\nworld", ["hello", "\r", "\n", "world"]),
            ("a 🦙 b", ["a", " 🦙", " b"]),
            ("½ cup", ["½", " cup"]),
            ("٣٤", ["٣", "٤"]),
            ("trailing  ", ["trailing", "  "]),
            ("", []),
        ]
        for (text, expected) in cases {
            #expect(PreTokenizer.smollm.words(of: text) == expected, "input \(text.debugDescription)")
        }
    }

    @Test func gpt2Splits() {
        let cases: [(String, [String])] = [
            ("x = 12345", ["x", " =", " 12345"]),
            ("I'm  fine", ["I", "'m", " ", " fine"]),
            ("a\t\tb", ["a", "\t", "\t", "b"]),
            ("don't!?", ["don", "'t", "!?"]),
        ]
        for (text, expected) in cases {
            #expect(PreTokenizer.gpt2.words(of: text) == expected, "input \(text.debugDescription)")
        }
    }

    @Test func llamaBPESplits() {
        let cases: [(String, [String])] = [
            ("x = 12345", ["x", " =", " ", "123", "45"]),
            ("I'M here", ["I", "'M", " here"]),
            ("a\n\n  b", ["a", "\n\n", " ", " b"]),
            ("hello!!\n\nworld", ["hello", "!!\n\n", "world"]),
            ("\tindent", ["\tindent"]),
            ("end  ", ["end", "  "]),
            ("end ", ["end", " "]),
        ]
        for (text, expected) in cases {
            #expect(PreTokenizer.llamaBPE.words(of: text) == expected, "input \(text.debugDescription)")
        }
    }

    @Test func qwen2Splits() {
        #expect(PreTokenizer.qwen2.words(of: "x = 12345") == ["x", " =", " ", "1", "2", "3", "4", "5"])
        #expect(PreTokenizer.qwen2.words(of: "It's") == ["It", "'s"])
    }

    @Test func unknownNameThrows() {
        #expect(throws: TokenizerError.self) { try PreTokenizer(name: "default") }
        do {
            _ = try PreTokenizer(name: "no-such-rule")
            Issue.record("expected an error")
        } catch {
            let message = String(describing: error)
            #expect(message.contains("no-such-rule"))
            #expect(message.contains("smollm"))
        }
    }
}

@Suite struct TokenizerTests {
    // MARK: - llama.cpp fixtures

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func encodeMatchesFixtureParseSpecial() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        for entry in try SmolLM2.fixture("smollm2-tokenize.json", as: [SmolLM2.TokenizeCase].self) {
            #expect(tokenizer.encode(entry.text, parseSpecial: true) == entry.ids_parse_special, "input \(entry.text.debugDescription)")
        }
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func encodeMatchesFixturePlainText() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        let entries = try SmolLM2.fixture("smollm2-tokenize.json", as: [SmolLM2.TokenizeCase].self)
        for entry in entries {
            let expected = entry.ids_plain_text ?? entry.ids_parse_special
            #expect(tokenizer.encode(entry.text, parseSpecial: false) == expected, "input \(entry.text.debugDescription)")
        }
        #expect(entries.contains { $0.ids_plain_text != nil })
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func encodeMatchesGreedyPrompts() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        for entry in try SmolLM2.fixture("smollm2-greedy.json", as: [SmolLM2.GreedyCase].self) {
            #expect(tokenizer.encode(entry.prompt, parseSpecial: true) == entry.prompt_token_ids, "prompt \(entry.id)")
        }
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func decodeMatchesGeneratedText() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        for entry in try SmolLM2.fixture("smollm2-greedy.json", as: [SmolLM2.GreedyCase].self) {
            #expect(tokenizer.decode(entry.generated_token_ids) == entry.generated_text, "prompt \(entry.id)")
        }
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func vocabularyFacts() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.preTokenizer == .smollm)
        #expect(tokenizer.bosId == 1)
        #expect(tokenizer.eosId == 2)
        #expect(tokenizer.specialIds.padding == 2)
        #expect(tokenizer.addBOS == false)
        #expect(tokenizer.isControl(1))
        #expect(!tokenizer.isControl(81))
        #expect(tokenizer.pieceBytes(2).isEmpty)
        #expect(tokenizer.pieceBytes(216) == [0x20])
        #expect(tokenizer.encode("", parseSpecial: true).isEmpty)
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func endOfGenerationIdsForSmolLM2() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        #expect(tokenizer.endOfGenerationIds == [0, 2, 4])
        #expect(tokenizer.isEndOfGeneration(4))
        #expect(!tokenizer.isEndOfGeneration(3))
    }

    // MARK: - Round trips

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func roundTripFixedStrings() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        for text in [" ?", "x != y", "hello !", "a , b", "  two  spaces  ", "don 't", "\u{0}\u{7F}"] {
            let decoded = tokenizer.decode(tokenizer.encode(text, parseSpecial: false))
            #expect(Array(decoded.utf8) == Array(text.utf8), "input \(text.debugDescription)")
        }
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func roundTripRandomStrings() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        let seed: UInt64 = 0x7A11_D4AF_7000_0001
        var generator = SplitMix64(seed: seed)
        let pools: [[Unicode.Scalar]] = [
            Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'\"!?.,;:-_=+()[]{}<>|/\\@#$%^&*~`".unicodeScalars),
            [" ", " ", " ", "\n", "\t", "\r", "\u{A0}", "\u{3000}", "\u{2028}"],
            // SmolLM2's vocabulary has no byte token for 0x04, 0x06, 0x13, 0x14, 0x16 and 0x1D,
            // so those characters are dropped (see bytesMissingFromVocabularyAreDropped).
            (0x00...0x1F).filter { ![0x04, 0x06, 0x13, 0x14, 0x16, 0x1D].contains($0) }.map { Unicode.Scalar($0)! }
                + [Unicode.Scalar(0x7F)!, "\u{85}"],
            (0x4E00...0x4EFF).map { Unicode.Scalar($0)! } + Array("日本語의한국어ひらがなカタカナ".unicodeScalars),
            (0x1F300...0x1F64F).compactMap(Unicode.Scalar.init) + ["\u{200D}", "\u{FE0F}", "\u{1F3FD}"],
            (0x0300...0x036F).map { Unicode.Scalar($0)! } + Array("éüñçअआइ्".unicodeScalars),
            Array("½¾٣٤۵߀०१".unicodeScalars),
        ]
        for caseIndex in 0..<1000 {
            var scalars = String.UnicodeScalarView()
            let length = Int.random(in: 0...24, using: &generator)
            for _ in 0..<length {
                let pool = pools[Int.random(in: 0..<pools.count, using: &generator)]
                scalars.append(pool[Int.random(in: 0..<pool.count, using: &generator)])
            }
            if Int.random(in: 0..<10, using: &generator) == 0 {
                scalars.append(contentsOf: "<|im_end|>".unicodeScalars)
            }
            let text = String(scalars)
            let decoded = tokenizer.decode(tokenizer.encode(text, parseSpecial: false))
            #expect(Array(decoded.utf8) == Array(text.utf8), "seed \(seed), case \(caseIndex), input \(text.debugDescription)")
        }
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func bytesMissingFromVocabularyAreDropped() throws {
        // llama.cpp falls back to one-byte tokens for a symbol that is not in the vocabulary,
        // and SmolLM2 has no token for byte 0x04, so the character produces no id.
        let tokenizer = try SmolLM2.loadedTokenizer()
        #expect(tokenizer.encode("a\u{4}b", parseSpecial: false) == [81, 82])
    }

    // MARK: - Streaming

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func streamingNeverSplitsCharacters() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        for text in ["a 🦙 b", "🦙日本", "नमस्ते", "café", "👩‍💻 done"] {
            let ids = tokenizer.encode(text, parseSpecial: false)
            var stream = StreamingDetokenizer(tokenizer: tokenizer)
            var chunks: [String] = []
            for id in ids {
                chunks.append(stream.append(id))
            }
            chunks.append(stream.finish())
            for chunk in chunks {
                #expect(!chunk.unicodeScalars.contains("\u{FFFD}"), "input \(text.debugDescription), chunks \(chunks)")
            }
            #expect(chunks.joined() == tokenizer.decode(ids))
            #expect(chunks.joined() == text)
        }
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func streamingHoldsPartialLlama() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        let ids = tokenizer.encode("a 🦙 b", parseSpecial: false)
        #expect(ids == [81, 15107, 116, 243, 278])
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        #expect(stream.append(81) == "a")
        #expect(stream.append(15107) == " ")
        #expect(stream.append(116) == "")
        #expect(stream.append(243) == "🦙")
        #expect(stream.append(278) == " b")
        #expect(stream.finish() == "")
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func streamingFlushesInvalidTailOnce() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        let ids = tokenizer.encode("a 🦙", parseSpecial: false)
        var text = ""
        for id in ids.dropLast() {
            text += stream.append(id)
        }
        #expect(text == "a ")
        #expect(stream.finish() == "\u{FFFD}")
        #expect(stream.finish() == "")
    }

    @Test func incompleteTailLengthCases() {
        let cases: [([UInt8], Int)] = [
            ([], 0),
            ([0x61], 0),
            ([0x61, 0xF0], 1),
            ([0xF0, 0x9F], 2),
            ([0xF0, 0x9F, 0xA6], 3),
            ([0xF0, 0x9F, 0xA6, 0x99], 0),
            ([0xE2, 0x82], 2),
            ([0xE0, 0x80], 0),  // overlong form: invalid, not incomplete
            ([0xED, 0xA0], 0),  // surrogate: invalid
            ([0xF4, 0x90], 0),  // above U+10FFFF: invalid
            ([0x80, 0x80], 0),  // stray continuation bytes
            ([0xC3], 1),
            ([0xC0], 0),
            ([0xFF], 0),
        ]
        for (bytes, expected) in cases {
            #expect(StreamingDetokenizer.incompleteTailLength(bytes) == expected, "bytes \(bytes)")
        }
    }

    // MARK: - Chat

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func chatTemplateReadsDefaultSystemPrompt() throws {
        let template = try SmolLM2.loadedTokenizer().chatTemplate()
        #expect(template.defaultSystemPrompt == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func chatRenderOneUserMessage() throws {
        let template = try SmolLM2.loadedTokenizer().chatTemplate()
        let rendered = template.render([ChatMessage(role: "user", content: "Hello")])
        #expect(rendered == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n")
        #expect(template.render([ChatMessage(role: "system", content: "Be brief.")], addGenerationPrompt: false) == "<|im_start|>system\nBe brief.<|im_end|>\n")
        #expect(template.render([]) == "<|im_start|>assistant\n")
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func encodeChatMatchesGreedyPrompt() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        let template = try tokenizer.chatTemplate()
        let entry = try #require(try SmolLM2.fixture("smollm2-greedy.json", as: [SmolLM2.GreedyCase].self).first { $0.id == "p07_chat" })
        let messages = [ChatMessage(role: "user", content: "What are three tips for staying healthy?")]
        #expect(template.render(messages) == entry.prompt)
        #expect(tokenizer.encodeChat(messages, template: template) == entry.prompt_token_ids)
    }

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func encodeChatKeepsUserMarkersAsText() throws {
        let tokenizer = try SmolLM2.loadedTokenizer()
        let template = ChatTemplate()
        let ids = tokenizer.encodeChat([ChatMessage(role: "user", content: "say <|im_end|> now")], template: template, addGenerationPrompt: false)
        #expect(ids.filter { $0 == 2 }.count == 1, "only the real end marker is a control token: \(ids)")
        #expect(ids.filter { tokenizer.isControl($0) } == [1, 2])
        #expect(tokenizer.decode(ids) == "user\nsay <|im_end|> now\n")

        // The raw-prompt rule, by contrast, turns the typed marker into a control token.
        let rendered = template.render([ChatMessage(role: "user", content: "say <|im_end|> now")], addGenerationPrompt: false)
        #expect(tokenizer.encode(rendered, parseSpecial: true).filter { $0 == 2 }.count == 2)
    }

    @Test func chatTemplateRejectsNonChatML() throws {
        #expect(throws: TokenizerError.self) {
            try ChatTemplate(source: "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}")
        }
        #expect(try ChatTemplate(source: nil).defaultSystemPrompt == nil)
    }

    @Test func chatTemplateReadsDoubleQuotedPrompt() throws {
        let source = #"{%- if messages[0].role != "system" %}{{- "<|im_start|>system\nBe \"kind\".<|im_end|>\n" }}{%- endif %}{{ '<|im_start|>' }}"#
        #expect(try ChatTemplate(source: source).defaultSystemPrompt == #"Be "kind"."#)
    }

    // MARK: - Tiny vocabularies

    @Test func mergesApplyInRankOrder() throws {
        let extra: [(String, TokenType)] = [("ab", .normal), ("bc", .normal), ("abc", .normal)]
        let bcFirst = try tinyTokenizer(extra: extra, merges: ["b c", "a b", "a bc"])
        #expect(bcFirst.encode("abc", parseSpecial: false) == [258])
        #expect(bcFirst.encode("ab", parseSpecial: false) == [256])
        let abFirst = try tinyTokenizer(extra: extra, merges: ["a b", "b c"])
        #expect(abFirst.encode("abc", parseSpecial: false) == [256, 99])
        let none = try tinyTokenizer(extra: extra)
        #expect(none.encode("abc", parseSpecial: false) == [97, 98, 99])
    }

    @Test func mergesTieBreakLeftmost() throws {
        let tokenizer = try tinyTokenizer(extra: [("aa", .normal)], merges: ["a a"])
        #expect(tokenizer.encode("aaa", parseSpecial: false) == [256, 97])
        #expect(tokenizer.encode("aaaa", parseSpecial: false) == [256, 256])
    }

    @Test func specialTokensMatchLongestFirst() throws {
        let tokenizer = try tinyTokenizer(extra: [("<s>", .control), ("<s>x", .control), ("<u>", .userDefined)])
        #expect(tokenizer.encode("<s>x<s>", parseSpecial: true) == [257, 256])
        #expect(tokenizer.encode("a<u>b", parseSpecial: false) == [97, 258, 98])
        #expect(tokenizer.encode("<s>", parseSpecial: false) == [60, 115, 62])
        #expect(tokenizer.decode([97, 256, 258]) == "a<u>")
    }

    @Test func decodeRendersTokenTypes() throws {
        let tokenizer = try tinyTokenizer(extra: [("<c>", .control), ("<u>", .userDefined), ("<0x41>", .byte), ("<x>", .unused)])
        #expect(tokenizer.decode([256, 257, 258, 259, 104, 105]) == "<u>Ahi")
        #expect(tokenizer.pieceBytes(258) == [0x41])
        #expect(tokenizer.pieceBytes(9999).isEmpty)
        #expect(tokenizer.decode([32, 9999]) == " ", "token 32 is the mapped space and 9999 is out of range")
    }

    @Test func beginningOfSequenceFollowsSetting() throws {
        let ids = SpecialTokenIds(bos: 256, eos: 256)
        let adds = try tinyTokenizer(extra: [("<bos>", .control)], specialIds: ids, addBOS: true)
        #expect(adds.encode("a", parseSpecial: false) == [256, 97])
        #expect(adds.encode("a", parseSpecial: false, addSpecial: false) == [97])
        let omits = try tinyTokenizer(extra: [("<bos>", .control)], specialIds: ids, addBOS: false)
        #expect(omits.encode("a", parseSpecial: false) == [97])
        let llama = try tinyTokenizer(extra: [("<bos>", .control)], preTokenizer: "llama-bpe", specialIds: ids)
        #expect(llama.addBOS)
    }

    @Test func endOfGenerationRule() throws {
        let tokenizer = try tinyTokenizer(
            extra: [("<|endoftext|>", .normal), ("<|file_sep|>", .control), ("<file_sep>", .control),
                    ("<|repo_name|>", .control), ("<reponame>", .control), ("<|im_start|>", .control), ("<eos>", .control)],
            specialIds: SpecialTokenIds(eos: 262))
        #expect(tokenizer.endOfGenerationIds == [256, 257, 259, 262])
        #expect(tokenizer.isControl(256), "an end marker stored as normal becomes control")
        #expect(tokenizer.decode([256]) == "")
    }

    @Test func missingMergeTargetFallsBack() throws {
        // "a b" names the merged text "ab", which is not a token: llama.cpp then emits each
        // one-byte token of the symbol's text.
        let tokenizer = try tinyTokenizer(merges: ["a b"])
        #expect(tokenizer.encode("ab", parseSpecial: false) == [97, 98])
    }

    // MARK: - Bad input

    @Test func tinyMetadataLoads() throws {
        let tokenizer = try BPETokenizer(metadata: tinyMetadata())
        #expect(tokenizer.vocabularySize == 257)
        #expect(tokenizer.endOfGenerationIds == [256])
    }

    @Test func unsupportedModelThrows() {
        var metadata = tinyMetadata()
        metadata["tokenizer.ggml.model"] = .string("llama")
        #expect(throws: GGUFError.invalidValue(
            key: "tokenizer.ggml.model", value: "\"llama\"",
            expected: "\"gpt2\" (byte-level BPE), the only tokenizer model this engine supports; use a model with a GPT-2 style tokenizer")) {
            try BPETokenizer(metadata: metadata)
        }
    }

    @Test func wrongTypedArraysThrow() {
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"] {
            var metadata = tinyMetadata()
            metadata[key] = .array(elementType: 5, [.int32(1), .int32(2)])
            #expect(throws: GGUFError.missingKey(key: key, expected: "an array of strings"), "key \(key)") {
                try BPETokenizer(metadata: metadata)
            }
            metadata[key] = .string("not an array")
            #expect(throws: GGUFError.missingKey(key: key, expected: "an array of strings"), "key \(key)") {
                try BPETokenizer(metadata: metadata)
            }
        }
    }

    @Test func badOptionalKeysThrow() {
        var metadata = tinyMetadata()
        metadata["tokenizer.ggml.token_type"] = .array(elementType: 8, [.string("x")])
        #expect(throws: GGUFError.self) { try BPETokenizer(metadata: metadata) }

        metadata = tinyMetadata()
        metadata["tokenizer.ggml.eos_token_id"] = .uint32(5000)
        do {
            _ = try BPETokenizer(metadata: metadata)
            Issue.record("expected an error for an out-of-range EOS id")
        } catch {
            #expect(String(describing: error).contains("tokenizer.ggml.eos_token_id"))
            #expect(String(describing: error).contains("5000"))
        }

        metadata = tinyMetadata()
        metadata["tokenizer.ggml.add_bos_token"] = .bool(true)
        #expect(throws: GGUFError.missingKey(key: "tokenizer.ggml.bos_token_id", expected: "an integer (tokenizer.ggml.add_bos_token is true)")) {
            try BPETokenizer(metadata: metadata)
        }
    }

    @Test func unknownPreTokenizerThrows() {
        var metadata = tinyMetadata()
        metadata["tokenizer.ggml.pre"] = .string("falcon")
        do {
            _ = try BPETokenizer(metadata: metadata)
            Issue.record("expected an error")
        } catch {
            let message = String(describing: error)
            #expect(message.contains("tokenizer.ggml.pre"))
            #expect(message.contains("falcon"))
            #expect(message.contains("smollm"))
        }
        metadata.removeValue(forKey: "tokenizer.ggml.pre")
        #expect(throws: GGUFError.missingKey(key: "tokenizer.ggml.pre", expected: "a string")) {
            try BPETokenizer(metadata: metadata)
        }
    }

    @Test func duplicateTokenThrows() {
        #expect(throws: TokenizerError.duplicateToken(text: "a", firstId: 0, secondId: 1)) {
            try BPETokenizer(tokens: ["a", "a"], merges: [], preTokenizer: "smollm")
        }
    }

    // MARK: - Performance

    @Test(.enabled(if: SmolLM2.modelIsPresent, SmolLM2.modelMissingMessage))
    func encodeThousandTokensTiming() throws {
        let loadStart = ContinuousClock.now
        let tokenizer = try BPETokenizer(gguf: GGUFFile(path: SmolLM2.modelPath))
        let loadTime = ContinuousClock.now - loadStart

        let prompts = try SmolLM2.fixture("smollm2-greedy.json", as: [SmolLM2.GreedyCase].self)
        var text = ""
        while tokenizer.encode(text, parseSpecial: true).count < 1000 {
            text += prompts.map { $0.prompt + $0.generated_text }.joined(separator: "\n")
        }
        let ids = tokenizer.encode(text, parseSpecial: true)
        let encodeStart = ContinuousClock.now
        for _ in 0..<5 {
            _ = tokenizer.encode(text, parseSpecial: true)
        }
        let encodeTime = (ContinuousClock.now - encodeStart) / 5
        print("tokenizer: load \(loadTime), encode \(ids.count) tokens in \(encodeTime)")
        // Generous bounds, because debug builds run several times slower than release.
        #expect(loadTime < .seconds(5))
        #expect(encodeTime < .seconds(1))
    }
}
