/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user` or `assistant`.
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A ChatML conversation format: `<|im_start|>role\ncontent<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n` to prompt the reply.
///
/// Models such as SmolLM2 and Qwen2 insert a default system message when the conversation has
/// none, and `defaultSystemPrompt` is that message's text.
public struct ChatTemplate: Sendable, Equatable {
    public static let startMarker = "<|im_start|>"
    public static let endMarker = "<|im_end|>"

    /// The system message put first when the first message is not a system message, if any.
    public var defaultSystemPrompt: String?

    public init(defaultSystemPrompt: String? = nil) {
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// Reads the ChatML format and default system prompt from a model's Jinja template.
    ///
    /// A nil source gives plain ChatML without a default system prompt, as llama.cpp uses
    /// ChatML for a model without a template. The default system prompt is the first string
    /// literal in a `{{ }}` or `{% %}` tag that reads `<|im_start|>system\n…<|im_end|>`.
    /// NOTE: the template is not executed, so conditions other than "no system message given"
    /// (such as Qwen2's tool-calling branch) are ignored.
    ///
    /// - Throws: `TokenizerError.unsupportedChatTemplate` when the template has no
    ///   `<|im_start|>` marker.
    public init(source: String?) throws {
        guard let source else {
            self.init()
            return
        }
        guard source.contains(Self.startMarker) else {
            throw TokenizerError.unsupportedChatTemplate(
                reason: "the template does not contain \(Self.startMarker), so it is not ChatML; only ChatML is supported, so build a ChatTemplate with init(defaultSystemPrompt:) to render ChatML anyway")
        }
        let opening = Self.startMarker + "system\n"
        var prompt: String? = nil
        for literal in JinjaStringLiterals.all(in: source) where literal.hasPrefix(opening) {
            var body = literal.dropFirst(opening.count)
            if body.hasSuffix("\n") { body = body.dropLast() }
            guard body.hasSuffix(Self.endMarker) else { continue }
            prompt = String(body.dropLast(Self.endMarker.count))
            break
        }
        self.init(defaultSystemPrompt: prompt)
    }

    /// Renders a conversation as ChatML text.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var text = ""
        for segment in segments(messages, addGenerationPrompt: addGenerationPrompt) {
            switch segment {
            case let .marker(marker): text += marker
            case let .text(content): text += content
            }
        }
        return text
    }

    /// Renders a conversation as a sequence of markers and text.
    func segments(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> [ChatSegment] {
        var segments: [ChatSegment] = []
        func append(role: String, content: String) {
            segments.append(.marker(Self.startMarker))
            segments.append(.text(role + "\n" + content))
            segments.append(.marker(Self.endMarker))
            segments.append(.text("\n"))
        }
        if let defaultSystemPrompt, let first = messages.first, first.role != "system" {
            append(role: "system", content: defaultSystemPrompt)
        }
        for message in messages {
            append(role: message.role, content: message.content)
        }
        if addGenerationPrompt {
            segments.append(.marker(Self.startMarker))
            segments.append(.text("assistant\n"))
        }
        return segments
    }
}

/// A piece of a rendered conversation.
enum ChatSegment: Equatable {
    /// A ChatML marker, encoded as its control token.
    case marker(String)
    /// A role or message content, encoded as plain text.
    case text(String)
}

extension BPETokenizer {
    /// Reads the ChatML format of this model's `tokenizer.chat_template`.
    ///
    /// - Throws: `TokenizerError.unsupportedChatTemplate` when the template is not ChatML.
    public func chatTemplate() throws -> ChatTemplate {
        try ChatTemplate(source: chatTemplateSource)
    }

    /// Encodes a conversation so that the ChatML markers are control tokens and every role and
    /// content is plain text: a user who types `<|im_end|>` gets ordinary text tokens.
    ///
    /// The ids equal those of `encode(template.render(...), parseSpecial: true)`, llama.cpp's
    /// rule for a rendered prompt, whenever no content contains a control-token text. BOS comes
    /// first when `addBOS` is true. A marker that is not a control or user-defined token of this
    /// vocabulary is encoded as text.
    public func encodeChat(_ messages: [ChatMessage], template: ChatTemplate, addGenerationPrompt: Bool = true) -> [Int32] {
        var output: [Int32] = []
        if addBOS, let bos = specialIds.bos {
            output.append(bos)
        }
        var text = ""
        func flushText() {
            guard !text.isEmpty else { return }
            output += encode(text, parseSpecial: false, addSpecial: false)
            text = ""
        }
        for segment in template.segments(messages, addGenerationPrompt: addGenerationPrompt) {
            switch segment {
            case let .marker(marker):
                if let id = tokenId(forText: marker), tokenType(id) == .control || tokenType(id) == .userDefined {
                    flushText()
                    output.append(id)
                } else {
                    text += marker
                }
            case let .text(content):
                text += content
            }
        }
        flushText()
        return output
    }
}

/// Extraction of the string literals in a Jinja template's tags.
enum JinjaStringLiterals {
    /// Returns the values of all quoted strings inside `{{ }}` and `{% %}` tags, in order,
    /// with the escapes `\n`, `\t`, `\r`, `\\`, `\'` and `\"` resolved.
    static func all(in source: String) -> [String] {
        let characters = Array(source.unicodeScalars)
        var literals: [String] = []
        var index = 0
        var insideTag = false
        while index < characters.count {
            let character = characters[index]
            let next = index + 1 < characters.count ? characters[index + 1] : nil
            if !insideTag {
                if character == "{" && (next == "{" || next == "%") {
                    insideTag = true
                    index += 2
                } else {
                    index += 1
                }
                continue
            }
            if (character == "}" || character == "%") && next == "}" {
                insideTag = false
                index += 2
                continue
            }
            guard character == "'" || character == "\"" else {
                index += 1
                continue
            }
            var value = String.UnicodeScalarView()
            index += 1
            while index < characters.count && characters[index] != character {
                if characters[index] == "\\" && index + 1 < characters.count {
                    index += 1
                    switch characters[index] {
                    case "n": value.append("\n")
                    case "t": value.append("\t")
                    case "r": value.append("\r")
                    default: value.append(characters[index])
                    }
                } else {
                    value.append(characters[index])
                }
                index += 1
            }
            literals.append(String(value))
            index += 1
        }
        return literals
    }
}
