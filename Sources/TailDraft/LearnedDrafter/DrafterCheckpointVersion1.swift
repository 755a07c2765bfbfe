#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

/// The reader of drafter checkpoints in the first format, `TDDRAFT1`, which came before the
/// GGUF format that `DrafterCheckpoint.write` writes. Such a file loads with every check it
/// had, and the next save writes it back as GGUF.
///
/// File format (all integers and floats little-endian):
///
///     magic "TDDRAFT1" (8 bytes), format version u32 = 1
///     target file hash u64, target file size u64 (`td_drafter_hash_file`)
///     training step i64
///     hidden size, heads, KV heads, MLP size, draft vocabulary V, target vocabulary: i32 each
///     RMSNorm epsilon f32, RoPE base f32, flags u32 (bit 0: moments, bit 1: token counts)
///     V draft-vocabulary token ids (i32)
///     P parameters (f32) in `DrafterTensor` order, P = `DrafterConfig.parameterCount`
///     with bit 0: P first moments, then P second moments (f32)
///     with bit 1: one token count (u32) per target vocabulary entry
///     checksum u64: `td_drafter_hash` of every byte before it
enum DrafterCheckpointVersion1 {
    static let magic: [UInt8] = Array("TDDRAFT1".utf8)
    static let formatVersion: UInt32 = 1

    /// Returns whether the file at `path` starts with the magic "TDDRAFT1".
    static func matches(path: String) -> Bool {
        guard let file = fopen(path, "rb") else { return false }
        defer { fclose(file) }
        var prefix = [UInt8](repeating: 0, count: magic.count)
        let got = prefix.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        return got == magic.count && prefix == magic
    }

    /// Reads the checkpoint at `path` and checks that it was made for `target`.
    /// - Throws: `DrafterError` when the file cannot be read, is corrupt or truncated, or was
    ///   made for another target model file.
    static func load(path: String, target: DrafterTarget) throws -> DrafterCheckpoint {
        let data = try readFile(path)
        var input = ByteReader(data: data, path: path)
        guard data.count >= 8 + 8, Array(data[0..<8]) == magic else {
            throw DrafterError.checkpointCorrupt(path: path, problem: "it does not start with the drafter checkpoint magic 'TDDRAFT1'")
        }
        let stored = UInt64(littleEndian: data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: data.count - 8, as: UInt64.self) })
        let computed = data.withUnsafeBytes { td_drafter_hash($0.baseAddress, $0.count - 8) }
        guard stored == computed else {
            throw DrafterError.checkpointCorrupt(path: path, problem: "its checksum does not match its contents (truncated or damaged)")
        }
        input.skip(8)
        let version: UInt32 = try input.value()
        guard version == formatVersion else {
            throw DrafterError.checkpointCorrupt(path: path, problem: "format version \(version) is not supported; expected \(formatVersion)")
        }
        let hash: UInt64 = try input.value(), size: UInt64 = try input.value()
        let fingerprint = try target.fingerprint()
        guard hash == fingerprint.hash && size == fingerprint.size else {
            throw DrafterError.checkpointForAnotherTarget(path: path, targetPath: target.weights.file.path)
        }
        let step: Int64 = try input.value()
        var sizes: [Int] = []
        for _ in 0..<6 { sizes.append(Int(try input.value() as Int32)) }
        let epsilon: Float = try input.value(), ropeBase: Float = try input.value()
        let flags: UInt32 = try input.value()
        let config = DrafterConfig(hiddenSize: sizes[0], headCount: sizes[1], kvHeadCount: sizes[2], feedForwardSize: sizes[3],
                                   draftVocabularySize: sizes[4], rmsNormEpsilon: epsilon, ropeBase: ropeBase)
        try config.validate(for: target.config)
        guard sizes[5] == target.config.vocabularySize else {
            throw DrafterError.checkpointForAnotherTarget(path: path, targetPath: target.weights.file.path)
        }

        var tokens: [Int32] = []
        for _ in 0..<config.draftVocabularySize {
            let token: Int32 = try input.value()
            guard token >= 0 && Int(token) < target.config.vocabularySize else {
                throw DrafterError.checkpointCorrupt(path: path, problem: "draft token id \(token) is outside the target's vocabulary")
            }
            tokens.append(token)
        }
        guard Set(tokens).count == tokens.count else {
            throw DrafterError.checkpointCorrupt(path: path, problem: "the draft vocabulary lists a token twice")
        }
        let vocabulary = DraftVocabulary(tokens: tokens, targetVocabularySize: target.config.vocabularySize)
        let count = config.parameterCount
        let parameters = try input.floats(count)
        let moments = flags & 1 != 0 ? (try input.floats(count), try input.floats(count)) : nil
        var counts: [Int]? = nil
        if flags & 2 != 0 {
            counts = try (0..<target.config.vocabularySize).map { _ in Int(try input.value() as UInt32) }
        }
        guard input.remaining == 8 else {
            throw DrafterError.checkpointCorrupt(path: path, problem: "it has \(input.remaining - 8) unexpected bytes before the checksum")
        }
        let weights = DrafterWeights(config: config, vocabulary: vocabulary, head: target.headRows(vocabulary),
                                     parameters: parameters, version: Int(step), forInference: true)
        return DrafterCheckpoint(weights: weights, moments: moments, tokenCounts: counts)
    }

    private static func readFile(_ path: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw DrafterError.checkpointUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let got = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if got == 0 { break }
            data.append(contentsOf: chunk[0..<got])
        }
        guard ferror(file) == 0 else {
            throw DrafterError.checkpointUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        return data
    }
}

/// Bounds-checked little-endian decoding of a checkpoint's bytes.
private struct ByteReader {
    let data: [UInt8]
    let path: String
    var offset = 0

    var remaining: Int { data.count - offset }

    mutating func skip(_ count: Int) { offset += count }

    mutating func value<T: FixedWidthInteger>() throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw truncated() }
        let raw = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += size
        return T(littleEndian: raw)
    }

    mutating func value() throws -> Float { Float(bitPattern: try value() as UInt32) }

    mutating func floats(_ count: Int) throws -> FloatBuffer {
        guard remaining >= count * 4 else { throw truncated() }
        let buffer = FloatBuffer(count: count)
        data.withUnsafeBytes { UnsafeMutableRawPointer(buffer.pointer).copyMemory(from: $0.baseAddress! + offset, byteCount: count * 4) }
        offset += count * 4
        return buffer
    }

    func truncated() -> DrafterError {
        DrafterError.checkpointCorrupt(path: path, problem: "it ends at byte \(data.count), before all its fields")
    }
}
