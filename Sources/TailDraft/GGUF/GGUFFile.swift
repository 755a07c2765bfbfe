#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tensor described by a GGUF file, with its data located inside the memory-mapped file.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// Dimensions in ggml order: `shape[0]` is the contiguous (row) length.
    public let shape: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the data section, in bytes.
    public let offset: Int
    /// Size of the data in bytes.
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A GGUF file (versions 2 and 3), memory-mapped read-only and fully validated on open.
///
/// Opening checks every length, count, offset and size against the file size with checked
/// arithmetic, so a truncated or corrupt file throws a `GGUFError` instead of reading past the
/// end. Tensor data is not copied: `tensorData(_:)` returns pointers into the mapping, which
/// lives as long as this object. Opening costs O(metadata size); the data is paged in lazily.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order, for display.
    public let metadataKeys: [String]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Offset of the tensor data section from the start of the file, in bytes.
    public let dataOffset: Int
    public let fileSize: Int

    private let base: UnsafeRawPointer?
    private let tensorIndex: [String: Int]

    /// Opens and validates the GGUF file at `path`.
    ///
    /// - Throws: `GGUFError` naming the field, the value found and the value expected.
    public convenience init(path: String) throws {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 {
            throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw GGUFError.cannotOpen(path: path, reason: "it is a directory")
        }
        let size = Int(info.st_size)
        var mapping: UnsafeRawPointer? = nil
        if size > 0 {
            let raw = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            if raw == MAP_FAILED || raw == nil {
                throw GGUFError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
            }
            mapping = UnsafeRawPointer(raw!)
        }
        do {
            try self.init(path: path, base: mapping, size: size)
        } catch {
            if let mapping { munmap(UnsafeMutableRawPointer(mutating: mapping), size) }
            throw error
        }
    }

    private init(path: String, base: UnsafeRawPointer?, size: Int) throws {
        self.path = path
        self.base = base
        self.fileSize = size
        var reader = GGUFReader(base: base, size: size)

        let magic = try reader.readUInt32(what: "magic number")
        guard magic == 0x4655_4747 else { throw GGUFError.badMagic(found: magic) }
        let version = try reader.readUInt32(what: "format version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        self.version = version
        // The header counts are checked where their sections start, so a truncated file
        // reports the first field it lacks rather than an implausible count.
        let declaredTensorCount = try reader.readUInt64(what: "tensor count")
        let kvCount = try reader.readUInt64(what: "metadata entry count")

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(Int(min(kvCount, UInt64(reader.remaining / 12))))
        var entry: UInt64 = 0
        while entry < kvCount {
            defer { entry += 1 }
            let key = try reader.readString(what: "key of metadata entry \(entry)")
            let typeCode = try reader.readUInt32(what: "value type of '\(key)'")
            let value = try reader.readValue(typeCode: typeCode, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw GGUFError.duplicateName(kind: "metadata key", name: key)
            }
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard case let .uint32(a) = value, a > 0, a % 8 == 0 else {
                throw GGUFError.badAlignment(value: value.summary)
            }
            alignment = Int(a)
        }
        self.alignment = alignment

        let tensorCount = try reader.checkCount(declaredTensorCount, what: "tensor count", minimumBytesEach: 24)
        var infos: [(name: String, shape: [Int], typeCode: UInt32, offset: UInt64)] = []
        infos.reserveCapacity(tensorCount)
        for index in 0..<tensorCount {
            let name = try reader.readString(what: "name of tensor \(index)")
            let dimCount = try reader.readUInt32(what: "dimension count of tensor '\(name)'")
            guard (1...4).contains(dimCount) else {
                throw GGUFError.badTensor(name: name, problem: "dimension count is \(dimCount), expected 1...4")
            }
            var shape: [Int] = []
            for axis in 0..<Int(dimCount) {
                let dim = try reader.readUInt64(what: "dimension \(axis) of tensor '\(name)'")
                guard dim > 0, dim <= UInt64(1) << 40 else {
                    throw GGUFError.badTensor(name: name, problem: "dimension \(axis) is \(dim), expected 1...2^40")
                }
                shape.append(Int(dim))
            }
            let typeCode = try reader.readUInt32(what: "type of tensor '\(name)'")
            let offset = try reader.readUInt64(what: "data offset of tensor '\(name)'")
            infos.append((name, shape, typeCode, offset))
        }

        let headerEnd = reader.offset
        let (padded, overflow) = headerEnd.addingReportingOverflow(alignment - 1)
        guard !overflow else { throw GGUFError.badAlignment(value: String(alignment)) }
        let dataOffset = padded / alignment * alignment
        self.dataOffset = dataOffset
        if tensorCount > 0 && dataOffset > size {
            throw GGUFError.truncated(what: "tensor data section", offset: dataOffset, needed: 1, fileSize: size)
        }
        let dataSize = max(0, size - dataOffset)

        var tensors: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for info in infos {
            let tensor = try Self.validateTensor(info, alignment: alignment, dataSize: dataSize, dataOffset: dataOffset, fileSize: size)
            guard index.updateValue(tensors.count, forKey: tensor.name) == nil else {
                throw GGUFError.duplicateName(kind: "tensor", name: tensor.name)
            }
            tensors.append(tensor)
        }
        self.tensors = tensors
        self.tensorIndex = index
    }

    private static func validateTensor(
        _ info: (name: String, shape: [Int], typeCode: UInt32, offset: UInt64),
        alignment: Int, dataSize: Int, dataOffset: Int, fileSize: Int
    ) throws -> GGUFTensorInfo {
        guard let type = GGMLType(rawValue: info.typeCode) else {
            throw GGUFError.unsupportedTensorType(name: info.name, typeCode: info.typeCode, typeName: "unknown")
        }
        guard let blockBytes = type.blockBytes else {
            throw GGUFError.unsupportedTensorType(name: info.name, typeCode: info.typeCode, typeName: type.name)
        }
        guard info.shape[0] % type.blockSize == 0 else {
            throw GGUFError.badTensor(name: info.name, problem: "row length \(info.shape[0]) is not a multiple of the \(type.name) block size \(type.blockSize) (shape \(info.shape))")
        }
        var elements = 1
        for dim in info.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= Int(1) << 48 else {
                throw GGUFError.badTensor(name: info.name, problem: "shape \(info.shape) has too many elements")
            }
            elements = product
        }
        let byteCount = elements / type.blockSize * blockBytes
        guard info.offset % UInt64(alignment) == 0 else {
            throw GGUFError.badTensor(name: info.name, problem: "data offset \(info.offset) is not a multiple of the alignment \(alignment)")
        }
        guard info.offset <= UInt64(dataSize), UInt64(byteCount) <= UInt64(dataSize) - info.offset else {
            throw GGUFError.truncated(what: "data of tensor '\(info.name)'", offset: dataOffset &+ Int(truncatingIfNeeded: info.offset), needed: byteCount, fileSize: fileSize)
        }
        return GGUFTensorInfo(name: info.name, shape: info.shape, type: type, offset: Int(info.offset), byteCount: byteCount)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) }
    }

    /// Returns the tensor named `name`, or nil.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// Returns a pointer to the first byte of `tensor`'s data, valid while this file is alive.
    public func dataPointer(_ tensor: GGUFTensorInfo) -> UnsafeRawPointer {
        base!.advanced(by: dataOffset + tensor.offset)
    }

    /// Returns the raw bytes of `tensor`'s data, valid while this file is alive.
    public func tensorData(_ tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: dataPointer(tensor), count: tensor.byteCount)
    }

    // MARK: - Typed metadata access

    /// Returns the integer at `key`, or throws `missingKey` when it is absent or not an integer.
    public func int(_ key: String) throws -> Int {
        guard let value = metadata[key]?.intValue else { throw GGUFError.missingKey(key: key, expected: "an integer") }
        return value
    }

    /// Returns the number at `key`, or throws `missingKey` when it is absent or not numeric.
    public func double(_ key: String) throws -> Double {
        guard let value = metadata[key]?.doubleValue else { throw GGUFError.missingKey(key: key, expected: "a number") }
        return value
    }

    /// Returns the string at `key`, or throws `missingKey` when it is absent or not a string.
    public func string(_ key: String) throws -> String {
        guard let value = metadata[key]?.stringValue else { throw GGUFError.missingKey(key: key, expected: "a string") }
        return value
    }

    /// Returns the array of strings at `key`, or throws `missingKey` when it is absent or of another type.
    public func stringArray(_ key: String) throws -> [String] {
        guard let items = metadata[key]?.arrayValue else { throw GGUFError.missingKey(key: key, expected: "an array of strings") }
        var result: [String] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard let s = item.stringValue else { throw GGUFError.missingKey(key: key, expected: "an array of strings") }
            result.append(s)
        }
        return result
    }

    /// Returns the array of integers at `key`, or throws `missingKey` when it is absent or of another type.
    public func intArray(_ key: String) throws -> [Int] {
        guard let items = metadata[key]?.arrayValue else { throw GGUFError.missingKey(key: key, expected: "an array of integers") }
        var result: [Int] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard let v = item.intValue else { throw GGUFError.missingKey(key: key, expected: "an array of integers") }
            result.append(v)
        }
        return result
    }
}
