/// One prompt of a rollout, as read from a prompt file.
public struct RolloutPrompt: Sendable, Equatable {
    /// The line's `id`, echoed in every response as `prompt_id`: a string or a number.
    public var id: JSONValue
    public var content: Content
    /// Line number in the prompt file, from 1 (0 for prompts built in code).
    public var line: Int

    public enum Content: Sendable, Equatable {
        /// Raw text, tokenized with control-token strings such as `<|im_start|>` as control tokens.
        case text(String)
        /// A conversation, rendered with the model's chat template and the assistant's turn opened.
        case chat([ChatMessage])
    }

    public init(id: JSONValue, content: Content, line: Int = 0) {
        self.id = id
        self.content = content
        self.line = line
    }

    /// Returns the prompt's token ids for `tokenizer`.
    /// - Throws: `TokenizerError.unsupportedChatTemplate` for a chat prompt when the model's
    ///   template is not ChatML.
    public func tokens(tokenizer: BPETokenizer) throws -> [Int32] {
        switch content {
        case let .text(text):
            return tokenizer.encode(text, parseSpecial: true)
        case let .chat(messages):
            return tokenizer.encodeChat(messages, template: try tokenizer.chatTemplate(), addGenerationPrompt: true)
        }
    }
}

/// A prompt file that cannot be used: the file, the line and what to change.
public struct PromptFileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    /// Line number from 1; 0 when the problem concerns the whole file.
    public let line: Int
    public let problem: String

    public var description: String {
        let location = line > 0 ? "\(path):\(line)" : path
        return "invalid prompt file \(location): \(problem)"
    }
}

/// Reads prompt files in JSON Lines format: one object per line, either
/// `{"id": …, "prompt": "raw text"}` or
/// `{"id": …, "messages": [{"role": "user", "content": "…"}]}`.
///
/// `id` is a string or an integer and must be unique. Other keys (the expected result, say)
/// are ignored, and so are blank lines. A file with any invalid line is rejected whole, with
/// the first bad line's number, the problem and the expected form, so no prompt is silently
/// dropped from a rollout. Cost: O(file size).
public enum PromptFile {
    /// The two accepted line forms, for error messages.
    static let expectedForms = #"each line must be {"id": "a1", "prompt": "text"} or {"id": "a1", "messages": [{"role": "user", "content": "text"}]}"#

    /// Reads and validates the prompt file at `path`.
    /// - Throws: `FileError` when the file cannot be read; `PromptFileError` for an invalid line
    ///   or a file without prompts.
    public static func read(path: String) throws -> [RolloutPrompt] {
        try parse(TextFile.read(path), path: path)
    }

    /// Parses the contents of a prompt file; `path` only names it in errors.
    /// - Throws: `PromptFileError` for an invalid line or a file without prompts.
    public static func parse(_ text: String, path: String) throws -> [RolloutPrompt] {
        var prompts: [RolloutPrompt] = []
        var firstLineOfId: [JSONValue: Int] = [:]
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            guard line.contains(where: { !$0.isWhitespace }) else { continue }
            func fail(_ problem: String) -> PromptFileError {
                PromptFileError(path: path, line: lineNumber, problem: problem)
            }

            let value: JSONValue
            do {
                value = try JSONValue.parse(String(line))
            } catch let error as JSONParseError {
                throw fail("\(error); \(expectedForms)")
            }
            let prompt = try prompt(from: value, line: lineNumber, fail: fail)
            if let earlier = firstLineOfId[prompt.id] {
                throw fail("the id \(prompt.id.serialized()) was already used on line \(earlier); give each prompt its own id")
            }
            firstLineOfId[prompt.id] = lineNumber
            prompts.append(prompt)
        }
        guard !prompts.isEmpty else {
            throw PromptFileError(path: path, line: 0, problem: "the file contains no prompts; \(expectedForms)")
        }
        return prompts
    }

    private static func prompt(from value: JSONValue, line: Int, fail: (String) -> PromptFileError) throws -> RolloutPrompt {
        guard case .object = value else { throw fail("expected a JSON object, found \(value.typeDescription); \(expectedForms)") }
        guard let id = value["id"] else { throw fail("missing \"id\"; \(expectedForms)") }
        switch id {
        case .string(let text) where !text.isEmpty: break
        case .int: break
        default: throw fail("\"id\" must be a non-empty string or an integer, found \(id.serialized())")
        }

        switch (value["prompt"], value["messages"]) {
        case (nil, nil):
            throw fail("missing \"prompt\" or \"messages\"; \(expectedForms)")
        case (.some, .some):
            throw fail("the line has both \"prompt\" and \"messages\"; keep one of them")
        case let (prompt?, nil):
            guard case let .string(text) = prompt, !text.isEmpty else {
                throw fail("\"prompt\" must be a non-empty string, found \(prompt.typeDescription == "a string" ? "an empty string" : prompt.typeDescription)")
            }
            return RolloutPrompt(id: id, content: .text(text), line: line)
        case let (nil, messages?):
            return RolloutPrompt(id: id, content: .chat(try chatMessages(messages, fail: fail)), line: line)
        }
    }

    private static func chatMessages(_ value: JSONValue, fail: (String) -> PromptFileError) throws -> [ChatMessage] {
        guard case let .array(items) = value, !items.isEmpty else {
            throw fail("\"messages\" must be a non-empty array of {\"role\": …, \"content\": …} objects, found \(value.serialized())")
        }
        return try items.enumerated().map { index, item in
            guard case let .string(role)? = item["role"], !role.isEmpty else {
                throw fail("message \(index + 1) needs a non-empty string \"role\" such as \"user\" or \"system\"")
            }
            guard case let .string(content)? = item["content"] else {
                throw fail("message \(index + 1) needs a string \"content\"")
            }
            return ChatMessage(role: role, content: content)
        }
    }
}
