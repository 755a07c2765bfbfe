/// Builds a GGUF file (version 3) in memory: metadata key/value pairs and tensors.
///
/// The file is laid out as GGUF defines it, with every integer and float little-endian.
/// The header comes first: magic "GGUF", u32 version, u64 tensor count and u64 metadata
/// entry count. The metadata entries follow (string key, u32 value type, value), then the
/// tensor infos (string name, u32 dimension count, u64 dimensions in ggml order, u32 GGML
/// type, u64 data offset). Zero padding up to the alignment follows, and then the tensor data, each
/// tensor's at a multiple of the alignment from the start of the data section. Strings are
/// a u64 byte length followed by UTF-8 bytes. `GGUFFile` reads what this writes.
///
/// Writing the bytes to disk is the caller's job, which can do it atomically. Cost: one copy
/// of every tensor's data into the returned array, O(file size) time and memory.
public struct GGUFWriter {
    /// A metadata entry as the file stores it: key, value type code and encoded value.
    struct MetadataRecord {
        var key: String
        var typeCode: UInt32
        var payload: [UInt8]

        init(key: String, typeCode: UInt32, payload: [UInt8]) {
            self.key = key
            self.typeCode = typeCode
            self.payload = payload
        }

        init(key: String, value: GGUFValue) {
            var encoder = GGUFEncoder()
            encoder.append(value)
            self.init(key: key, typeCode: value.typeCode, payload: encoder.bytes)
        }
    }

    /// A tensor info with the raw fields the file stores, and the source of its data.
    struct TensorRecord {
        var name: String
        /// Dimensions in ggml order: `shape[0]` is the contiguous (row) length.
        var shape: [UInt64]
        var typeCode: UInt32
        var byteCount: Int
        /// Writes the tensor's `byteCount` bytes into the buffer it is given.
        var fill: (UnsafeMutableRawBufferPointer) -> Void
        /// The offset written to the tensor info; nil writes the offset the data is placed at.
        var declaredOffset: UInt64? = nil
    }

    /// The offsets of the file's parts in bytes, as `encodeWithLayout()` placed them.
    struct Layout {
        /// Offset just past the last tensor info.
        var headerEnd: Int
        /// Offset of the data section: `headerEnd` rounded up to the alignment.
        var dataOffset: Int
        /// Each tensor's offset from `dataOffset`, in the order of `tensors`.
        var tensorOffsets: [Int]
    }

    /// "GGUF" read as a little-endian u32.
    public static let magic: UInt32 = 0x4655_4747
    /// The alignment GGUF uses when a file has no `general.alignment` key.
    public static let defaultAlignment = 32

    /// Alignment of the data section and of each tensor's data, in bytes.
    public let alignment: Int
    var metadata: [MetadataRecord] = []
    var tensors: [TensorRecord] = []
    // Header fields that tests override to write invalid files.
    var magicNumber = GGUFWriter.magic
    var version: UInt32 = 3
    var declaredTensorCount: UInt64? = nil
    var declaredMetadataCount: UInt64? = nil

    /// Creates an empty file whose tensor data is aligned to `alignment` bytes (a positive
    /// multiple of 8). An alignment other than 32 is recorded as `general.alignment`.
    public init(alignment: Int = GGUFWriter.defaultAlignment) {
        self.init(layoutAlignment: alignment)
        if alignment != Self.defaultAlignment {
            add("general.alignment", .uint32(UInt32(alignment)))
        }
    }

    /// Creates an empty file laid out with `layoutAlignment` that records no alignment key,
    /// for callers that write the key themselves (or, in tests, a different one).
    init(layoutAlignment: Int) {
        precondition(layoutAlignment > 0 && layoutAlignment % 8 == 0 && layoutAlignment <= Int(UInt32.max),
                     "GGUF alignment must be a positive multiple of 8, got \(layoutAlignment)")
        alignment = layoutAlignment
    }

    /// Adds a metadata entry. Entries are written in the order they are added.
    /// - Precondition: no entry with `key` was added before. `general.alignment` comes from
    ///   `init(alignment:)`.
    public mutating func add(_ key: String, _ value: GGUFValue) {
        precondition(!metadata.contains { $0.key == key }, "metadata key '\(key)' was already added")
        precondition(key != "general.alignment" || value == .uint32(UInt32(alignment)),
                     "general.alignment is set by init(alignment:), got \(value.summary)")
        metadata.append(MetadataRecord(key: key, value: value))
    }

    /// Adds a tensor whose data `fill` writes when the file is encoded, so large data is
    /// copied once, straight into the file's bytes. `fill` gets exactly the tensor's size in
    /// bytes, which `shape` (ggml order, `shape[0]` contiguous) and `type` determine.
    /// - Precondition: the name is new, every dimension is positive, `shape[0]` is a multiple
    ///   of the type's block size, and the type has a known block size.
    public mutating func addTensor(_ name: String, shape: [Int], type: GGMLType,
                                   fill: @escaping (UnsafeMutableRawBufferPointer) -> Void) {
        precondition(!tensors.contains { $0.name == name }, "tensor '\(name)' was already added")
        tensors.append(TensorRecord(name: name, shape: shape.map(UInt64.init), typeCode: type.rawValue,
                                    byteCount: Self.byteCount(name, shape: shape, type: type), fill: fill))
    }

    /// Adds a tensor with its data already encoded as `type`.
    /// - Precondition: as for `addTensor(_:shape:type:fill:)`, and `data` has the tensor's size.
    public mutating func addTensor(_ name: String, shape: [Int], type: GGMLType, data: [UInt8]) {
        let expected = Self.byteCount(name, shape: shape, type: type)
        precondition(data.count == expected, "tensor '\(name)' of shape \(shape) needs \(expected) bytes of \(type.name), got \(data.count)")
        addTensor(name, shape: shape, type: type) { $0.copyBytes(from: data) }
    }

    /// Returns the size in bytes of a tensor of `shape` and `type`, checking both.
    private static func byteCount(_ name: String, shape: [Int], type: GGMLType) -> Int {
        precondition((1...4).contains(shape.count) && shape.allSatisfy { $0 > 0 },
                     "tensor '\(name)' needs 1 to 4 positive dimensions, got \(shape)")
        guard let blockBytes = type.blockBytes else { preconditionFailure("tensor type \(type.name) has no known block size") }
        precondition(shape[0] % type.blockSize == 0,
                     "tensor '\(name)': row length \(shape[0]) is not a multiple of the \(type.name) block size \(type.blockSize)")
        return shape.reduce(1, *) / type.blockSize * blockBytes
    }

    /// Adds an F32 tensor holding `values`.
    public mutating func addTensor(_ name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "tensor '\(name)' of shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        addTensor(name, shape: shape, type: .f32) { destination in
            for (index, value) in values.enumerated() {
                destination.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
    }

    /// Adds an I32 tensor holding `values`.
    public mutating func addTensor(_ name: String, shape: [Int], values: [Int32]) {
        precondition(shape.reduce(1, *) == values.count, "tensor '\(name)' of shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        addTensor(name, shape: shape, type: .i32) { destination in
            for (index, value) in values.enumerated() {
                destination.storeBytes(of: value.littleEndian, toByteOffset: index * 4, as: Int32.self)
            }
        }
    }

    /// Returns the whole file.
    public func encode() -> [UInt8] {
        encodeWithLayout().bytes
    }

    /// Returns the whole file and where its parts are.
    func encodeWithLayout() -> (bytes: [UInt8], layout: Layout) {
        // Each tensor follows the previous one, rounded up to the alignment.
        var offsets: [Int] = []
        var dataSize = 0
        for tensor in tensors {
            offsets.append(dataSize)
            dataSize = roundUp(dataSize + tensor.byteCount)
        }

        var encoder = GGUFEncoder()
        encodeHeader(into: &encoder, offsets: offsets)
        let headerEnd = encoder.count
        let dataOffset = roundUp(headerEnd)
        encoder.reserveCapacity(dataOffset + dataSize)
        encoder.pad(toMultipleOf: alignment)
        for (tensor, offset) in zip(tensors, offsets) {
            encoder.pad(toLength: dataOffset + offset)
            encoder.appendBytes(count: tensor.byteCount, fill: tensor.fill)
        }
        return (encoder.bytes, Layout(headerEnd: headerEnd, dataOffset: dataOffset, tensorOffsets: offsets))
    }

    /// Encodes everything before the padding that precedes the data section.
    private func encodeHeader(into encoder: inout GGUFEncoder, offsets: [Int]) {
        encoder.append(magicNumber)
        encoder.append(version)
        encoder.append(declaredTensorCount ?? UInt64(tensors.count))
        encoder.append(declaredMetadataCount ?? UInt64(metadata.count))
        for entry in metadata {
            encoder.appendString(entry.key)
            encoder.append(entry.typeCode)
            encoder.append(bytes: entry.payload)
        }
        for (tensor, offset) in zip(tensors, offsets) {
            encoder.appendString(tensor.name)
            encoder.append(UInt32(tensor.shape.count))
            for dimension in tensor.shape { encoder.append(dimension) }
            encoder.append(tensor.typeCode)
            encoder.append(tensor.declaredOffset ?? UInt64(offset))
        }
    }

    private func roundUp(_ value: Int) -> Int {
        (value + alignment - 1) / alignment * alignment
    }
}

/// A little-endian byte buffer with GGUF's encodings of integers, strings and values.
struct GGUFEncoder {
    private(set) var bytes: [UInt8] = []

    var count: Int { bytes.count }

    mutating func reserveCapacity(_ capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(bytes other: [UInt8]) {
        bytes.append(contentsOf: other)
    }

    /// Appends a GGUF string: a u64 byte length, then the UTF-8 bytes without a terminator.
    mutating func appendString(_ string: String) {
        let utf8 = Array(string.utf8)
        append(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Appends `value` as a metadata entry stores it after its type code.
    /// - Precondition: every element of an array has the array's element type.
    mutating func append(_ value: GGUFValue) {
        switch value {
        case let .uint8(v): append(v)
        case let .int8(v): append(v)
        case let .uint16(v): append(v)
        case let .int16(v): append(v)
        case let .uint32(v): append(v)
        case let .int32(v): append(v)
        case let .float32(v): append(v.bitPattern)
        case let .bool(v): append(UInt8(v ? 1 : 0))
        case let .string(v): appendString(v)
        case let .array(elementType, items):
            append(elementType)
            append(UInt64(items.count))
            for item in items {
                precondition(item.typeCode == elementType, "array element \(item.summary) does not have type \(elementType)")
                append(item)
            }
        case let .uint64(v): append(v)
        case let .int64(v): append(v)
        case let .float64(v): append(v.bitPattern)
        }
    }

    /// Appends zero bytes until the length is a multiple of `alignment`.
    mutating func pad(toMultipleOf alignment: Int) {
        pad(toLength: (bytes.count + alignment - 1) / alignment * alignment)
    }

    /// Appends zero bytes until the length is `length`.
    mutating func pad(toLength length: Int) {
        if length > bytes.count { bytes.append(contentsOf: repeatElement(0, count: length - bytes.count)) }
    }

    /// Appends `count` bytes that `fill` writes; it gets exactly those bytes, zeroed.
    mutating func appendBytes(count: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: count))
        bytes.withUnsafeMutableBytes { fill(UnsafeMutableRawBufferPointer(rebasing: $0[start..<start + count])) }
    }
}

extension GGUFValue {
    /// The GGUF value type code of this value.
    public var typeCode: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }
}
