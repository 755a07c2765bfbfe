import Foundation
import Testing
@testable import TailDraft

/// The library's GGUF writer: what it writes, `GGUFFile` reads back unchanged.
@Suite struct GGUFWriterTests {
    @Test(arguments: [32, 64])
    func writtenFileReadsBack(alignment: Int) throws {
        var writer = TailDraft.GGUFWriter(alignment: alignment)
        writer.add("general.architecture", .string("test"))
        writer.add("test.count", .uint64(1 << 40))
        writer.add("test.ids", .array(elementType: 5, [.int32(-1), .int32(7)]))
        // Three floats leave the next tensor's start to the alignment padding.
        writer.addTensor("a.weight", shape: [3], values: [1.5, -2, 0.25])
        writer.addTensor("b.ids", shape: [2, 2], values: [Int32(-3), 4, Int32.max, 0])
        writer.addTensor("c.raw", shape: [32], type: .q8_0, data: Quantizer.q8_0((0..<32).map { Float($0) }))

        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("written.gguf")
            try Data(writer.encode()).write(to: url)
            let file = try GGUFFile(path: url.path)
            #expect(file.version == 3)
            #expect(file.alignment == alignment)
            let expectedKeys = (alignment == 32 ? [] : ["general.alignment"]) + ["general.architecture", "test.count", "test.ids"]
            #expect(file.metadataKeys == expectedKeys)
            #expect(file.metadata["test.count"] == .uint64(1 << 40))
            #expect(file.metadata["test.ids"] == .array(elementType: 5, [.int32(-1), .int32(7)]))
            #expect(file.tensors.map(\.name) == ["a.weight", "b.ids", "c.raw"])
            #expect(file.tensors.allSatisfy { $0.offset % alignment == 0 })
            #expect(file.dataOffset % alignment == 0)

            let floats = file.tensorData(try #require(file.tensor(named: "a.weight"))).withMemoryRebound(to: Float.self) { Array($0) }
            #expect(floats == [1.5, -2, 0.25])
            let ids = try #require(file.tensor(named: "b.ids"))
            #expect(ids.type == .i32)
            #expect(ids.shape == [2, 2])
            #expect(file.tensorData(ids).withMemoryRebound(to: Int32.self) { Array($0) } == [-3, 4, Int32.max, 0])
            let raw = try #require(file.tensor(named: "c.raw"))
            #expect(Array(file.tensorData(raw)) == Quantizer.q8_0((0..<32).map { Float($0) }))
        }
    }
}
