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
        let hidden = try LearnedDrafterTests.hiddenStates(engine, tokens)
        trainer.record(tokens: tokens[...], hidden: hidden[...], startPosition: 0)
        for _ in 0..<5 { trainer.runOnce() }
        return trainer
    }

    @Test func roundTripKeepsEveryField() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let trainer = try trainedTrainer(engine)
                try withTemporaryDirectory { directory in
                    let path = directory.appendingPathComponent("drafter.gguf").path
                    try trainer.saveCheckpoint(to: path)
                    let saved = trainer.checkpoint()
                    let loaded = try DrafterCheckpoint.load(path: path, target: trainer.target)
                    Self.expectEqual(loaded, saved, version: 5)
                    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                    #expect(files == ["drafter.gguf"], "no temporary file is left behind")
                }
            }
        }
    }

    /// Expects `loaded` to equal `saved` bit for bit, at training step `version`.
    static func expectEqual(_ loaded: DrafterCheckpoint, _ saved: DrafterCheckpoint, version: Int) {
        #expect(loaded.weights.version == version)
        #expect(loaded.weights.config == saved.weights.config)
        #expect(loaded.weights.vocabulary == saved.weights.vocabulary)
        #expect(bitwiseDifference(loaded.weights.parameterValues, saved.weights.parameterValues) == nil)
        #expect(bitwiseDifference(loaded.weights.head.array, saved.weights.head.array) == nil)
        #expect((loaded.moments == nil) == (saved.moments == nil))
        if let moments = loaded.moments, let savedMoments = saved.moments {
            #expect(bitwiseDifference(moments.first.array, savedMoments.first.array) == nil)
            #expect(bitwiseDifference(moments.second.array, savedMoments.second.array) == nil)
        }
        #expect(loaded.tokenCounts == saved.tokenCounts)
    }

    /// The file is GGUF with the documented metadata and one named tensor per parameter matrix.
    @Test func checkpointIsDocumentedGGUF() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let trainer = try trainedTrainer(engine)
                try withTemporaryDirectory { directory in
                    let path = directory.appendingPathComponent("drafter.gguf").path
                    try trainer.saveCheckpoint(to: path)
                    let file = try GGUFFile(path: path)
                    let config = LearnedDrafterTests.config
                    let fingerprint = try trainer.target.fingerprint()
                    #expect(try file.string("general.architecture") == "taildraft-drafter")
                    #expect(try file.int("taildraft.drafter.format_version") == 2)
                    #expect(file.metadata["taildraft.drafter.target_file_hash"] == .uint64(fingerprint.hash))
                    #expect(file.metadata["taildraft.drafter.target_file_size"] == .uint64(fingerprint.size))
                    #expect(try file.int("taildraft.drafter.training_step") == 5)
                    #expect(try file.int("taildraft.drafter.embedding_length") == config.hiddenSize)
                    #expect(try file.int("taildraft.drafter.attention.head_count") == config.headCount)
                    #expect(try file.int("taildraft.drafter.attention.head_count_kv") == config.kvHeadCount)
                    #expect(try file.int("taildraft.drafter.feed_forward_length") == config.feedForwardSize)
                    #expect(try file.int("taildraft.drafter.draft_vocab_size") == config.draftVocabularySize)
                    #expect(try file.int("taildraft.drafter.target_vocab_size") == LearnedDrafterTests.spec.vocabularySize)
                    #expect(file.metadata["taildraft.drafter.attention.layer_norm_rms_epsilon"] == .float32(config.rmsNormEpsilon))
                    #expect(file.metadata["taildraft.drafter.rope.freq_base"] == .float32(config.ropeBase))
                    #expect(file.metadata["taildraft.drafter.tensor_checksums"]?.arrayValue?.count == file.tensors.count)

                    let h = config.hiddenSize
                    #expect(file.tensor(named: "input_projection.weight")?.shape == [2 * h, h])
                    #expect(file.tensor(named: "blk.0.attn_k.weight")?.shape == [h, config.kvDim])
                    #expect(file.tensor(named: "blk.0.ffn_down.weight")?.shape == [config.feedForwardSize, h])
                    #expect(file.tensor(named: "output_norm.weight")?.shape == [h])
                    #expect(file.tensor(named: "draft_vocab.token_ids")?.type == .i32)
                    #expect(file.tensor(named: "optimizer.adam_m")?.shape == [config.parameterCount])
                    #expect(file.tensor(named: "token_counts")?.shape == [LearnedDrafterTests.spec.vocabularySize])
                    #expect(file.tensors.count == DrafterTensor.allCases.count + 4)
                    let query = try #require(file.tensor(named: "blk.0.attn_q.weight"))
                    let stored = file.tensorData(query).withMemoryRebound(to: Float.self) { Array($0) }
                    let range = trainer.checkpoint().weights.layout.range(.query, config)
                    #expect(bitwiseDifference(stored, Array(trainer.checkpoint().weights.parameterValues[range])) == nil)
                }
            }
        }
    }

    /// A drafter saved without a trainer has no moments or counts, and loads without them.
    @Test func weightsOnlyCheckpointRoundTrips() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let checkpoint = DrafterCheckpoint(weights: try DrafterWeights.random(config: LearnedDrafterTests.config, target: target, seed: 8))
                try withTemporaryDirectory { directory in
                    let path = directory.appendingPathComponent("drafter.gguf").path
                    try checkpoint.write(to: path, target: target)
                    let loaded = try DrafterCheckpoint.load(path: path, target: target)
                    Self.expectEqual(loaded, checkpoint, version: 0)
                    #expect(try GGUFFile(path: path).tensor(named: "optimizer.adam_m") == nil)
                }
            }
        }
    }

    /// A checkpoint in the first format, TDDRAFT1, still loads, and the next save writes GGUF.
    @Test func version1CheckpointStillLoads() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let trainer = try trainedTrainer(engine)
                let saved = trainer.checkpoint()
                try withTemporaryDirectory { directory in
                    let url = directory.appendingPathComponent("drafter.bin")
                    let bytes = try version1CheckpointBytes(saved, target: trainer.target)
                    try Data(bytes).write(to: url)
                    let loaded = try DrafterCheckpoint.load(path: url.path, target: trainer.target)
                    Self.expectEqual(loaded, saved, version: 5)

                    try loaded.write(to: url.path, target: trainer.target)
                    #expect(try GGUFFile(path: url.path).metadata["general.architecture"] == .string("taildraft-drafter"))

                    var flipped = bytes
                    flipped[100] ^= 0x40
                    try Data(flipped).write(to: url)
                    #expect(throws: DrafterError.checkpointCorrupt(path: url.path, problem: "its checksum does not match its contents (truncated or damaged)")) {
                        try DrafterCheckpoint.load(path: url.path, target: trainer.target)
                    }
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
                        let path = directory.appendingPathComponent("drafter.gguf").path
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
                    let path = directory.appendingPathComponent("drafter.gguf").path
                    try trainer.saveCheckpoint(to: path)
                    let good = try Data(contentsOf: URL(fileURLWithPath: path))
                    let file = try GGUFFile(path: path)
                    let query = try #require(file.tensor(named: "blk.0.attn_q.weight"))
                    var flipped = good
                    flipped[file.dataOffset + query.offset + 7] ^= 0x40
                    // The training step's u64 value follows its key and the 4-byte type code.
                    let key = Array("taildraft.drafter.training_step".utf8)
                    let keyStart = try #require(good.indices.first { good[$0..<min($0 + key.count, good.count)].elementsEqual(key) })
                    var damagedStep = good
                    damagedStep[keyStart + key.count + 4] ^= 0x01
                    let cases: [(name: String, bytes: Data, problem: String)] = [
                        ("flipped data byte", flipped, "the data of tensor 'blk.0.attn_q.weight' does not match its checksum"),
                        ("damaged training step", damagedStep, "its metadata does not match its checksum"),
                        ("truncated", good.prefix(good.count / 2), "it is truncated"),
                        ("empty", Data(), "it is truncated: magic number"),
                    ]
                    for (name, bytes, problem) in cases {
                        try bytes.write(to: URL(fileURLWithPath: path))
                        do {
                            _ = try DrafterCheckpoint.load(path: path, target: trainer.target)
                            Issue.record("\(name): the checkpoint loaded")
                        } catch let error as DrafterError {
                            guard case let .checkpointCorrupt(_, found) = error else {
                                Issue.record("\(name): expected checkpointCorrupt, got \(error)")
                                continue
                            }
                            #expect(found.hasPrefix(problem), "\(name): \(error)")
                        }
                    }
                    #expect(throws: DrafterError.self) {
                        try DrafterCheckpoint.load(path: directory.appendingPathComponent("missing.gguf").path, target: trainer.target)
                    }
                }
            }
        }
    }

    /// A model GGUF or any other file passed as the drafter is rejected with what it is.
    @Test func otherFilesAreNotDrafters() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let modelPath = target.weights.file.path
                #expect(throws: DrafterError.notADrafterCheckpoint(path: modelPath, found: "a GGUF file of a 'llama' model")) {
                    try DrafterCheckpoint.load(path: modelPath, target: target)
                }
                let message = DrafterError.notADrafterCheckpoint(path: modelPath, found: "a GGUF file of a 'llama' model").description
                #expect(message.contains("is not a drafter checkpoint but a GGUF file of a 'llama' model"), "\(message)")
                try withTemporaryDirectory { directory in
                    let path = directory.appendingPathComponent("notes.txt").path
                    try Data("just some text".utf8).write(to: URL(fileURLWithPath: path))
                    #expect(throws: DrafterError.notADrafterCheckpoint(path: path, found: "a file that is neither GGUF nor the earlier TDDRAFT1 format")) {
                        try DrafterCheckpoint.load(path: path, target: target)
                    }
                }
            }
        }
    }

    /// A drafter checkpoint passed as the model, in GGUF or in the TDDRAFT1 format, is
    /// rejected as a checkpoint rather than as an unsupported model or a file that is not GGUF.
    @Test func checkpointAsModelIsRejected() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                try withTemporaryDirectory { directory in
                    let path = directory.appendingPathComponent("drafter.gguf").path
                    let checkpoint = DrafterCheckpoint(weights: try .random(config: LearnedDrafterTests.config, target: target))
                    try checkpoint.write(to: path, target: target)
                    #expect(throws: DrafterError.checkpointGivenAsModel(path: path)) {
                        try ModelConfig(file: try GGUFFile(path: path))
                    }
                    #expect(throws: DrafterError.checkpointGivenAsModel(path: path)) {
                        try GGUFFile.openModel(path: path)
                    }
                    #expect(throws: DrafterError.checkpointGivenAsModel(path: path)) {
                        try Engine(modelPath: path, threads: 1)
                    }

                    let version1Path = directory.appendingPathComponent("drafter.bin").path
                    try Data(try version1CheckpointBytes(checkpoint, target: target)).write(to: URL(fileURLWithPath: version1Path))
                    #expect(throws: DrafterError.checkpointGivenAsModel(path: version1Path)) {
                        try GGUFFile.openModel(path: version1Path)
                    }
                    #expect(DrafterError.checkpointGivenAsModel(path: path).description
                            == "\(path) is a learned-drafter checkpoint, not a model; pass the model file it was trained for instead")
                }
            }
        }
    }
}
