import Foundation
@testable import TailDraft

/// The library's little-endian encoder of GGUF fields, under the name the tests use.
typealias ByteWriter = GGUFEncoder

/// A metadata value to write: a well-formed value, or a type code with raw payload bytes for
/// files that must be corrupt.
enum MetadataEntry {
    case value(GGUFValue)
    case raw(typeCode: UInt32, payload: [UInt8])
}

/// A tensor to write. Shape, type code and offset are raw fields so tests can write invalid
/// ones; `data` is copied into the data section as it is.
struct TensorEntry {
    var name: String
    /// Dimensions in ggml order: `shape[0]` is the row length.
    var shape: [UInt64]
    var typeCode: UInt32
    var data: [UInt8]
    /// Offset from the data section start; nil places the tensor after the previous one,
    /// rounded up to the alignment.
    var offset: UInt64? = nil

    init(name: String, shape: [Int], type: GGMLType, data: [UInt8]) {
        self.name = name
        self.shape = shape.map(UInt64.init)
        self.typeCode = type.rawValue
        self.data = data
    }

    init(name: String, shape: [UInt64], typeCode: UInt32, data: [UInt8], offset: UInt64? = nil) {
        self.name = name
        self.shape = shape
        self.typeCode = typeCode
        self.data = data
        self.offset = offset
    }

    /// Makes an F32 tensor holding `values`.
    static func f32(_ name: String, shape: [Int], values: [Float]) -> TensorEntry {
        TensorEntry(name: name, shape: shape, type: .f32, data: Quantizer.f32Bytes(values))
    }
}

/// Where `GGUFWriter.build()` put the parts of the file.
typealias GGUFLayout = TailDraft.GGUFWriter.Layout

/// Builds GGUF files for tests with the library's `TailDraft.GGUFWriter`, which lays them
/// out. Unlike the library's writer it keeps every field editable, so tests can also write
/// invalid files: another magic or version, wrong counts, raw metadata payloads, duplicate
/// keys, and tensor infos whose shape, type or offset disagree with their data.
struct GGUFWriter {
    var magic: UInt32 = TailDraft.GGUFWriter.magic
    var version: UInt32 = 3
    var metadata: [(key: String, entry: MetadataEntry)] = []
    var tensors: [TensorEntry] = []
    /// Alignment used to place the data; nil takes `general.alignment` when it is a u32,
    /// else 32. Set it to lay out a file differently from what its metadata claims.
    var layoutAlignment: Int? = nil
    var tensorCountOverride: UInt64? = nil
    var metadataCountOverride: UInt64? = nil

    init(version: UInt32 = 3) {
        self.version = version
    }

    mutating func add(_ key: String, _ value: GGUFValue) {
        metadata.append((key, .value(value)))
    }

    mutating func addRaw(_ key: String, typeCode: UInt32, payload: [UInt8]) {
        metadata.append((key, .raw(typeCode: typeCode, payload: payload)))
    }

    mutating func add(_ tensor: TensorEntry) {
        tensors.append(tensor)
    }

    var alignment: Int {
        if let layoutAlignment { return layoutAlignment }
        for (key, entry) in metadata where key == "general.alignment" {
            if case let .value(.uint32(value)) = entry, value > 0 { return Int(value) }
        }
        return TailDraft.GGUFWriter.defaultAlignment
    }

    /// Encodes the whole file and returns it with the layout of its parts.
    func build() -> (bytes: [UInt8], layout: GGUFLayout) {
        var file = TailDraft.GGUFWriter(layoutAlignment: alignment)
        file.magicNumber = magic
        file.version = version
        file.declaredTensorCount = tensorCountOverride
        file.declaredMetadataCount = metadataCountOverride
        for (key, entry) in metadata {
            switch entry {
            case let .value(value):
                file.metadata.append(.init(key: key, value: value))
            case let .raw(typeCode, payload):
                file.metadata.append(.init(key: key, typeCode: typeCode, payload: payload))
            }
        }
        // A tensor with an overridden offset still has its bytes at the computed place, so
        // the file reads as "the info points elsewhere", not as "the data is missing".
        for tensor in tensors {
            let data = tensor.data
            file.tensors.append(.init(name: tensor.name, shape: tensor.shape, typeCode: tensor.typeCode,
                                      byteCount: data.count, fill: { $0.copyBytes(from: data) }, declaredOffset: tensor.offset))
        }
        return file.encodeWithLayout()
    }

    /// Writes the file to `url` and returns its layout.
    @discardableResult
    func write(to url: URL) throws -> GGUFLayout {
        let (bytes, layout) = build()
        try Data(bytes).write(to: url)
        return layout
    }
}

func roundUp(_ value: Int, _ multiple: Int) -> Int {
    (value + multiple - 1) / multiple * multiple
}

/// Swift versions of ggml's reference quantizers, producing the block layouts of
/// Kernels/include/td_quant.h. All arithmetic is in Float, as ggml's C code does it.
enum Quantizer {
    static let blockSize = 32

    /// Returns the IEEE half-float bit pattern nearest to `value` (ties to even).
    static func fp16Bits(_ value: Float) -> UInt16 {
        Float16(value).bitPattern
    }

    /// Returns the bfloat16 bit pattern nearest to `value` (ties to even). NaN stays NaN.
    static func bf16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x0040 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }

    static func f32Bytes(_ values: [Float]) -> [UInt8] {
        var writer = ByteWriter()
        for value in values { writer.append(value.bitPattern) }
        return writer.bytes
    }

    static func f16Bytes(_ values: [Float]) -> [UInt8] {
        var writer = ByteWriter()
        for value in values { writer.append(fp16Bits(value)) }
        return writer.bytes
    }

    static func bf16Bytes(_ values: [Float]) -> [UInt8] {
        var writer = ByteWriter()
        for value in values { writer.append(bf16Bits(value)) }
        return writer.bytes
    }

    /// Q8_0: d = max|x| / 127, q = round(x / d) (ties away from zero, as C's roundf).
    static func q8_0(_ values: [Float]) -> [UInt8] {
        precondition(values.count % blockSize == 0, "Q8_0 needs a multiple of 32 values, got \(values.count)")
        var writer = ByteWriter()
        for start in stride(from: 0, to: values.count, by: blockSize) {
            let block = values[start..<start + blockSize]
            let amax = block.reduce(Float(0)) { max($0, abs($1)) }
            let d = amax / 127
            let inverse: Float = d != 0 ? 1 / d : 0
            writer.append(fp16Bits(d))
            for x in block { writer.append(Int8((x * inverse).rounded(.toNearestOrAwayFromZero))) }
        }
        return writer.bytes
    }

    /// Q4_0: d = (the value of largest magnitude, with its sign) / -8,
    /// q = min(15, trunc(x / d + 8.5)); element j in the low nibble of byte j, element
    /// j + 16 in its high nibble.
    static func q4_0(_ values: [Float]) -> [UInt8] {
        precondition(values.count % blockSize == 0, "Q4_0 needs a multiple of 32 values, got \(values.count)")
        var writer = ByteWriter()
        for start in stride(from: 0, to: values.count, by: blockSize) {
            let block = Array(values[start..<start + blockSize])
            var amax: Float = 0
            var signedMax: Float = 0
            for x in block where abs(x) > amax {
                amax = abs(x)
                signedMax = x
            }
            let d = signedMax / -8
            let inverse: Float = d != 0 ? 1 / d : 0
            writer.append(fp16Bits(d))
            func level(_ x: Float) -> UInt8 { UInt8(min(15, Int8(x * inverse + 8.5))) }
            for j in 0..<blockSize / 2 {
                writer.append(level(block[j]) | level(block[j + 16]) << 4)
            }
        }
        return writer.bytes
    }

    /// Q4_1: d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5)); nibble
    /// order as Q4_0.
    static func q4_1(_ values: [Float]) -> [UInt8] {
        precondition(values.count % blockSize == 0, "Q4_1 needs a multiple of 32 values, got \(values.count)")
        var writer = ByteWriter()
        for start in stride(from: 0, to: values.count, by: blockSize) {
            let block = Array(values[start..<start + blockSize])
            let low = block.min()!, high = block.max()!
            let d = (high - low) / 15
            let inverse: Float = d != 0 ? 1 / d : 0
            writer.append(fp16Bits(d))
            writer.append(fp16Bits(low))
            func level(_ x: Float) -> UInt8 { UInt8(min(15, Int8((x - low) * inverse + 0.5))) }
            for j in 0..<blockSize / 2 {
                writer.append(level(block[j]) | level(block[j + 16]) << 4)
            }
        }
        return writer.bytes
    }

    /// Encodes `values` (a multiple of 32 for Q4_0, Q4_1, Q5_0 and Q8_0, of 256 for the
    /// K-quants) as tensor data of `type`.
    static func encode(_ values: [Float], as type: GGMLType) -> [UInt8] {
        switch type {
        case .f32: return f32Bytes(values)
        case .f16: return f16Bytes(values)
        case .bf16: return bf16Bytes(values)
        case .q8_0: return q8_0(values)
        case .q4_0: return q4_0(values)
        case .q4_1: return q4_1(values)
        case .q5_0: return q5_0(values)
        case .q4_K: return q4_K(values)
        case .q5_K: return q5_K(values)
        case .q6_K: return q6_K(values)
        default: preconditionFailure("no encoder for tensor type \(type.name)")
        }
    }
}
