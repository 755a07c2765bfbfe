/// Turns generated token ids into text as they arrive, one token at a time.
///
/// A byte-level token can end in the middle of a UTF-8 sequence (🦙 is often split over three
/// tokens), so `append` holds back a trailing incomplete sequence until the tokens that complete
/// it arrive. Bytes that can never become valid UTF-8 are emitted at once as U+FFFD. The output
/// is whole Unicode scalars, but a grapheme cluster (a letter with a combining mark, an emoji
/// with modifiers) can still span two chunks. The concatenated output of `append` and `finish`
/// equals `tokenizer.decode` of all ids.
public struct StreamingDetokenizer: Sendable {
    public let tokenizer: BPETokenizer
    /// Bytes not yet returned: at most one incomplete UTF-8 sequence (up to 3 bytes).
    private var pending: [UInt8] = []

    public init(tokenizer: BPETokenizer) {
        self.tokenizer = tokenizer
    }

    /// Adds token `id` and returns the text that is now complete, possibly empty.
    /// Complexity: O(length of the token's piece).
    public mutating func append(_ id: Int32) -> String {
        tokenizer.appendPiece(id, to: &pending)
        let readyCount = pending.count - Self.incompleteTailLength(pending)
        guard readyCount > 0 else { return "" }
        let text = String(decoding: pending[..<readyCount], as: UTF8.self)
        pending.removeFirst(readyCount)
        return text
    }

    /// Returns the held-back bytes with U+FFFD in place of the incomplete sequence, and empties
    /// the buffer, so a second call returns "".
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Returns the length of the trailing bytes that are a proper prefix of a well-formed
    /// UTF-8 sequence, or 0 when the bytes end with a complete or an invalid sequence.
    static func incompleteTailLength(_ bytes: [UInt8]) -> Int {
        var start = bytes.count - 1
        while start >= 0 && bytes.count - start <= 3 && bytes[start] & 0xC0 == 0x80 {
            start -= 1
        }
        guard start >= 0 else { return 0 }

        let lead = bytes[start]
        let expectedLength: Int
        switch lead {
        case 0xC2...0xDF: expectedLength = 2
        case 0xE0...0xEF: expectedLength = 3
        case 0xF0...0xF4: expectedLength = 4
        default: return 0  // ASCII or a byte that never starts a sequence
        }
        let tailLength = bytes.count - start
        guard tailLength < expectedLength else { return 0 }

        // The second byte's range is narrower after these leads (no overlong forms, no
        // surrogates, nothing above U+10FFFF).
        if tailLength >= 2 {
            let second = bytes[start + 1]
            switch lead {
            case 0xE0: if !(0xA0...0xBF).contains(second) { return 0 }
            case 0xED: if !(0x80...0x9F).contains(second) { return 0 }
            case 0xF0: if !(0x90...0xBF).contains(second) { return 0 }
            case 0xF4: if !(0x80...0x8F).contains(second) { return 0 }
            default: break
            }
        }
        return tailLength
    }
}
