import Kernels

/// Reads a drafter checkpoint from an opened GGUF file, checking it against the format that
/// `DrafterCheckpoint` documents and against the target it is loaded for.
///
/// The checks run in this order. The file is a drafter (`general.architecture`) in a known
/// format version, its metadata matches its checksum, and every tensor's data matches its
/// checksum. Then it was made for the
/// target file, its shapes fit the target, and every tensor has the expected type and shape.
struct DrafterCheckpointReader {
    let file: GGUFFile
    let target: DrafterTarget
    private var path: String { file.path }

    init(file: GGUFFile, target: DrafterTarget) {
        self.file = file
        self.target = target
    }

    func read() throws -> DrafterCheckpoint {
        // What kind of file this is.
        let architecture = file.metadata["general.architecture"]?.stringValue
        guard architecture == DrafterCheckpoint.architecture else {
            let found = architecture.map { "a GGUF file of a '\($0)' model" } ?? "a GGUF file without general.architecture"
            throw DrafterError.notADrafterCheckpoint(path: path, found: found)
        }
        let version = try integer("format_version")
        guard version == Int(DrafterCheckpoint.formatVersion) else {
            throw corrupt("format version \(version) is not supported; expected \(DrafterCheckpoint.formatVersion)")
        }
        try verifyMetadataChecksum()
        try verifyChecksums()

        // The target it was made for, and the drafter's shape.
        let fingerprint = try target.fingerprint()
        guard try unsigned64("target_file_hash") == fingerprint.hash, try unsigned64("target_file_size") == fingerprint.size,
              try integer("target_vocab_size") == target.config.vocabularySize else {
            throw DrafterError.checkpointForAnotherTarget(path: path, targetPath: target.weights.file.path)
        }
        let config = DrafterConfig(
            hiddenSize: try integer("embedding_length"), headCount: try integer("attention.head_count"),
            kvHeadCount: try integer("attention.head_count_kv"), feedForwardSize: try integer("feed_forward_length"),
            draftVocabularySize: try integer("draft_vocab_size"),
            rmsNormEpsilon: try float("attention.layer_norm_rms_epsilon"), ropeBase: try float("rope.freq_base"))
        try config.validate(for: target.config)

        // The tensors.
        let layout = DrafterLayout(config: config)
        let parameters = FloatBuffer(count: layout.count)
        for tensor in DrafterTensor.allCases {
            let info = try checkedTensor(tensor.ggufName, type: .f32, shape: tensor.ggufShape(config))
            copy(info, into: parameters, at: layout.offset(tensor))
        }
        let vocabulary = try readVocabulary(size: config.draftVocabularySize)
        let moments = try readMoments(count: layout.count)
        var tokenCounts: [Int]? = nil
        if file.tensor(named: DrafterCheckpoint.tokenCountTensor) != nil {
            let counts = try integers(DrafterCheckpoint.tokenCountTensor, count: target.config.vocabularySize)
            if let negative = counts.first(where: { $0 < 0 }) {
                throw corrupt("tensor '\(DrafterCheckpoint.tokenCountTensor)' has a negative count \(negative)")
            }
            tokenCounts = counts.map(Int.init)
        }
        let known = Set(DrafterTensor.allCases.map(\.ggufName) + [DrafterCheckpoint.vocabularyTensor, DrafterCheckpoint.momentTensors.0,
                                                                  DrafterCheckpoint.momentTensors.1, DrafterCheckpoint.tokenCountTensor])
        if let unknown = file.tensors.first(where: { !known.contains($0.name) }) {
            throw corrupt("it has a tensor '\(unknown.name)' that the drafter format does not define")
        }

        let weights = DrafterWeights(config: config, vocabulary: vocabulary, head: target.headRows(vocabulary),
                                     parameters: parameters, version: try integer("training_step"), forInference: true)
        return DrafterCheckpoint(weights: weights, moments: moments, tokenCounts: tokenCounts)
    }

    /// Compares the drafter's metadata values with `metadata_checksum`, so a damaged training
    /// step, epsilon or RoPE base is found too.
    private func verifyMetadataChecksum() throws {
        let key = DrafterCheckpoint.keyPrefix + "metadata_checksum"
        guard case let .uint64(stored)? = file.metadata[key] else { throw corrupt("metadata key '\(key)' is missing or not a u64") }
        var entries: [(String, GGUFValue)] = []
        for name in DrafterCheckpoint.checksummedKeys {
            guard let value = file.metadata[DrafterCheckpoint.keyPrefix + name] else {
                throw corrupt("metadata key '\(DrafterCheckpoint.keyPrefix + name)' is missing")
            }
            entries.append((name, value))
        }
        guard DrafterCheckpoint.metadataChecksum(entries) == stored else {
            throw corrupt("its metadata does not match its checksum (the file is damaged)")
        }
    }

    /// Compares each tensor's data with `tensor_checksums`, so a damaged byte anywhere in the
    /// data is found before any of it is used. Cost: one pass over the data.
    private func verifyChecksums() throws {
        let key = DrafterCheckpoint.keyPrefix + "tensor_checksums"
        guard let items = file.metadata[key]?.arrayValue else { throw corrupt("metadata key '\(key)' is missing or not an array") }
        guard items.count == file.tensors.count else {
            throw corrupt("it lists \(items.count) tensor checksums for \(file.tensors.count) tensors")
        }
        for (tensor, item) in zip(file.tensors, items) {
            guard case let .uint64(stored) = item else { throw corrupt("metadata key '\(key)' contains \(item.summary), expected a u64") }
            let data = file.tensorData(tensor)
            guard td_drafter_hash(data.baseAddress, data.count) == stored else {
                throw corrupt("the data of tensor '\(tensor.name)' does not match its checksum (the file is damaged)")
            }
        }
    }

    private func readVocabulary(size: Int) throws -> DraftVocabulary {
        let tokens = try integers(DrafterCheckpoint.vocabularyTensor, count: size)
        let vocabularySize = target.config.vocabularySize
        if let token = tokens.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw corrupt("draft token id \(token) is outside the target's vocabulary of \(vocabularySize) tokens")
        }
        guard Set(tokens).count == tokens.count else { throw corrupt("the draft vocabulary lists a token twice") }
        return DraftVocabulary(tokens: tokens, targetVocabularySize: vocabularySize)
    }

    /// Reads both AdamW moments, or returns nil when the file has neither.
    private func readMoments(count: Int) throws -> (first: FloatBuffer, second: FloatBuffer)? {
        let (firstName, secondName) = DrafterCheckpoint.momentTensors
        let present = (file.tensor(named: firstName) != nil, file.tensor(named: secondName) != nil)
        guard present.0 || present.1 else { return nil }
        guard present.0 && present.1 else { throw corrupt("it has only one of the tensors '\(firstName)' and '\(secondName)'") }
        let first = FloatBuffer(count: count), second = FloatBuffer(count: count)
        copy(try checkedTensor(firstName, type: .f32, shape: [count]), into: first, at: 0)
        copy(try checkedTensor(secondName, type: .f32, shape: [count]), into: second, at: 0)
        return (first, second)
    }

    /// Returns the tensor `name` after checking its type and shape.
    private func checkedTensor(_ name: String, type: GGMLType, shape: [Int]) throws -> GGUFTensorInfo {
        guard let info = file.tensor(named: name) else { throw corrupt("tensor '\(name)' is missing") }
        guard info.type == type && info.shape == shape else {
            throw corrupt("tensor '\(name)' is \(info.type.name) \(info.shape), expected \(type.name) \(shape)")
        }
        return info
    }

    /// Returns the values of the I32 tensor `name` of `count` elements.
    private func integers(_ name: String, count: Int) throws -> [Int32] {
        let data = file.tensorData(try checkedTensor(name, type: .i32, shape: [count]))
        return (0..<count).map { Int32(littleEndian: data.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
    }

    /// Copies an F32 tensor's data into `buffer` from element `offset` on. The bytes copy as
    /// they are because stored floats are little-endian, as x86-64 and ARM64 are.
    private func copy(_ info: GGUFTensorInfo, into buffer: FloatBuffer, at offset: Int) {
        UnsafeMutableRawPointer(buffer.pointer + offset).copyMemory(from: file.dataPointer(info), byteCount: info.byteCount)
    }

    private func integer(_ key: String) throws -> Int {
        guard let value = file.metadata[DrafterCheckpoint.keyPrefix + key]?.intValue, value >= 0 else {
            throw corrupt("metadata key '\(DrafterCheckpoint.keyPrefix + key)' is missing or not a non-negative integer")
        }
        return value
    }

    private func unsigned64(_ key: String) throws -> UInt64 {
        guard case let .uint64(value) = file.metadata[DrafterCheckpoint.keyPrefix + key] else {
            throw corrupt("metadata key '\(DrafterCheckpoint.keyPrefix + key)' is missing or not a u64")
        }
        return value
    }

    private func float(_ key: String) throws -> Float {
        guard case let .float32(value) = file.metadata[DrafterCheckpoint.keyPrefix + key] else {
            throw corrupt("metadata key '\(DrafterCheckpoint.keyPrefix + key)' is missing or not an f32")
        }
        return value
    }

    private func corrupt(_ problem: String) -> DrafterError {
        DrafterError.checkpointCorrupt(path: path, problem: problem)
    }
}
