import Foundation
import Testing
@testable import TailDraft

/// Writes `bytes` to a temporary file and returns the GGUFError that opening it throws, or
/// nil when it opens. Errors of other types fail the calling test.
private func openingError(of bytes: [UInt8]) throws -> GGUFError? {
    try withTemporaryDirectory { directory in
        let url = directory.appendingPathComponent("case.gguf")
        try Data(bytes).write(to: url)
        do {
            _ = try GGUFFile(path: url.path)
            return nil
        } catch let error as GGUFError {
            return error
        }
    }
}

/// Opens the GGUF file at `path` and returns the GGUFError it throws, or nil.
private func openingError(atPath path: String) throws -> GGUFError? {
    do {
        _ = try GGUFFile(path: path)
        return nil
    } catch let error as GGUFError {
        return error
    }
}

/// Makes a valid file with one small F32 tensor, for tests that break one field of it.
private func smallWriter(version: UInt32 = 3) -> GGUFWriter {
    var writer = GGUFWriter(version: version)
    writer.add("general.architecture", .string("llama"))
    writer.add(.f32("weights", shape: [4], values: [1, 2, 3, 4]))
    return writer
}

/// Builds a header with no tensors and one metadata entry, whose raw bytes from the key
/// length on are `entry`.
private func headerWithOneEntry(_ entry: [UInt8]) -> [UInt8] {
    var writer = ByteWriter()
    writer.append(UInt32(0x4655_4747))
    writer.append(UInt32(3))
    writer.append(UInt64(0))
    writer.append(UInt64(1))
    writer.append(bytes: entry)
    return writer.bytes
}

@Suite struct GGUFReaderTests {
    // MARK: - Metadata

    /// One value of every GGUF type, plus arrays of each, arrays of strings and nested arrays.
    static let everyValueType: [(String, GGUFValue)] = [
        ("test.u8", .uint8(255)),
        ("test.i8", .int8(-128)),
        ("test.u16", .uint16(65535)),
        ("test.i16", .int16(-32768)),
        ("test.u32", .uint32(.max)),
        ("test.i32", .int32(.min)),
        ("test.f32", .float32(-1.5e-7)),
        ("test.f32.inf", .float32(.infinity)),
        ("test.bool.true", .bool(true)),
        ("test.bool.false", .bool(false)),
        ("test.string", .string("héllo, wörld ✓ 日本")),
        ("test.string.empty", .string("")),
        ("test.u64", .uint64(.max)),
        ("test.i64", .int64(.min)),
        ("test.f64", .float64(-Double.pi)),
        ("test.array.u8", .array(elementType: 0, [.uint8(0), .uint8(7), .uint8(255)])),
        ("test.array.i8", .array(elementType: 1, [.int8(-1), .int8(127)])),
        ("test.array.u16", .array(elementType: 2, [.uint16(1), .uint16(65535)])),
        ("test.array.i16", .array(elementType: 3, [.int16(-300), .int16(300)])),
        ("test.array.u32", .array(elementType: 4, [.uint32(0), .uint32(4_000_000_000)])),
        ("test.array.i32", .array(elementType: 5, [.int32(-2), .int32(2_000_000_000)])),
        ("test.array.f32", .array(elementType: 6, [.float32(0.25), .float32(-3)])),
        ("test.array.bool", .array(elementType: 7, [.bool(true), .bool(false), .bool(true)])),
        ("test.array.string", .array(elementType: 8, [.string("a"), .string(""), .string("Ġthe")])),
        ("test.array.u64", .array(elementType: 10, [.uint64(1 << 40)])),
        ("test.array.i64", .array(elementType: 11, [.int64(-(1 << 40))])),
        ("test.array.f64", .array(elementType: 12, [.float64(1e300), .float64(-0.5)])),
        ("test.array.empty", .array(elementType: 4, [])),
        ("test.array.nested", .array(elementType: 9, [
            .array(elementType: 8, [.string("x"), .string("yz")]),
            .array(elementType: 8, []),
            .array(elementType: 5, [.int32(42)]),
        ])),
        ("test.array.nested3", .array(elementType: 9, [
            .array(elementType: 9, [.array(elementType: 0, [.uint8(1), .uint8(2)])]),
        ])),
    ]

    @Test(arguments: [UInt32(2), UInt32(3)])
    func metadataRoundTrip(version: UInt32) throws {
        var writer = GGUFWriter(version: version)
        for (key, value) in Self.everyValueType { writer.add(key, value) }
        writer.add(.f32("t", shape: [2, 2], values: [1, -2, 3.5, 4]))

        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("all-types.gguf")
            try writer.write(to: url)
            let file = try GGUFFile(path: url.path)

            #expect(file.version == version)
            #expect(file.metadataKeys == Self.everyValueType.map(\.0))
            for (key, value) in Self.everyValueType {
                #expect(file.metadata[key] == value, "metadata key \(key)")
            }
            let tensor = try #require(file.tensor(named: "t"))
            #expect(tensor.shape == [2, 2])
            #expect(Array(file.tensorData(tensor)) == Quantizer.f32Bytes([1, -2, 3.5, 4]))
        }
    }

    @Test func typedAccessors() throws {
        var writer = GGUFWriter()
        writer.add("a.int", .int16(-7))
        writer.add("a.float", .float32(0.5))
        writer.add("a.strings", .array(elementType: 8, [.string("p"), .string("q")]))
        writer.add("a.ints", .array(elementType: 5, [.int32(3), .int32(-4)]))

        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("typed.gguf")
            try writer.write(to: url)
            let file = try GGUFFile(path: url.path)

            #expect(try file.int("a.int") == -7)
            #expect(try file.double("a.float") == 0.5)
            #expect(try file.stringArray("a.strings") == ["p", "q"])
            #expect(try file.intArray("a.ints") == [3, -4])
            #expect(throws: GGUFError.missingKey(key: "a.absent", expected: "a string")) { try file.string("a.absent") }
            #expect(throws: GGUFError.missingKey(key: "a.float", expected: "an integer")) { try file.int("a.float") }
        }
    }

    // MARK: - Alignment

    /// Three 16-byte F32 tensors behind metadata padded so the tensor infos end at
    /// `headerEndModulo32` modulo 32.
    private func alignmentWriter(alignmentKey: UInt32?, headerEndModulo32: Int) -> GGUFWriter {
        func make(padding: Int) -> GGUFWriter {
            var writer = GGUFWriter()
            if let alignmentKey { writer.add("general.alignment", .uint32(alignmentKey)) }
            writer.add("test.padding", .string(String(repeating: "p", count: padding)))
            for index in 0..<3 {
                let values = (0..<4).map { Float(index * 10 + $0) }
                writer.add(.f32("tensor\(index)", shape: [4], values: values))
            }
            return writer
        }
        let unpadded = make(padding: 0).build().layout.headerEnd
        let padding = ((headerEndModulo32 - unpadded) % 32 + 32) % 32
        return make(padding: padding)
    }

    @Test(arguments: [
        (UInt32?.some(16), 16, 16),
        (UInt32?.some(16), 0, 16),
        (UInt32?.some(16), 8, 16),
        (UInt32?.none, 16, 32),
        (UInt32?.none, 0, 32),
    ])
    func tensorDataAlignment(alignmentKey: UInt32?, headerEndModulo32: Int, expectedAlignment: Int) throws {
        let writer = alignmentWriter(alignmentKey: alignmentKey, headerEndModulo32: headerEndModulo32)
        let layout = writer.build().layout
        #expect(layout.headerEnd % 32 == headerEndModulo32)

        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("aligned.gguf")
            try writer.write(to: url)
            let file = try GGUFFile(path: url.path)

            #expect(file.alignment == expectedAlignment)
            #expect(file.dataOffset == roundUp(layout.headerEnd, expectedAlignment))
            #expect(file.dataOffset == layout.dataOffset)
            for index in 0..<3 {
                let tensor = try #require(file.tensor(named: "tensor\(index)"))
                #expect(tensor.offset == index * roundUp(16, expectedAlignment), "tensor\(index)")
                let values = (0..<4).map { Float(index * 10 + $0) }
                #expect(Array(file.tensorData(tensor)) == Quantizer.f32Bytes(values), "tensor\(index)")
            }
        }
    }

    @Test(arguments: [UInt32(0), UInt32(12)])
    func invalidAlignmentRejected(alignment: UInt32) throws {
        var writer = smallWriter()
        writer.add("general.alignment", .uint32(alignment))
        writer.layoutAlignment = 32

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .badAlignment(value: String(alignment)))
        #expect(error.description.contains("general.alignment is \(alignment)"))
    }

    @Test func alignmentOfWrongTypeRejected() throws {
        var writer = smallWriter()
        writer.add("general.alignment", .string("32"))
        writer.layoutAlignment = 32

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .badAlignment(value: "\"32\""))
    }

    // MARK: - Header

    @Test func badMagicRejected() throws {
        var writer = smallWriter()
        writer.magic = 0x4C4D_4747  // "GGML"

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .badMagic(found: 0x4C4D_4747))
        #expect(error.description.contains("0x4c4d4747"))
    }

    @Test(arguments: [UInt32(1), UInt32(4)])
    func unsupportedVersionRejected(version: UInt32) throws {
        let error = try #require(try openingError(of: smallWriter(version: version).build().bytes))
        #expect(error == .unsupportedVersion(version))
        #expect(error.description.contains("version \(version)"))
    }

    @Test func unknownValueTypeRejected() throws {
        var writer = smallWriter()
        writer.addRaw("test.mystery", typeCode: 13, payload: [0, 0, 0, 0])

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .unknownValueType(key: "test.mystery", code: 13))
        #expect(error.description.contains("'test.mystery'"))
        #expect(error.description.contains("13"))
    }

    @Test func unknownArrayElementTypeRejected() throws {
        var payload = ByteWriter()
        payload.append(UInt32(42))
        payload.append(UInt64(1))
        payload.append(UInt32(0))
        var writer = smallWriter()
        writer.addRaw("test.array", typeCode: 9, payload: payload.bytes)

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .unknownValueType(key: "test.array", code: 42))
    }

    @Test func invalidBoolRejected() throws {
        var writer = smallWriter()
        writer.addRaw("test.flag", typeCode: 7, payload: [2])

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error.description.contains("'test.flag'"))
        #expect(error.description.contains("value 2"))
    }

    @Test func duplicateKeyRejected() throws {
        var writer = smallWriter()
        writer.add("general.architecture", .string("llama"))

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .duplicateName(kind: "metadata key", name: "general.architecture"))
    }

    @Test func absurdKeyLengthRejected() throws {
        var entry = ByteWriter()
        entry.append(UInt64(1) << 62)
        entry.append(bytes: Array("general.architecture".utf8))

        let error = try #require(try openingError(of: headerWithOneEntry(entry.bytes)))
        guard case let .truncated(what, _, needed, _) = error else {
            Issue.record("expected a truncation error, got \(error)")
            return
        }
        #expect(what == "key of metadata entry 0")
        #expect(needed == 1 << 62)
        #expect(error.description.contains("key of metadata entry 0"))
        #expect(error.description.contains("\(1 << 62)"))
    }

    @Test func absurdStringValueLengthRejected() throws {
        var payload = ByteWriter()
        payload.append(UInt64.max)
        payload.append(bytes: Array("short".utf8))
        var writer = smallWriter()
        writer.addRaw("general.name", typeCode: 8, payload: payload.bytes)

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error.description.contains("value of 'general.name'"))
        #expect(error.description.contains("\(Int.max)"))
    }

    @Test func absurdArrayCountRejected() throws {
        var payload = ByteWriter()
        payload.append(UInt32(0))
        payload.append(UInt64(1) << 60)
        payload.append(bytes: [1, 2, 3])
        var writer = smallWriter()
        writer.addRaw("test.bytes", typeCode: 9, payload: payload.bytes)

        let error = try #require(try openingError(of: writer.build().bytes))
        guard case let .implausibleCount(what, value, _) = error else {
            Issue.record("expected an implausible count error, got \(error)")
            return
        }
        #expect(what == "element count of 'test.bytes'")
        #expect(value == 1 << 60)
        #expect(error.description.contains("'test.bytes'"))
        #expect(error.description.contains("\(UInt64(1) << 60)"))
    }

    @Test func absurdTensorCountRejected() throws {
        var writer = smallWriter()
        writer.tensorCountOverride = 1 << 60

        let error = try #require(try openingError(of: writer.build().bytes))
        guard case let .implausibleCount(what, value, _) = error else {
            Issue.record("expected an implausible count error, got \(error)")
            return
        }
        #expect(what == "tensor count")
        #expect(value == 1 << 60)
        #expect(error.description.contains("tensor count is \(UInt64(1) << 60)"))
    }

    /// Metadata entries are read one by one, so an absurd count fails at the first entry the
    /// file lacks.
    @Test func absurdMetadataCountRejected() throws {
        var entry = ByteWriter()
        entry.appendString("general.name")
        entry.append(UInt32(8))
        entry.appendString("one")
        var bytes = headerWithOneEntry(entry.bytes)
        bytes.replaceSubrange(16..<24, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])

        let error = try #require(try openingError(of: bytes))
        guard case let .truncated(what, offset, _, _) = error else {
            Issue.record("expected a truncation error, got \(error)")
            return
        }
        #expect(what == "length of key of metadata entry 1")
        #expect(offset == bytes.count)
    }

    // MARK: - Tensor infos

    @Test(arguments: [0, 5])
    func invalidDimensionCountRejected(dimensionCount: Int) throws {
        var writer = smallWriter()
        writer.add(TensorEntry(name: "odd.shape", shape: Array(repeating: UInt64(1), count: dimensionCount),
                               typeCode: GGMLType.f32.rawValue, data: [0, 0, 0, 0]))

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .badTensor(name: "odd.shape", problem: "dimension count is \(dimensionCount), expected 1...4"))
        #expect(error.description.contains("'odd.shape'"))
        #expect(error.description.contains("dimension count is \(dimensionCount)"))
    }

    @Test func zeroDimensionRejected() throws {
        var writer = smallWriter()
        writer.add(TensorEntry(name: "empty", shape: [4, 0], typeCode: GGMLType.f32.rawValue, data: []))

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error.description.contains("'empty'"))
        #expect(error.description.contains("dimension 1 is 0"))
    }

    @Test func tensorPastEndOfFileRejected() throws {
        var writer = smallWriter()
        writer.add(TensorEntry(name: "far.away", shape: [8], typeCode: GGMLType.f32.rawValue,
                               data: Quantizer.f32Bytes(Array(repeating: 1, count: 8)), offset: 4096))

        let error = try #require(try openingError(of: writer.build().bytes))
        guard case let .truncated(what, _, needed, _) = error else {
            Issue.record("expected a truncation error, got \(error)")
            return
        }
        #expect(what == "data of tensor 'far.away'")
        #expect(needed == 32)
        #expect(error.description.contains("'far.away'"))
    }

    @Test func tensorLongerThanItsDataRejected() throws {
        var writer = smallWriter()
        // The shape claims 64 floats (256 bytes) but the file ends after 16.
        writer.add(TensorEntry(name: "short.data", shape: [64], typeCode: GGMLType.f32.rawValue,
                               data: Quantizer.f32Bytes([1, 2, 3, 4])))

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error.description.contains("data of tensor 'short.data' needs 256 bytes"))
    }

    @Test func misalignedTensorOffsetRejected() throws {
        var writer = smallWriter()
        writer.add(TensorEntry(name: "misaligned", shape: [4], typeCode: GGMLType.f32.rawValue,
                               data: Quantizer.f32Bytes([1, 2, 3, 4]), offset: 4))

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error.description.contains("'misaligned'"))
        #expect(error.description.contains("data offset 4 is not a multiple of the alignment 32"))
    }

    @Test func rowLengthNotMultipleOfBlockRejected() throws {
        var writer = smallWriter()
        writer.add(TensorEntry(name: "ragged", shape: [48, 2], type: .q8_0, data: Array(repeating: 0, count: 68)))

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error.description.contains("'ragged'"))
        #expect(error.description.contains("row length 48 is not a multiple of the Q8_0 block size 32"))
    }

    @Test func duplicateTensorRejected() throws {
        var writer = smallWriter()
        writer.add(.f32("weights", shape: [4], values: [5, 6, 7, 8]))

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .duplicateName(kind: "tensor", name: "weights"))
    }

    @Test func unknownTensorTypeRejected() throws {
        var writer = smallWriter()
        writer.add(TensorEntry(name: "blk.0.mystery.weight", shape: [32], typeCode: 99, data: Array(repeating: 0, count: 64)))

        let error = try #require(try openingError(of: writer.build().bytes))
        #expect(error == .unsupportedTensorType(name: "blk.0.mystery.weight", typeCode: 99, typeName: "unknown"))
        #expect(error.description.contains("'blk.0.mystery.weight'"))
        #expect(error.description.contains("code 99"))
    }

    /// Q3_K is a valid GGUF type the reader can size, so the file opens. Loading a model
    /// that uses it must fail and name the tensor and the type.
    @Test func q3KTensorRejectedByModel() throws {
        var spec = TinyModelSpec()
        spec.hiddenSize = 256
        let model = TinyModel(spec: spec)
        var writer = model.writer
        let index = try #require(writer.tensors.firstIndex { $0.name == "blk.1.attn_q.weight" })
        writer.tensors[index].typeCode = GGMLType.q3_K.rawValue
        writer.tensors[index].data = Array(repeating: 0, count: 256 / 256 * 110 * 256)

        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("q3k.gguf")
            try writer.write(to: url)
            #expect(try GGUFFile(path: url.path).tensor(named: "blk.1.attn_q.weight")?.type == .q3_K)

            do {
                _ = try Transformer(path: url.path, threads: 1)
                Issue.record("a model with a Q3_K tensor loaded")
            } catch let error as GGUFError {
                #expect(error == .unsupportedTensorType(name: "blk.1.attn_q.weight", typeCode: 11, typeName: "Q3_K"))
                #expect(error.description.contains("'blk.1.attn_q.weight'"))
                #expect(error.description.contains("Q3_K (code 11)"))
                #expect(error.description.contains("Q4_K, Q5_K, Q6_K"))
            }
        }
    }

    // MARK: - Model-level errors

    @Test func unsupportedArchitectureRejected() throws {
        var spec = TinyModelSpec()
        spec.architecture = "gpt-neox"

        try withTemporaryDirectory { directory in
            let path = try TinyModel(spec: spec).write(in: directory)
            do {
                _ = try Transformer(path: path, threads: 1)
                Issue.record("a gpt-neox model loaded")
            } catch let error as GGUFError {
                guard case let .invalidValue(key, value, _) = error else {
                    Issue.record("expected an invalid value error, got \(error)")
                    return
                }
                #expect(key == "general.architecture")
                #expect(value == "'gpt-neox'")
                #expect(error.description.contains("general.architecture"))
                #expect(error.description.contains("gpt-neox"))
            }
        }
    }

    @Test func missingTensorRejected() throws {
        var spec = TinyModelSpec()
        spec.omittedTensors = ["blk.1.ffn_up.weight"]

        try withTemporaryDirectory { directory in
            let path = try TinyModel(spec: spec).write(in: directory)
            do {
                _ = try Transformer(path: path, threads: 1)
                Issue.record("a model without blk.1.ffn_up.weight loaded")
            } catch let error as GGUFError {
                #expect(error == .badTensor(name: "blk.1.ffn_up.weight", problem: "the tensor is missing from the file"))
                #expect(error.description.contains("'blk.1.ffn_up.weight'"))
                #expect(error.description.contains("missing"))
            }
        }
    }

    @Test func wrongTensorShapeRejected() throws {
        var writer = TinyModel(spec: TinyModelSpec()).writer
        let index = try #require(writer.tensors.firstIndex { $0.name == "output_norm.weight" })
        writer.tensors[index] = .f32("output_norm.weight", shape: [32], values: Array(repeating: 1, count: 32))

        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("shape.gguf")
            try writer.write(to: url)
            do {
                _ = try Transformer(path: url.path, threads: 1)
                Issue.record("a model with a 32-element output norm loaded")
            } catch let error as GGUFError {
                #expect(error == .badTensor(name: "output_norm.weight", problem: "shape is [32], expected [64]"))
            }
        }
    }

    @Test func missingMetadataKeyRejected() throws {
        var writer = TinyModel(spec: TinyModelSpec()).writer
        writer.metadata.removeAll { $0.key == "llama.block_count" }

        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("no-blocks.gguf")
            try writer.write(to: url)
            do {
                _ = try Transformer(path: url.path, threads: 1)
                Issue.record("a model without llama.block_count loaded")
            } catch let error as GGUFError {
                #expect(error == .missingKey(key: "llama.block_count", expected: "an integer"))
                #expect(error.description.contains("llama.block_count"))
            }
        }
    }

    @Test func tinyModelLoads() throws {
        var spec = TinyModelSpec()
        spec.weightType = .q4_1
        spec.separateOutput = true

        try withTemporaryDirectory { directory in
            let path = try TinyModel(spec: spec).write(in: directory)
            let file = try GGUFFile(path: path)
            let config = try ModelConfig(file: file)

            #expect(config.layerCount == 2)
            #expect(config.hiddenSize == 64)
            #expect(config.headDim == 16)
            #expect(config.kvHeadCount == 2)
            #expect(config.vocabularySize == 256)
            #expect(try file.stringArray("tokenizer.ggml.tokens") == gpt2ByteTokens())
            #expect(try ModelWeights(file: file, config: config).tiedOutput == false)
        }
    }
}

// MARK: - Truncated copies of the real model

/// Offsets inside the real model's header, found by walking it with the engine's reader.
private struct RealModelLandmarks {
    /// Per metadata entry: its key, where the entry starts, where its value starts and where
    /// the entry ends.
    var entries: [(key: String, start: Int, valueStart: Int, end: Int)] = []
    var headerEnd = 0
    var file: GGUFFile

    init(path: String) throws {
        file = try GGUFFile(path: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        let walked: (entries: [(key: String, start: Int, valueStart: Int, end: Int)], headerEnd: Int) = try data.withUnsafeBytes { raw in
            var reader = GGUFReader(base: raw.baseAddress, size: raw.count)
            _ = try reader.readUInt32(what: "magic number")
            _ = try reader.readUInt32(what: "format version")
            let tensorCount = try reader.readUInt64(what: "tensor count")
            let entryCount = try reader.readUInt64(what: "metadata entry count")
            var entries: [(key: String, start: Int, valueStart: Int, end: Int)] = []
            for index in 0..<Int(entryCount) {
                let start = reader.offset
                let key = try reader.readString(what: "key \(index)")
                let type = try reader.readUInt32(what: "type of \(key)")
                let valueStart = reader.offset
                _ = try reader.readValue(typeCode: type, key: key, depth: 0)
                entries.append((key, start, valueStart, reader.offset))
            }
            for index in 0..<Int(tensorCount) {
                let name = try reader.readString(what: "tensor \(index)")
                let dims = try reader.readUInt32(what: "dimension count of \(name)")
                for axis in 0..<Int(dims) { _ = try reader.readUInt64(what: "dimension \(axis)") }
                _ = try reader.readUInt32(what: "type of \(name)")
                _ = try reader.readUInt64(what: "offset of \(name)")
            }
            return (entries, reader.offset)
        }
        entries = walked.entries
        headerEnd = walked.headerEnd
    }

    func entry(_ key: String) -> (key: String, start: Int, valueStart: Int, end: Int)? {
        entries.first { $0.key == key }
    }
}

@Suite struct TruncatedModelTests {
    /// Writes the first `length` bytes of the real model to a temporary file and returns the
    /// GGUFError that opening it throws.
    private func truncationError(_ length: Int) throws -> GGUFError? {
        let data = try Data(contentsOf: URL(fileURLWithPath: smolLM2Path), options: .alwaysMapped)
        return try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("truncated.gguf")
            try data.prefix(length).write(to: url)
            return try openingError(atPath: url.path)
        }
    }

    @Test(arguments: [(0, "magic number"), (4, "format version"), (8, "tensor count"),
                      (16, "metadata entry count"), (24, "length of key of metadata entry 0")])
    func truncatedHeaderNamesField(length: Int, field: String) throws {
        let error = try #require(try truncationError(length))
        guard case let .truncated(what, offset, _, fileSize) = error else {
            Issue.record("expected a truncation error, got \(error)")
            return
        }
        #expect(what == field)
        #expect(offset == length)
        #expect(fileSize == length)
        #expect(error.description.contains(field))
    }

    @Test func truncatedMetadataValueNamesKey() throws {
        let landmarks = try RealModelLandmarks(path: smolLM2Path)
        let entry = try #require(landmarks.entry("general.architecture"))

        // Cut after the 8-byte length of the string value and 2 of its bytes.
        let error = try #require(try truncationError(entry.valueStart + 10))
        #expect(error.description.contains("value of 'general.architecture'"))
        #expect(error.description.contains("truncated"))
    }

    @Test func truncatedMetadataKeyNamesEntry() throws {
        let landmarks = try RealModelLandmarks(path: smolLM2Path)
        let index = 3
        let entry = landmarks.entries[index]

        let error = try #require(try truncationError(entry.start + 9))
        #expect(error.description.contains("key of metadata entry \(index)"))
    }

    @Test func truncatedTokenArrayNamesKey() throws {
        let landmarks = try RealModelLandmarks(path: smolLM2Path)
        let tokens = try #require(landmarks.entry("tokenizer.ggml.tokens"))
        let middle = (tokens.valueStart + tokens.end) / 2

        // In the middle, too few bytes remain for 8 per token: the element count is rejected.
        let middleError = try #require(try truncationError(middle))
        #expect(middleError.description.contains("'tokenizer.ggml.tokens'"))
        // Near the end, the count fits and the last token string is cut short.
        let endError = try #require(try truncationError(tokens.end - 3))
        #expect(endError.description.contains("value of 'tokenizer.ggml.tokens'"))
        #expect(endError.description.contains("truncated"))
    }

    @Test func truncatedAtEndOfTensorInfosNamesData() throws {
        let landmarks = try RealModelLandmarks(path: smolLM2Path)
        let file = landmarks.file

        let error = try #require(try truncationError(landmarks.headerEnd))
        guard case let .truncated(what, _, _, _) = error else {
            Issue.record("expected a truncation error, got \(error)")
            return
        }
        if landmarks.headerEnd % file.alignment == 0 {
            #expect(what == "data of tensor '\(file.tensors[0].name)'")
        } else {
            #expect(what == "tensor data section")
        }
    }

    @Test func truncatedInsideTensorInfosNamesTensor() throws {
        let landmarks = try RealModelLandmarks(path: smolLM2Path)
        let last = try #require(landmarks.file.tensors.last)

        // The last 8 bytes of the tensor infos are the last tensor's data offset.
        let error = try #require(try truncationError(landmarks.headerEnd - 4))
        #expect(error.description.contains("data offset of tensor '\(last.name)'"))
    }

    @Test func truncatedAfterDataStartNamesFirstTensor() throws {
        let landmarks = try RealModelLandmarks(path: smolLM2Path)
        let file = landmarks.file
        let first = try #require(file.tensors.first { $0.byteCount > 1 })

        let error = try #require(try truncationError(file.dataOffset + 1))
        #expect(error.description.contains("data of tensor '\(first.name)'"))
        #expect(error.description.contains("needs \(first.byteCount) bytes"))
    }

    @Test func truncatedLastByteNamesLastTensor() throws {
        let file = try GGUFFile(path: smolLM2Path)
        let last = try #require(file.tensors.max { $0.offset + $0.byteCount < $1.offset + $1.byteCount })
        #expect(file.dataOffset + last.offset + last.byteCount == file.fileSize)

        let error = try #require(try truncationError(file.fileSize - 1))
        #expect(error.description.contains("data of tensor '\(last.name)'"))
        #expect(error.description.contains("has \(file.fileSize - 1) bytes"))
    }
}
