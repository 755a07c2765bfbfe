import Foundation
import Testing
@testable import TailDraft

/// Drafter checkpoints: exact round trips, and clear errors for another target or damage.
@Suite(.serialized) struct DrafterCheckpointTests {
    /// Returns a trainer that took a few steps on one generated sequence.
    func trainedTrainer(_ engine: Engine) throws -> DrafterTrainer {
        let target = DrafterTarget(model: engine.model)
        let initial = try DrafterWeights.random(config: LearnedDrafterTests.config, target: target, seed: 5)
        var options = DrafterTrainerOptions()
        options.windowLength = 8
        options.vocabularyRefreshSteps = 2
        let trainer = DrafterTrainer(initial: initial, target: target, options: options)
        let tokens = LearnedDrafterTests.prompts(count: 1, length: 30, seed: 9)[0]
        let pass = try engine.model.forward(.causal(tokens: tokens, startPosition: 0, logitRows: []),
                                            caches: [KVCache(config: engine.model.config, capacity: 64)])
        trainer.record(tokens: tokens[...], hidden: pass.hidden[...], startPosition: 0)
        for _ in 0..<5 { trainer.runOnce() }
        return trainer
    }

    @Test func roundTripKeepsEveryField() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let trainer = try trainedTrainer(engine)
                try withTemporaryDirectory { directory in
                    let path = directory.appendingPathComponent("drafter.bin").path
                    try trainer.saveCheckpoint(to: path)
                    let saved = trainer.checkpoint()
                    let loaded = try DrafterCheckpoint.load(path: path, target: trainer.target)
                    #expect(loaded.weights.version == 5)
                    #expect(loaded.weights.config == saved.weights.config)
                    #expect(loaded.weights.vocabulary == saved.weights.vocabulary)
                    #expect(bitwiseDifference(loaded.weights.parameterValues, saved.weights.parameterValues) == nil)
                    #expect(bitwiseDifference(loaded.weights.head.array, saved.weights.head.array) == nil)
                    let moments = try #require(loaded.moments)
                    #expect(bitwiseDifference(moments.first.array, saved.moments!.first.array) == nil)
                    #expect(bitwiseDifference(moments.second.array, saved.moments!.second.array) == nil)
                    #expect(loaded.tokenCounts == saved.tokenCounts)
                    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                    #expect(files == ["drafter.bin"], "no temporary file is left behind")
                }
            }
        }
    }

    @Test func checkpointForAnotherTargetIsRejected() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let trainer = try trainedTrainer(engine)
                var otherSpec = LearnedDrafterTests.spec
                otherSpec.seed += 1
                try withTinyEngine(otherSpec) { other in
                    try withTemporaryDirectory { directory in
                        let path = directory.appendingPathComponent("drafter.bin").path
                        try trainer.saveCheckpoint(to: path)
                        let otherTarget = DrafterTarget(model: other.model)
                        #expect(throws: DrafterError.checkpointForAnotherTarget(path: path, targetPath: otherTarget.weights.file.path)) {
                            try DrafterCheckpoint.load(path: path, target: otherTarget)
                        }
                    }
                }
            }
        }
    }

    @Test func damagedCheckpointsAreRejected() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let trainer = try trainedTrainer(engine)
                try withTemporaryDirectory { directory in
                    let path = directory.appendingPathComponent("drafter.bin").path
                    try trainer.saveCheckpoint(to: path)
                    let good = try Data(contentsOf: URL(fileURLWithPath: path))
                    var flipped = good
                    flipped[100] ^= 0x40
                    let cases: [(String, Data)] = [("flipped byte", flipped), ("truncated", good.prefix(good.count / 2)),
                                                   ("empty", Data()), ("wrong magic", Data("GGUF".utf8) + good.dropFirst(4))]
                    for (name, bytes) in cases {
                        try bytes.write(to: URL(fileURLWithPath: path))
                        do {
                            _ = try DrafterCheckpoint.load(path: path, target: trainer.target)
                            Issue.record("\(name): the checkpoint loaded")
                        } catch let error as DrafterError {
                            guard case .checkpointCorrupt = error else {
                                Issue.record("\(name): expected checkpointCorrupt, got \(error)")
                                continue
                            }
                        }
                    }
                    #expect(throws: DrafterError.self) {
                        try DrafterCheckpoint.load(path: directory.appendingPathComponent("missing.bin").path, target: trainer.target)
                    }
                }
            }
        }
    }
}
