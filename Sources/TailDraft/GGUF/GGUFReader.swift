/// A bounds-checked little-endian cursor over the bytes of a GGUF file.
///
/// Every read checks the remaining length first and throws `GGUFError.truncated` naming the
/// field, so no read goes past the end of the mapping.
struct GGUFReader {
    let base: UnsafeRawPointer?
    let size: Int
    private(set) var offset = 0

    /// Nesting limit for arrays of arrays; real files use one level.
    static let maxArrayDepth = 8

    init(base: UnsafeRawPointer?, size: Int) {
        self.base = base
        self.size = size
    }

    var remaining: Int { size - offset }

    private mutating func take(_ count: Int, what: String) throws -> UnsafeRawPointer {
        guard count <= remaining, let base else {
            throw GGUFError.truncated(what: what, offset: offset, needed: count, fileSize: size)
        }
        let pointer = base.advanced(by: offset)
        offset += count
        return pointer
    }

    private mutating func read<T: FixedWidthInteger>(_: T.Type, what: String) throws -> T {
        let pointer = try take(MemoryLayout<T>.size, what: what)
        return T(littleEndian: pointer.loadUnaligned(as: T.self))
    }

    mutating func readUInt32(what: String) throws -> UInt32 { try read(UInt32.self, what: what) }
    mutating func readUInt64(what: String) throws -> UInt64 { try read(UInt64.self, what: what) }

    /// Reads a u64 count and checks that `count * minimumBytesEach` fits in the rest of the file.
    mutating func readCount(what: String, minimumBytesEach: Int) throws -> Int {
        try checkCount(try readUInt64(what: what), what: what, minimumBytesEach: minimumBytesEach)
    }

    /// Checks that `count` items of at least `minimumBytesEach` bytes fit in the rest of the file.
    func checkCount(_ count: UInt64, what: String, minimumBytesEach: Int) throws -> Int {
        let limit = UInt64(remaining / max(1, minimumBytesEach))
        guard count <= limit else { throw GGUFError.implausibleCount(what: what, value: count, limit: limit) }
        return Int(count)
    }

    mutating func readString(what: String) throws -> String {
        let length = try readUInt64(what: "length of \(what)")
        guard length <= UInt64(remaining) else {
            throw GGUFError.truncated(what: what, offset: offset, needed: Int(clamping: length), fileSize: size)
        }
        let pointer = try take(Int(length), what: what)
        let bytes = UnsafeRawBufferPointer(start: pointer, count: Int(length))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Returns the smallest encoded size of one value of a type, which bounds array counts.
    static func minimumSize(ofType code: UInt32) -> Int {
        switch code {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8: return 8
        case 9: return 12
        default: return 8
        }
    }

    mutating func readValue(typeCode: UInt32, key: String, depth: Int) throws -> GGUFValue {
        let what = "value of '\(key)'"
        switch typeCode {
        case 0: return .uint8(try read(UInt8.self, what: what))
        case 1: return .int8(try read(Int8.self, what: what))
        case 2: return .uint16(try read(UInt16.self, what: what))
        case 3: return .int16(try read(Int16.self, what: what))
        case 4: return .uint32(try read(UInt32.self, what: what))
        case 5: return .int32(try read(Int32.self, what: what))
        case 6: return .float32(Float(bitPattern: try read(UInt32.self, what: what)))
        case 7:
            let byte = try read(UInt8.self, what: what)
            guard byte <= 1 else {
                throw GGUFError.invalidValue(key: key, value: String(byte), expected: "a bool stored as 0 or 1")
            }
            return .bool(byte == 1)
        case 8: return .string(try readString(what: what))
        case 9:
            guard depth < Self.maxArrayDepth else {
                throw GGUFError.implausibleCount(what: "array nesting depth of '\(key)'", value: UInt64(depth + 1), limit: UInt64(Self.maxArrayDepth))
            }
            let elementType = try readUInt32(what: "element type of '\(key)'")
            guard elementType <= 12 else { throw GGUFError.unknownValueType(key: key, code: elementType) }
            let count = try readCount(what: "element count of '\(key)'", minimumBytesEach: Self.minimumSize(ofType: elementType))
            var items: [GGUFValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count {
                items.append(try readValue(typeCode: elementType, key: key, depth: depth + 1))
            }
            return .array(elementType: elementType, items)
        case 10: return .uint64(try read(UInt64.self, what: what))
        case 11: return .int64(try read(Int64.self, what: what))
        case 12: return .float64(Double(bitPattern: try read(UInt64.self, what: what)))
        default: throw GGUFError.unknownValueType(key: key, code: typeCode)
        }
    }
}
