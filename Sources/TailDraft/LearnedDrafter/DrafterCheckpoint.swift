#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

/// A saved learned drafter: its weights, draft vocabulary, training step, the optimizer's
/// moments and token counts (when saved by a trainer), and the hash of the target model
/// file it was trained for.
///
/// File format: a GGUF file (version 3, alignment 32, little-endian), written with
/// `GGUFWriter` and read with `GGUFFile`. Its metadata:
///
///     general.architecture                                string "taildraft-drafter"
///     taildraft.drafter.format_version                    u32 = 2 (1 was `TDDRAFT1`)
///     taildraft.drafter.target_file_hash                  u64, `td_drafter_hash_file` of the target
///     taildraft.drafter.target_file_size                  u64, the target file's size in bytes
///     taildraft.drafter.training_step                     u64
///     taildraft.drafter.embedding_length                  u32, H (the target's hidden size)
///     taildraft.drafter.attention.head_count              u32
///     taildraft.drafter.attention.head_count_kv           u32
///     taildraft.drafter.feed_forward_length               u32, the MLP's inner width
///     taildraft.drafter.draft_vocab_size                  u32, V
///     taildraft.drafter.target_vocab_size                 u32
///     taildraft.drafter.attention.layer_norm_rms_epsilon  f32
///     taildraft.drafter.rope.freq_base                    f32
///     taildraft.drafter.tensor_checksums                  u64 array, `td_drafter_hash` of each
///                                                         tensor's data bytes, in tensor order
///     taildraft.drafter.metadata_checksum                 u64, `td_drafter_hash` of every
///                                                         key above from format_version on, in
///                                                         this order, each key and value in its
///                                                         GGUF encoding
///
/// Its tensors, in this order, with dimensions in ggml order (the first is contiguous):
///
///     input_projection.weight    F32 [2H, H]   one F32 tensor per `DrafterTensor`, named by
///     blk.0.attn_norm.weight     F32 [H]       `ggufName`, in `DrafterTensor` order
///     blk.0.attn_q.weight ... output_norm.weight
///     draft_vocab.token_ids      I32 [V]       the target id of each draft index
///     optimizer.adam_m           F32 [P]       AdamW moments, P = `parameterCount`, only in a
///     optimizer.adam_v           F32 [P]       trainer's checkpoint, in the parameter tensors'
///                                              order, concatenated
///     token_counts               I32 [target vocabulary]  only in a trainer's checkpoint,
///                                              each count capped at 2^31 - 1
///
/// The moments stay two flat tensors because only the trainer reads them, and it keeps them
/// in that flat layout. The draft head is not stored: it is copied from the target's output
/// matrix on load. Writes go to a temporary file in the same folder that is then renamed
/// over the path, so a crash leaves either the old checkpoint or the new one, never a torn
/// file. `load` also reads checkpoints of the earlier `TDDRAFT1` format.
///
public struct DrafterCheckpoint {
    public var weights: DrafterWeights
    /// AdamW first and second moments, in the parameters' layout.
    var moments: (first: FloatBuffer, second: FloatBuffer)?
    /// Token counts by target id, from which the draft vocabulary is rebuilt.
    var tokenCounts: [Int]?

    /// `general.architecture` of a drafter checkpoint.
    static let architecture = "taildraft-drafter"
    static let keyPrefix = "taildraft.drafter."
    static let formatVersion: UInt32 = 2
    static let vocabularyTensor = "draft_vocab.token_ids"
    static let momentTensors = ("optimizer.adam_m", "optimizer.adam_v")
    static let tokenCountTensor = "token_counts"

    public init(weights: DrafterWeights) {
        self.weights = weights
    }

    init(weights: DrafterWeights, moments: (first: FloatBuffer, second: FloatBuffer)?, tokenCounts: [Int]?) {
        self.weights = weights
        self.moments = moments
        self.tokenCounts = tokenCounts
    }

    /// Writes the checkpoint to `path` atomically (temporary file, then rename).
    /// Cost: one read of the target file to hash it, and a copy of the file in memory.
    /// - Throws: `DrafterError.checkpointWriteFailed` with the system's reason, or
    ///   `DrafterError.checkpointUnreadable` when the target file cannot be read to hash it.
    public func write(to path: String, target: DrafterTarget) throws {
        let fingerprint = try target.fingerprint()
        let bytes = encode(targetFileHash: fingerprint.hash, targetFileSize: fingerprint.size,
                           targetVocabularySize: target.config.vocabularySize)
        try Self.writeAtomically(bytes, to: path)
    }

    /// Returns the checkpoint as the bytes of its GGUF file.
    func encode(targetFileHash: UInt64, targetFileSize: UInt64, targetVocabularySize: Int) -> [UInt8] {
        var file = GGUFWriter()
        var checksums: [UInt64] = []
        func addFloats(_ name: String, shape: [Int], from buffer: FloatBuffer, offset: Int) {
            let byteCount = shape.reduce(1, *) * 4
            let source = UnsafeRawBufferPointer(start: buffer.pointer + offset, count: byteCount)
            checksums.append(td_drafter_hash(source.baseAddress, byteCount))
            // The closure keeps `buffer` alive until the file is encoded.
            file.addTensor(name, shape: shape, type: .f32) { destination in
                destination.copyMemory(from: UnsafeRawBufferPointer(start: buffer.pointer + offset, count: byteCount))
            }
        }
        func addInts(_ name: String, _ values: [Int32]) {
            checksums.append(values.withUnsafeBytes { td_drafter_hash($0.baseAddress, $0.count) })
            file.addTensor(name, shape: [values.count], values: values)
        }

        let config = weights.config
        let layout = weights.layout
        for tensor in DrafterTensor.allCases {
            addFloats(tensor.ggufName, shape: tensor.ggufShape(config), from: weights.parameters, offset: layout.offset(tensor))
        }
        addInts(Self.vocabularyTensor, weights.vocabulary.tokens)
        if let moments {
            addFloats(Self.momentTensors.0, shape: [layout.count], from: moments.first, offset: 0)
            addFloats(Self.momentTensors.1, shape: [layout.count], from: moments.second, offset: 0)
        }
        if let tokenCounts {
            addInts(Self.tokenCountTensor, tokenCounts.map { Int32(clamping: $0) })
        }

        file.add("general.architecture", .string(Self.architecture))
        let metadata: [(String, GGUFValue)] = [
            ("format_version", .uint32(Self.formatVersion)),
            ("target_file_hash", .uint64(targetFileHash)),
            ("target_file_size", .uint64(targetFileSize)),
            ("training_step", .uint64(UInt64(weights.version))),
            ("embedding_length", .uint32(UInt32(config.hiddenSize))),
            ("attention.head_count", .uint32(UInt32(config.headCount))),
            ("attention.head_count_kv", .uint32(UInt32(config.kvHeadCount))),
            ("feed_forward_length", .uint32(UInt32(config.feedForwardSize))),
            ("draft_vocab_size", .uint32(UInt32(config.draftVocabularySize))),
            ("target_vocab_size", .uint32(UInt32(targetVocabularySize))),
            ("attention.layer_norm_rms_epsilon", .float32(config.rmsNormEpsilon)),
            ("rope.freq_base", .float32(config.ropeBase)),
            ("tensor_checksums", .array(elementType: GGUFValue.uint64(0).typeCode, checksums.map { .uint64($0) })),
        ]
        for (key, value) in metadata { file.add(Self.keyPrefix + key, value) }
        file.add(Self.keyPrefix + "metadata_checksum", .uint64(Self.metadataChecksum(metadata)))
        return file.encode()
    }

    /// Keys under `keyPrefix` that `metadata_checksum` covers, in the order it hashes them.
    static let checksummedKeys = [
        "format_version", "target_file_hash", "target_file_size", "training_step", "embedding_length",
        "attention.head_count", "attention.head_count_kv", "feed_forward_length", "draft_vocab_size",
        "target_vocab_size", "attention.layer_norm_rms_epsilon", "rope.freq_base", "tensor_checksums",
    ]

    /// Returns `td_drafter_hash` of the GGUF encoding of each key (with `keyPrefix`) and value.
    static func metadataChecksum(_ entries: [(String, GGUFValue)]) -> UInt64 {
        var encoder = GGUFEncoder()
        for (key, value) in entries {
            encoder.appendString(keyPrefix + key)
            encoder.append(value)
        }
        return encoder.bytes.withUnsafeBytes { td_drafter_hash($0.baseAddress, $0.count) }
    }

    /// Reads the checkpoint at `path` and checks that it was made for `target`. A file in the
    /// earlier `TDDRAFT1` format loads as well.
    /// Cost: one read of the target file to hash it, and a copy of the checkpoint's tensors.
    /// - Throws: `DrafterError.checkpointUnreadable` when the file cannot be read,
    ///   `.notADrafterCheckpoint` for a file that is not one (such as a model),
    ///   `.checkpointCorrupt` for a damaged, truncated or inconsistent checkpoint, and
    ///   `.checkpointForAnotherTarget` for one made for another target model file.
    public static func load(path: String, target: DrafterTarget) throws -> DrafterCheckpoint {
        let file: GGUFFile
        do {
            file = try GGUFFile(path: path)
        } catch let error as GGUFError {
            if case .badMagic = error, DrafterCheckpointVersion1.matches(path: path) {
                return try DrafterCheckpointVersion1.load(path: path, target: target)
            }
            throw Self.drafterError(error, path: path)
        }
        return try DrafterCheckpointReader(file: file, target: target).read()
    }

    /// Loads the checkpoint at `path`, or returns nil when no file exists there.
    /// - Throws: what `load` throws, for a file that exists.
    public static func loadIfPresent(path: String, target: DrafterTarget) throws -> DrafterCheckpoint? {
        guard access(path, F_OK) == 0 else { return nil }
        return try load(path: path, target: target)
    }

    /// Returns the drafter error for a file that does not open as GGUF.
    private static func drafterError(_ error: GGUFError, path: String) -> DrafterError {
        switch error {
        case let .cannotOpen(_, reason):
            return .checkpointUnreadable(path: path, reason: reason)
        case .badMagic:
            return .notADrafterCheckpoint(path: path, found: "a file that is neither GGUF nor the earlier TDDRAFT1 format")
        case let .truncated(what, offset, needed, fileSize):
            return .checkpointCorrupt(path: path, problem: "it is truncated: \(what) needs \(needed) bytes at offset \(offset), but the file has \(fileSize) bytes")
        case let .implausibleCount(what, value, _):
            return .checkpointCorrupt(path: path, problem: "it is truncated or damaged: \(what) is \(value), more than the rest of the file holds")
        default:
            return .checkpointCorrupt(path: path, problem: "it is not a valid GGUF file: \(error)")
        }
    }

    private static func writeAtomically(_ data: [UInt8], to path: String) throws {
        let temporary = "\(path).tmp-\(getpid())"
        func fail(_ what: String) -> DrafterError {
            let reason = "\(what): \(String(cString: strerror(errno)))"
            unlink(temporary)
            return DrafterError.checkpointWriteFailed(path: path, reason: reason)
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw fail("cannot create \(temporary)") }
        var written = 0
        while written < data.count {
            let result = data.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + written, $0.count - written) }
            guard result > 0 else {
                close(fd)
                throw fail("write failed")
            }
            written += result
        }
        guard fsync(fd) == 0 else {
            close(fd)
            throw fail("fsync failed")
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw fail("rename to \(path) failed") }
    }
}

/// write(2), named apart from the instance method `write(to:target:)`.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, bytes, count)
    #else
    return Darwin.write(fd, bytes, count)
    #endif
}

extension DrafterTensor {
    /// The tensor's name in a checkpoint, after llama.cpp's names for a decoder layer's tensors.
    var ggufName: String {
        switch self {
        case .inputProjection: return "input_projection.weight"
        case .attentionNorm: return "blk.0.attn_norm.weight"
        case .query: return "blk.0.attn_q.weight"
        case .key: return "blk.0.attn_k.weight"
        case .value: return "blk.0.attn_v.weight"
        case .attentionOutput: return "blk.0.attn_output.weight"
        case .feedForwardNorm: return "blk.0.ffn_norm.weight"
        case .gate: return "blk.0.ffn_gate.weight"
        case .up: return "blk.0.ffn_up.weight"
        case .down: return "blk.0.ffn_down.weight"
        case .outputNorm: return "output_norm.weight"
        }
    }

    /// Returns the tensor's dimensions in ggml order: [cols, rows] for a matrix, [H] for a norm.
    func ggufShape(_ config: DrafterConfig) -> [Int] {
        let shape = self.shape(config)
        return isNorm ? [shape.cols] : [shape.cols, shape.rows]
    }
}

extension DrafterTarget {
    /// The hash and size of the target's model file, which a checkpoint must match.
    /// Cost: one read of the file (about 100 MB for SmolLM2-135M Q4_1).
    func fingerprint() throws -> (hash: UInt64, size: UInt64) {
        var hash: UInt64 = 0, size: UInt64 = 0
        guard td_drafter_hash_file(weights.file.path, &hash, &size) == TD_OK else {
            throw DrafterError.checkpointUnreadable(path: weights.file.path, reason: "the target model file cannot be read to hash it")
        }
        return (hash, size)
    }
}
