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
///
/// Writes go to a temporary file in the same folder that is then renamed over the path, so
/// a crash leaves either the old checkpoint or the new one, never a torn file.
public struct DrafterCheckpoint {
    public var weights: DrafterWeights
    /// AdamW first and second moments, in the parameters' layout.
    var moments: (first: FloatBuffer, second: FloatBuffer)?
    /// Token counts by target id, from which the draft vocabulary is rebuilt.
    var tokenCounts: [Int]?

    static let magic: [UInt8] = Array("TDDRAFT1".utf8)
    static let formatVersion: UInt32 = 1

    public init(weights: DrafterWeights) {
        self.weights = weights
    }

    init(weights: DrafterWeights, moments: (first: FloatBuffer, second: FloatBuffer)?, tokenCounts: [Int]?) {
        self.weights = weights
        self.moments = moments
        self.tokenCounts = tokenCounts
    }

    /// Writes the checkpoint to `path` atomically (temporary file, then rename).
    /// - Throws: `DrafterError.checkpointWriteFailed` with the system's reason.
    public func write(to path: String, target: DrafterTarget) throws {
        let fingerprint = try target.fingerprint()
        var out = ByteWriter()
        out.bytes(Self.magic)
        out.value(Self.formatVersion)
        out.value(fingerprint.hash)
        out.value(fingerprint.size)
        out.value(Int64(weights.version))
        let c = weights.config
        for value in [c.hiddenSize, c.headCount, c.kvHeadCount, c.feedForwardSize, c.draftVocabularySize, target.config.vocabularySize] {
            out.value(Int32(value))
        }
        out.value(c.rmsNormEpsilon)
        out.value(c.ropeBase)
        out.value(UInt32((moments != nil ? 1 : 0) | (tokenCounts != nil ? 2 : 0)))
        for token in weights.vocabulary.tokens { out.value(token) }
        out.floats(weights.parameters)
        if let moments {
            out.floats(moments.first)
            out.floats(moments.second)
        }
        if let tokenCounts {
            for count in tokenCounts { out.value(UInt32(clamping: count)) }
        }
        out.value(out.data.withUnsafeBytes { td_drafter_hash($0.baseAddress, $0.count) })
        try Self.writeAtomically(out.data, to: path)
    }

    /// Reads the checkpoint at `path` and checks that it was made for `target`.
    /// - Throws: `DrafterError` when the file cannot be read, is corrupt or truncated, or was
    ///   made for another target model file.
    public static func load(path: String, target: DrafterTarget) throws -> DrafterCheckpoint {
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

    /// Loads the checkpoint at `path`, or returns nil when no file exists there.
    /// - Throws: what `load` throws, for a file that exists.
    public static func loadIfPresent(path: String, target: DrafterTarget) throws -> DrafterCheckpoint? {
        guard access(path, F_OK) == 0 else { return nil }
        return try load(path: path, target: target)
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

/// Little-endian encoding into a byte array.
private struct ByteWriter {
    var data: [UInt8] = []

    mutating func bytes(_ bytes: [UInt8]) { data += bytes }

    mutating func value<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { data += $0 }
    }

    mutating func value(_ value: Float) { self.value(value.bitPattern) }

    mutating func floats(_ buffer: FloatBuffer) {
        // Floats are stored in the machine's order, which the format fixes as little-endian.
        data += UnsafeRawBufferPointer(start: buffer.pointer, count: buffer.count * 4)
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
