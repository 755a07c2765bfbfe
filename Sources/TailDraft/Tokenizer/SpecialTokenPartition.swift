/// A piece of input text after special tokens are cut out.
enum TextFragment: Equatable {
    /// Bytes still to be pre-tokenized, as a range of the input's UTF-8.
    case text(Range<Int>)
    /// A special token matched in the input.
    case token(Int32)
}

extension BPETokenizer {
    /// Cuts special-token texts out of `bytes`, as llama.cpp's `tokenizer_st_partition` does.
    ///
    /// Special tokens are tried longest first. Each one splits every remaining text fragment at
    /// each of its non-overlapping occurrences, left to right. Control and unknown tokens take
    /// part only when `parseSpecial` is true, user-defined tokens always.
    /// NOTE: llama.cpp's per-token `lstrip`/`rstrip` attributes, which it sets only for a few
    /// named models (Phi-3, Jina v2, ModernBERT), are not applied.
    /// Complexity: O(n) per special token for n bytes.
    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [TextFragment] {
        guard !bytes.isEmpty else { return [] }
        var fragments: [TextFragment] = [.text(0..<bytes.count)]
        var split: [TextFragment] = []

        for special in specialTokens where tokenTypes[Int(special.id)].isMatchedInText(parseSpecial: parseSpecial) {
            var found = false
            split.removeAll(keepingCapacity: true)
            for fragment in fragments {
                guard case let .text(range) = fragment else {
                    split.append(fragment)
                    continue
                }
                var start = range.lowerBound
                while let match = Self.firstOccurrence(of: special.bytes, in: bytes, from: start, to: range.upperBound) {
                    found = true
                    if match > start { split.append(.text(start..<match)) }
                    split.append(.token(special.id))
                    start = match + special.bytes.count
                }
                if start < range.upperBound { split.append(.text(start..<range.upperBound)) }
            }
            if found { swap(&fragments, &split) }
        }
        return fragments
    }

    /// Finds the start of the first occurrence of `needle` in `haystack[from..<to]`.
    private static func firstOccurrence(of needle: [UInt8], in haystack: [UInt8], from: Int, to: Int) -> Int? {
        guard let first = needle.first, to - from >= needle.count else { return nil }
        let lastStart = to - needle.count
        var start = from
        while start <= lastStart {
            if haystack[start] == first {
                var length = 1
                while length < needle.count && haystack[start + length] == needle[length] { length += 1 }
                if length == needle.count { return start }
            }
            start += 1
        }
        return nil
    }
}
