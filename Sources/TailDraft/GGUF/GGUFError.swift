/// An error found while reading a GGUF file.
///
/// Every case carries the offending key or tensor, the value found and the value expected,
/// so `description` can tell the user what is wrong and what to do about it.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, measured or memory-mapped.
    case cannotOpen(path: String, reason: String)
    /// The file ends before a field that the format requires.
    case truncated(what: String, offset: Int, needed: Int, fileSize: Int)
    /// The first four bytes are not `GGUF`.
    case badMagic(found: UInt32)
    /// The format version is not 2 or 3.
    case unsupportedVersion(UInt32)
    /// A metadata value has a type code the format does not define.
    case unknownValueType(key: String, code: UInt32)
    /// A count is larger than the rest of the file could hold, because the file is truncated
    /// or the count is corrupt.
    case implausibleCount(what: String, value: UInt64, limit: UInt64)
    /// `general.alignment` is zero, not a multiple of 8, or not an unsigned integer.
    case badAlignment(value: String)
    /// Two metadata entries or two tensors share a name.
    case duplicateName(kind: String, name: String)
    /// A tensor's shape, offset or size is inconsistent with its type or the file.
    case badTensor(name: String, problem: String)
    /// A tensor uses a GGML type this engine does not implement.
    case unsupportedTensorType(name: String, typeCode: UInt32, typeName: String)
    /// A metadata key the model needs is absent or has the wrong type.
    case missingKey(key: String, expected: String)
    /// A metadata value is present but invalid for the model.
    case invalidValue(key: String, value: String, expected: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open GGUF file '\(path)': \(reason); pass the path of a readable .gguf file"
        case let .truncated(what, offset, needed, fileSize):
            return "GGUF file is truncated: \(what) needs \(needed) bytes at offset \(offset), but the file has \(fileSize) bytes; the download or copy is incomplete, fetch the file again"
        case let .badMagic(found):
            let hex = "0x" + String(found, radix: 16)
            return "not a GGUF file: the magic number is \(hex), expected 0x46554747 ('GGUF'); pass a .gguf model file"
        case let .unsupportedVersion(version):
            return "unsupported GGUF version \(version): this engine reads versions 2 and 3; convert the model with a current llama.cpp"
        case let .unknownValueType(key, code):
            return "metadata key '\(key)' has unknown value type \(code), expected 0...12; the file is corrupt or from a newer format"
        case let .implausibleCount(what, value, limit):
            return "\(what) is \(value), which exceeds the limit of \(limit) that the rest of the file allows; the file is truncated or corrupt, fetch it again"
        case let .badAlignment(value):
            return "general.alignment is \(value), expected a non-zero multiple of 8; the file is corrupt"
        case let .duplicateName(kind, name):
            return "duplicate \(kind) '\(name)'; the file is corrupt"
        case let .badTensor(name, problem):
            return "tensor '\(name)': \(problem); the file is corrupt or truncated"
        case let .unsupportedTensorType(name, code, typeName):
            let supported = GGMLType.allCases.filter(\.isSupported).map(\.name).joined(separator: ", ")
            return "tensor '\(name)' has unsupported tensor type \(typeName) (code \(code)); supported types are \(supported): use a file quantized to one of them"
        case let .missingKey(key, expected):
            return "metadata key '\(key)' is missing or not \(expected); the file is not a complete model of a supported architecture"
        case let .invalidValue(key, value, expected):
            return "metadata key '\(key)' has value \(value), expected \(expected)"
        }
    }
}
