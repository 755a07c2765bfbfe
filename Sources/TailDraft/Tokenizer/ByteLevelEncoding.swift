/// GPT-2's reversible mapping between bytes and printable Unicode scalars.
///
/// Byte-level BPE vocabularies store every token as text in which each byte of the original
/// UTF-8 is replaced by one scalar. The printable Latin-1 bytes `!`...`~`, `¡`...`¬` and
/// `®`...`ÿ` map to themselves. The remaining 68 bytes (controls, space, DEL, NBSP and soft
/// hyphen) map in byte order to U+0100, U+0101 and so on, so space (0x20) becomes `Ġ` (U+0120)
/// and newline (0x0A) becomes `Ċ` (U+010A).
enum ByteLevelEncoding {
    /// The scalar value standing for each byte, indexed by byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var nextSubstitute: UInt32 = 256
        for byte in 0..<256 {
            if isPrintedAsItself(UInt8(byte)) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = nextSubstitute
                nextSubstitute += 1
            }
        }
        return table
    }()

    /// The byte each mapped scalar stands for, keyed by scalar value (all values are below 324).
    static let byteForScalar: [UInt32: UInt8] = {
        var table: [UInt32: UInt8] = [:]
        for byte in 0..<256 {
            table[scalarForByte[byte]] = UInt8(byte)
        }
        return table
    }()

    /// The one-character token text standing for each byte, indexed by byte.
    static let textForByte: [String] = scalarForByte.map { String(Character(Unicode.Scalar($0)!)) }

    private static func isPrintedAsItself(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// Encodes raw bytes as mapped token text, for example `[0x20, 0x61]` as `Ġa`.
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            scalars.append(Unicode.Scalar(scalarForByte[Int(byte)])!)
        }
        return String(scalars)
    }

    /// Decodes mapped token text back to raw bytes.
    ///
    /// A scalar outside the mapping is copied as its own UTF-8 bytes. llama.cpp writes an
    /// `[UNK_BYTE_0x…]` marker instead, but no token of a well-formed byte-level vocabulary
    /// contains such a scalar.
    static func decode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let byte = byteForScalar[scalar.value] {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: String(scalar).utf8)
            }
        }
        return bytes
    }
}
