import Foundation
@testable import TailDraft

/// Paths of the repository's test fixtures and of the fetched model.
enum Fixtures {
    /// The repository root, found from this file's location.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func url(_ name: String) -> URL {
        repositoryRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(name)
    }

    /// SmolLM2-135M-Instruct Q4_1, fetched by `make model` (which `make test` runs first).
    static let smolLMPath = repositoryRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

    static var smolLMAvailable: Bool { FileManager.default.fileExists(atPath: smolLMPath) }

    /// A new instance of the real model (weights are memory-mapped, so this is cheap); each
    /// test gets its own because a `Transformer` runs one forward pass at a time.
    static func smolLM(threads: Int = 2) throws -> Transformer {
        guard smolLMAvailable else { throw MissingModel() }
        return try Transformer(path: smolLMPath, threads: threads)
    }

    /// Creates a new engine (model, tokenizer, KV cache) over the real model.
    static func smolLMEngine(threads: Int = 2, contextLength: Int? = 1024) throws -> Engine {
        guard smolLMAvailable else { throw MissingModel() }
        return try Engine(modelPath: smolLMPath, threads: threads, contextLength: contextLength)
    }

    struct MissingModel: Error, CustomStringConvertible {
        var description: String { "the model \(Fixtures.smolLMPath) is missing; run 'make model' to fetch it" }
    }
}

/// One prompt of llama.cpp's recorded greedy output for SmolLM2.
struct GoldenGreedyCase: Decodable {
    let id: String
    let prompt: String
    let prompt_token_ids: [Int32]
    let generated_token_ids: [Int32]
    let generated_text: String
    let top1_top2_logit_margins: [Double]

    static func load() throws -> [GoldenGreedyCase] {
        try JSONDecoder().decode([GoldenGreedyCase].self, from: Data(contentsOf: Fixtures.url("smollm2-greedy.json")))
    }
}
