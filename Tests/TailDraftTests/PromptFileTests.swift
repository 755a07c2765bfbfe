import Foundation
import Testing
@testable import TailDraft

@Suite struct JSONValueTests {
    @Test func parsesNestedValues() throws {
        let value = try JSONValue.parse(#" {"a": [1, -2.5, 3e2, true, false, null], "b": {"c": "d"}} "#)
        #expect(value["a"] == .array([.int(1), .number(-2.5), .number(300), .bool(true), .bool(false), .null]))
        #expect(value["b"]?["c"] == .string("d"))
        #expect(value["missing"] == nil)
    }

    @Test func decodesStringEscapes() throws {
        let value = try JSONValue.parse(#""line\nnext \"quoted\" \\ \/ \t \u00e9 \ud83d\ude00""#)
        #expect(value == .string("line\nnext \"quoted\" \\ / \t é 😀"))
    }

    @Test func serializationRoundTrips() throws {
        let original = JSONValue.object([
            ("text", .string("tab\there \"quote\" \u{01} é")), ("ids", .array([.int(1), .int(-7)])),
            ("rate", .number(0.25)), ("ok", .bool(true)), ("none", .null),
        ])
        let text = original.serialized()
        #expect(!text.contains("\n"))
        #expect(try JSONValue.parse(text) == original)
        let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect(foundation?["text"] as? String == "tab\there \"quote\" \u{01} é")
    }

    @Test(arguments: [
        ("{\"a\": 1,}", "expected a quoted key"),
        ("[1 2]", "expected ',' or ']'"),
        ("{\"a\": 1} x", "unexpected text after the value"),
        ("\"open", "unterminated string"),
        ("01", "must not start with 0"),
        ("{\"a\": 1, \"a\": 2}", "appears twice"),
        ("\"\\x\"", "unknown escape"),
        ("\"\\ud800\"", "low surrogate"),
        ("nul", "expected 'null'"),
        ("", "found the end of the text"),
    ])
    func invalidTextIsRejected(_ text: String, _ problem: String) {
        do {
            _ = try JSONValue.parse(text)
            Issue.record("expected \(text.debugDescription) to be rejected")
        } catch {
            #expect("\(error)".contains(problem), "\(text.debugDescription): \(error)")
        }
    }
}

@Suite struct PromptFileTests {
    @Test func readsTextAndChatLines() throws {
        let text = """
        {"id": "q1", "prompt": "What is 2 + 2?", "answer": 4}

        {"id": 7, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}\r
        """
        let prompts = try PromptFile.parse(text, path: "p.jsonl")
        #expect(prompts.count == 2)
        #expect(prompts[0] == RolloutPrompt(id: .string("q1"), content: .text("What is 2 + 2?"), line: 1))
        #expect(prompts[1].id == .int(7))
        #expect(prompts[1].line == 3)
        #expect(prompts[1].content == .chat([ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi")]))
    }

    @Test(arguments: [
        ("{\"id\": \"a\", \"prompt\": \"x\"}\n{\"id\": \"b\"}", 2, "missing \"prompt\" or \"messages\""),
        ("{\"id\": \"a\", \"prompt\": \"x\"}\nnot json", 2, "invalid JSON at character 1"),
        ("[1, 2]", 1, "expected a JSON object, found an array"),
        ("{\"prompt\": \"x\"}", 1, "missing \"id\""),
        ("{\"id\": 1.5, \"prompt\": \"x\"}", 1, "\"id\" must be a non-empty string or an integer"),
        ("{\"id\": \"a\", \"prompt\": \"\"}", 1, "\"prompt\" must be a non-empty string, found an empty string"),
        ("{\"id\": \"a\", \"prompt\": 3}", 1, "found a number"),
        ("{\"id\": \"a\", \"prompt\": \"x\", \"messages\": []}", 1, "both \"prompt\" and \"messages\""),
        ("{\"id\": \"a\", \"messages\": []}", 1, "\"messages\" must be a non-empty array"),
        ("{\"id\": \"a\", \"messages\": [{\"content\": \"x\"}]}", 1, "message 1 needs a non-empty string \"role\""),
        ("{\"id\": \"a\", \"messages\": [{\"role\": \"user\"}]}", 1, "message 1 needs a string \"content\""),
        ("{\"id\": \"a\", \"prompt\": \"x\"}\n\n{\"id\": \"a\", \"prompt\": \"y\"}", 3, "already used on line 1"),
    ])
    func invalidLineIsRejectedWithItsNumber(_ text: String, _ line: Int, _ problem: String) {
        do {
            _ = try PromptFile.parse(text, path: "prompts.jsonl")
            Issue.record("expected line \(line) of \(text.debugDescription) to be rejected")
        } catch let error as PromptFileError {
            #expect(error.line == line, "\(error)")
            #expect(error.description.hasPrefix("invalid prompt file prompts.jsonl:\(line): "), "\(error)")
            #expect(error.description.contains(problem), "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func emptyFileIsRejected() {
        #expect(throws: PromptFileError.self) { try PromptFile.parse("\n  \n", path: "empty.jsonl") }
        let error = PromptFileError(path: "empty.jsonl", line: 0, problem: "the file contains no prompts")
        #expect(error.description == "invalid prompt file empty.jsonl: the file contains no prompts")
    }

    @Test func missingFileNamesPath() {
        do {
            _ = try PromptFile.read(path: "/nonexistent/prompts.jsonl")
            Issue.record("expected a missing file to be rejected")
        } catch {
            #expect("\(error)" == "cannot read /nonexistent/prompts.jsonl: No such file or directory")
        }
    }

    @Test func projectMathPromptsAreValid() throws {
        let path = repositoryRoot.appendingPathComponent("Bench/prompts/math32.jsonl").path
        let prompts = try PromptFile.read(path: path)
        #expect(prompts.count == 32)
        for prompt in prompts {
            guard case let .chat(messages) = prompt.content else {
                Issue.record("prompt \(prompt.id.serialized()) is not a chat prompt")
                continue
            }
            #expect(messages.last?.role == "user")
        }
    }
}
