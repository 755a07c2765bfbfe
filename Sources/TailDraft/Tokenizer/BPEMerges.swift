/// The merge rules of a byte-level BPE vocabulary and the merge loop that applies them.
///
/// Symbols are identified by integer ids: a symbol whose mapped text is a vocabulary token
/// uses that token's id, and any other text that a merge rule names gets an extra id at or
/// above the vocabulary size. Each rule maps a pair of symbol ids to its rank (its index in
/// `tokenizer.ggml.merges`) and the id of the merged symbol.
struct BPEMergeTable: Sendable {
    /// Rules keyed by `left << 32 | right` (the ids' bit patterns), with values
    /// `rank << 32 | merged`.
    private let rules: [UInt64: UInt64]

    /// Parses merge rules of the form `"left right"`, in rank order.
    ///
    /// The text splits at the first space after its first byte, as in llama.cpp, and a rule
    /// without such a space can never apply, so it is skipped. When a pair occurs twice, the
    /// first (lowest) rank wins. `symbolId` returns the id for a mapped text, creating an
    /// extra id when the text is not a token. Complexity: O(total length of `merges`).
    init(merges: [String], symbolId: (String) -> Int32) {
        var rules: [UInt64: UInt64] = [:]
        rules.reserveCapacity(merges.count)
        for (rank, rule) in merges.enumerated() {
            let utf8 = rule.utf8
            guard !utf8.isEmpty, let space = utf8.dropFirst().firstIndex(of: UInt8(ascii: " ")) else { continue }
            // Slicing the UTF-8 view keeps a space followed by a combining mark apart, which
            // slicing by Character would not.
            let left = String(Substring(utf8[..<space]))
            let right = String(Substring(utf8[utf8.index(after: space)...]))
            let key = Self.key(symbolId(left), symbolId(right))
            let merged = symbolId(left + right)
            if rules[key] == nil {
                rules[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
            }
        }
        self.rules = rules
    }

    var count: Int { rules.count }

    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Returns the rank and merged symbol of the rule for `left` followed by `right`, or nil.
    func rule(_ left: Int32, _ right: Int32) -> (rank: UInt32, merged: Int32)? {
        guard let value = rules[Self.key(left, right)] else { return nil }
        return (UInt32(value >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: value)))
    }

    /// Merges the symbols of one word in place until no rule applies.
    ///
    /// Each step merges the adjacent pair with the lowest rank, the leftmost one on a tie,
    /// which gives the same result as llama.cpp's priority queue. Complexity: O(n log n)
    /// dictionary lookups and heap operations for n symbols.
    func apply(to symbols: inout [Int32], scratch: inout MergeScratch) {
        let count = symbols.count
        guard count > 1 else { return }
        scratch.reset(count: count)

        for index in 0..<(count - 1) {
            if let found = rule(symbols[index], symbols[index + 1]) {
                scratch.push(rank: found.rank, left: index)
            }
        }

        while let (rank, left) = scratch.popMinimum() {
            guard symbols[left] != MergeScratch.removed else { continue }
            let right = Int(scratch.next[left])
            guard right >= 0, let found = rule(symbols[left], symbols[right]), found.rank == rank else {
                continue  // an entry made stale by an earlier merge
            }

            symbols[left] = found.merged
            symbols[right] = MergeScratch.removed
            let after = scratch.next[right]
            scratch.next[left] = after
            if after >= 0 { scratch.previous[Int(after)] = Int32(left) }

            let before = Int(scratch.previous[left])
            if before >= 0, let pair = rule(symbols[before], symbols[left]) {
                scratch.push(rank: pair.rank, left: before)
            }
            if after >= 0, let pair = rule(symbols[left], symbols[Int(after)]) {
                scratch.push(rank: pair.rank, left: left)
            }
        }
        symbols.removeAll { $0 == MergeScratch.removed }
    }
}

/// Working storage for `BPEMergeTable.apply`, reused across words to avoid allocations.
struct MergeScratch {
    /// The id written over a symbol that merged into its left neighbour.
    static let removed = Int32.min

    fileprivate var next: [Int32] = []
    fileprivate var previous: [Int32] = []
    /// A binary min-heap of `rank << 32 | left index`.
    private var heap: [UInt64] = []

    init() {}

    fileprivate mutating func reset(count: Int) {
        next.removeAll(keepingCapacity: true)
        previous.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        for index in 0..<count {
            next.append(index + 1 < count ? Int32(index + 1) : -1)
            previous.append(Int32(index - 1))
        }
    }

    fileprivate mutating func push(rank: UInt32, left: Int) {
        heap.append(UInt64(rank) << 32 | UInt64(left))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child] < heap[parent] else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    fileprivate mutating func popMinimum() -> (rank: UInt32, left: Int)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let leftChild = 2 * parent + 1
                guard leftChild < heap.count else { break }
                var smallest = leftChild
                if leftChild + 1 < heap.count && heap[leftChild + 1] < heap[leftChild] {
                    smallest = leftChild + 1
                }
                guard heap[smallest] < heap[parent] else { break }
                heap.swapAt(smallest, parent)
                parent = smallest
            }
        }
        return (UInt32(top >> 32), Int(top & 0xFFFF_FFFF))
    }
}
