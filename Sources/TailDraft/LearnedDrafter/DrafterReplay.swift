#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Committed positions the trainer has received, kept for replay within a fixed memory
/// bound and chosen so that training favours the long tail.
///
/// Storage: positions live in blocks of `blockPositions` positions, each holding the
/// positions' tokens, hidden states (H floats each) and prefix hashes. Blocks are allocated
/// on first use up to `capacityBlocks` and then reused, so memory never grows with run time
/// (see `bytesPerBlock`).
///
/// Segments: positions come from one or more streams (sequences decoded side by side, such
/// as the responses of a rollout), each with its own id. Records of different streams may
/// interleave, and each stream's contiguous positions form their own segment.
///
/// Windows: `takeFresh` hands out each segment's positions once as training windows, and
/// `recordMisses` stores how many rows of such a window the drafter missed when it was first
/// evaluated. `replayWindow` picks among those windows, weighing misses and long streams
/// (see `replayWindow`), and `close(stream:)` ends a stream.
///
/// Eviction: when every block is in use, the buffer drops the segments worth least among the
/// oldest half (see `evictBlocks`), not simply the oldest.
///
/// Deduplication: a fresh window whose tokens, from its stream's position 0 through its
/// end, equal those of a window kept before (a shared prompt, or a greedy response
/// generated again) is skipped: it is not trained and not replayed.
///
/// Not thread-safe: the trainer thread owns an instance.
final class DrafterReplay {
    /// A window handed out by `takeFresh`: rows `from + 1 ..< to` of a segment.
    struct Window {
        /// Offsets of the window's first position and one past its last, in its segment.
        var from: Int32
        var to: Int32
        /// Rows the drafter missed when it first evaluated the window (0 until recorded).
        var misses: Int32
        /// Deduplication key (`windowKey`), or 0 for a window that is not deduplicated.
        let key: UInt64

        var rows: Int { Int(to - from) - 1 }
    }

    struct Segment {
        /// Increases with creation order, so `segments` is sorted by it.
        let id: Int
        let stream: Int
        var startPosition: Int
        var count = 0
        /// Indices of the blocks holding the positions, `blockPositions` per block in order.
        var blocks: [Int32] = []
        /// Positions before this offset were handed out as fresh windows.
        var freshFrom = 0
        /// Whether the segment stopped growing: its stream ended or started another segment.
        var closed = false
        /// Whether the prefix hashes cover the stream from position 0, which deduplication
        /// needs: hidden states depend on every earlier token.
        let hashesCoverStream: Bool
        /// Prefix hash after the segment's last position.
        var lastHash: UInt64 = DrafterReplay.hashSeed
        var windows: [Window] = []
        /// Sums over `windows`.
        var rows = 0
        var misses = 0

        var endPosition: Int { startPosition + count }
    }

    /// A fresh training window and what identifies it for `recordMisses`.
    struct FreshWindow {
        let sample: DrafterSample
        let segmentID: Int
    }

    /// Positions per block, the unit of allocation and eviction.
    static let blockPositions = 16
    /// Bookkeeping bytes per position, an upper estimate: at most one window record per
    /// position (24 bytes, twice that while its array grows) and one deduplication entry
    /// (about 32 bytes). One window per position is the worst case, a window length of 2;
    /// at the default of 64 it is one window per 63 positions.
    static let bookkeepingBytesPerPosition = 80
    /// Bookkeeping bytes per block, an upper estimate: a segment's header and its arrays'
    /// headers, since every segment holds at least one block.
    static let bookkeepingBytesPerBlock = 512
    /// Share of `replayWindow` picks that ignore misses and length.
    static let uniformShare = 0.25
    /// Weight of a row that the drafter matched, relative to a missed row, in the weighted
    /// picks, so windows without misses keep a small chance there too.
    static let matchedRowWeight = 1.0 / 16
    /// Stream length, in positions, at which `lengthFactor` reaches 2.
    static let lengthScale = 256.0
    static let hashSeed: UInt64 = 0x6A09_E667_F3BC_C908

    /// Bytes one block may take: per position its hidden state (4 * H bytes), token (4),
    /// prefix hash (8) and `bookkeepingBytesPerPosition`, plus `bookkeepingBytesPerBlock`.
    /// For SmolLM2 (H = 576) a position costs 2,396 bytes and a block 38,848.
    static func bytesPerBlock(hiddenSize: Int) -> Int {
        blockPositions * (4 * hiddenSize + 4 + 8 + bookkeepingBytesPerPosition) + bookkeepingBytesPerBlock
    }

    /// Returns how many blocks fit in `megabytes` (10^6 bytes), at least 2.
    static func capacityBlocks(megabytes: Double, hiddenSize: Int) -> Int {
        let bytes = max(0, megabytes) * 1_000_000
        return max(2, Int(bytes / Double(bytesPerBlock(hiddenSize: hiddenSize))))
    }

    let hiddenSize: Int
    /// Most blocks kept; their positions never exceed `capacityPositions`.
    let capacityBlocks: Int
    var capacityPositions: Int { capacityBlocks * Self.blockPositions }
    /// Kept segments, oldest first.
    private(set) var segments: [Segment] = []
    /// Positions kept over all segments.
    private(set) var positions = 0
    /// Rows of fresh windows skipped because a kept window had the same tokens.
    private(set) var duplicateRows = 0
    /// Blocks allocated so far, at most `capacityBlocks`.
    var allocatedBlocks: Int { storage.count }

    private struct Block {
        let tokens: UnsafeMutablePointer<Int32>
        let prefixHashes: UnsafeMutablePointer<UInt64>
        let hidden: UnsafeMutablePointer<Float>
    }

    private var storage: [Block] = []
    private var freeBlocks: [Int32] = []
    /// The growing segment of each stream, as an index into `segments`.
    private var openSegments: [Int: Int] = [:]
    /// Keys of kept windows, each with the number of kept windows that have it.
    private var windowKeys: [UInt64: Int32] = [:]
    private var nextSegmentID = 0

    /// Creates an empty buffer of `capacityBlocks` blocks (at least 2).
    init(hiddenSize: Int, capacityBlocks: Int) {
        self.hiddenSize = hiddenSize
        self.capacityBlocks = max(2, capacityBlocks)
    }

    /// Creates an empty buffer of the blocks that fit in `megabytes` (see `bytesPerBlock`).
    convenience init(hiddenSize: Int, megabytes: Double) {
        self.init(hiddenSize: hiddenSize, capacityBlocks: Self.capacityBlocks(megabytes: megabytes, hiddenSize: hiddenSize))
    }

    deinit {
        for block in storage {
            block.tokens.deallocate()
            block.prefixHashes.deallocate()
            block.hidden.deallocate()
        }
    }

    /// Returns the tokens of `segment`, oldest first.
    func tokens(of segment: Segment) -> [Int32] {
        (0..<segment.count).map { offset in
            let (block, slot) = locate(segment, offset)
            return storage[block].tokens[slot]
        }
    }

    // MARK: - Appending

    /// Appends one position of `stream`. A position that does not follow the last one of the
    /// stream's growing segment closes that segment and starts a new one, because it begins a
    /// new sequence or follows dropped records.
    ///
    /// Complexity: O(H) and a dictionary look-up, plus an eviction pass (O(S log S) for S
    /// segments) about once per `capacityBlocks / 32` blocks when the buffer is full.
    func append(token: Int32, position: Int, hidden: UnsafePointer<Float>, stream: Int = 0) {
        var index = openSegments[stream]
        if let open = index, segments[open].endPosition != position {
            segments[open].closed = true
            openSegments[stream] = nil
            index = nil
        }
        if index.map({ segments[$0].count % Self.blockPositions == 0 }) ?? true {
            let block = takeFreeBlock(sparing: index.map { segments[$0].id })
            // Eviction may have moved the growing segment, or trimmed it.
            index = openSegments[stream]
            if index == nil {
                segments.append(Segment(id: nextSegmentID, stream: stream, startPosition: position, hashesCoverStream: position == 0))
                nextSegmentID += 1
                index = segments.count - 1
                openSegments[stream] = index
            }
            segments[index!].blocks.append(block)
        }

        let open = index!
        let (block, slot) = locate(segments[open], segments[open].count)
        let hash = Self.extendHash(segments[open].lastHash, with: token)
        storage[block].tokens[slot] = token
        storage[block].prefixHashes[slot] = hash
        (storage[block].hidden + slot * hiddenSize).update(from: hidden, count: hiddenSize)
        segments[open].lastHash = hash
        segments[open].count += 1
        positions += 1
    }

    /// Marks the growing segment of `stream` as finished, so its last positions can be taken
    /// even when fewer than a window.
    func close(stream: Int) {
        if let open = openSegments.removeValue(forKey: stream) { segments[open].closed = true }
    }

    /// Returns a free block, allocating one while fewer than `capacityBlocks` exist and
    /// evicting otherwise. The segment `spared` loses only its oldest block, and only when
    /// no other segment holds one.
    private func takeFreeBlock(sparing spared: Int?) -> Int32 {
        if let block = freeBlocks.popLast() { return block }
        if storage.count < capacityBlocks {
            let positions = Self.blockPositions
            storage.append(Block(tokens: .allocate(capacity: positions), prefixHashes: .allocate(capacity: positions),
                                 hidden: .allocate(capacity: positions * hiddenSize)))
            return Int32(storage.count - 1)
        }
        evictBlocks(sparing: spared)
        return freeBlocks.popLast()!
    }

    /// Frees at least one block, and up to `capacityBlocks / 32`, so evictions come in
    /// batches. Candidates are the oldest half of the segments other than `spared`, ranked:
    /// segments with positions not yet handed out as fresh windows last, then by fewest
    /// missed rows per position, then oldest first. Whole segments leave. Without any
    /// candidate, `spared` loses its oldest block.
    private func evictBlocks(sparing spared: Int?) {
        var candidates = segments.indices.prefix(max(1, segments.count / 2)).filter { segments[$0].id != spared }
        if candidates.isEmpty { candidates = segments.indices.filter { segments[$0].id != spared } }
        guard !candidates.isEmpty else {
            if let spared, let index = index(ofSegment: spared) { trimOldestBlock(of: index) }
            return
        }
        let ranked = candidates.sorted { a, b in
            let (x, y) = (segments[a], segments[b])
            let (xUntrained, yUntrained) = (x.freshFrom < x.count, y.freshFrom < y.count)
            if xUntrained != yUntrained { return yUntrained }
            let (xRate, yRate) = (Double(x.misses) / Double(max(1, x.count)), Double(y.misses) / Double(max(1, y.count)))
            return xRate != yRate ? xRate < yRate : a < b
        }

        let target = max(1, capacityBlocks / 32)
        var victims = Set<Int>()
        var freed = 0
        for index in ranked where freed < target {
            victims.insert(index)
            freed += segments[index].blocks.count
        }
        for index in victims { release(segments[index]) }
        segments = segments.indices.filter { !victims.contains($0) }.map { segments[$0] }
        openSegments = [:]
        for (index, segment) in segments.enumerated() where !segment.closed { openSegments[segment.stream] = index }
    }

    /// Returns the blocks and window keys of a segment that leaves the buffer.
    private func release(_ segment: Segment) {
        freeBlocks.append(contentsOf: segment.blocks)
        positions -= segment.count
        for window in segment.windows { forget(window) }
    }

    /// Drops the oldest block of `segments[index]` with the windows that start in it.
    private func trimOldestBlock(of index: Int) {
        let dropped = Self.blockPositions
        guard segments[index].count > dropped else { return }
        freeBlocks.append(segments[index].blocks.removeFirst())
        segments[index].startPosition += dropped
        segments[index].count -= dropped
        segments[index].freshFrom = max(0, segments[index].freshFrom - dropped)
        positions -= dropped
        var remaining: [Window] = []
        for var window in segments[index].windows {
            if Int(window.from) < dropped {
                forget(window)
                segments[index].rows -= window.rows
                segments[index].misses -= Int(window.misses)
            } else {
                window.from -= Int32(dropped)
                window.to -= Int32(dropped)
                remaining.append(window)
            }
        }
        segments[index].windows = remaining
    }

    private func forget(_ window: Window) {
        guard window.key != 0, let count = windowKeys[window.key] else { return }
        windowKeys[window.key] = count > 1 ? count - 1 : nil
    }

    // MARK: - Fresh windows

    /// Takes the oldest window of positions not yet handed out: `length` positions of a
    /// segment (the first may be one handed out before, since it only gives the input
    /// state), or the rest of a segment that no longer grows. Skips and counts windows whose
    /// tokens repeat a kept window's (see the type's notes).
    ///
    /// Complexity: O(S) for S segments, plus copying the window.
    func takeFresh(length: Int) -> FreshWindow? {
        for index in segments.indices {
            while let range = nextFreshRange(segments[index], length: length) {
                segments[index].freshFrom = range.upperBound
                let key = windowKey(segments[index], range)
                if key != 0, windowKeys[key] != nil {
                    duplicateRows += range.count - 1
                    continue
                }
                if key != 0 { windowKeys[key] = 1 }
                let window = Window(from: Int32(range.lowerBound), to: Int32(range.upperBound), misses: 0, key: key)
                segments[index].windows.append(window)
                segments[index].rows += window.rows
                return FreshWindow(sample: sample(segments[index], range), segmentID: segments[index].id)
            }
        }
        return nil
    }

    /// Records that the drafter missed `misses` rows of `window` when it first evaluated it
    /// (rows whose top draft token differed from the target's). Does nothing when the
    /// window has left the buffer since `takeFresh`.
    func recordMisses(_ misses: Int, of window: FreshWindow) {
        guard let index = index(ofSegment: window.segmentID) else { return }
        let from = window.sample.startPosition - segments[index].startPosition
        guard let last = segments[index].windows.lastIndex(where: { Int($0.from) == from }) else { return }
        let clamped = Int32(min(max(0, misses), segments[index].windows[last].rows))
        segments[index].misses += Int(clamped - segments[index].windows[last].misses)
        segments[index].windows[last].misses = clamped
    }

    private func nextFreshRange(_ segment: Segment, length: Int) -> Range<Int>? {
        let from = max(0, segment.freshFrom - 1)
        let available = segment.count - from
        guard available >= 2, available >= length || segment.closed, segment.freshFrom < segment.count else { return nil }
        return from ..< from + min(length, available)
    }

    // MARK: - Replay

    /// Returns a copy of one window handed out before, chosen at random. With probability
    /// `uniformShare` the pick is in proportion to the window's rows, which is uniform over the
    /// rows of all kept windows, so old and easy windows are still seen. Otherwise it is in
    /// proportion to `(misses + matchedRowWeight * rows) * lengthFactor(end)`. Here `end` is
    /// the stream's length so far: the position after the last one of the window's segment.
    ///
    /// Complexity: O(S + W) for S segments and the W windows of the chosen one.
    func replayWindow(using rng: inout some RandomNumberGenerator) -> DrafterSample? {
        let uniform = Double.random(in: 0..<1, using: &rng) < Self.uniformShare
        let weights = segments.map { segment in
            uniform ? Double(segment.rows)
                : (Double(segment.misses) + Self.matchedRowWeight * Double(segment.rows)) * Self.lengthFactor(segment.endPosition)
        }
        guard let index = Self.pick(weights, using: &rng) else { return nil }
        let segment = segments[index]
        let windowWeights = segment.windows.map { window in
            uniform ? Double(window.rows) : Double(window.misses) + Self.matchedRowWeight * Double(window.rows)
        }
        guard let chosen = Self.pick(windowWeights, using: &rng) else { return nil }
        let window = segment.windows[chosen]
        return sample(segment, Int(window.from) ..< Int(window.to))
    }

    /// Returns `1 + log2(1 + positions / lengthScale)`: 1.2 for a 64-position stream, 2 at
    /// 256 positions and 5.1 at 4,096.
    static func lengthFactor(_ positions: Int) -> Double {
        1 + log2(1 + Double(positions) / lengthScale)
    }

    /// Returns an index drawn in proportion to `weights`, or nil when they sum to zero.
    private static func pick(_ weights: [Double], using rng: inout some RandomNumberGenerator) -> Int? {
        let total = weights.reduce(0, +)
        guard total > 0 else { return nil }
        var remaining = Double.random(in: 0..<total, using: &rng)
        var last: Int? = nil
        for (index, weight) in weights.enumerated() where weight > 0 {
            if remaining < weight { return index }
            remaining -= weight
            last = index
        }
        return last    // rounding left a remainder past the last positive weight
    }

    // MARK: - Positions and hashes

    private func sample(_ segment: Segment, _ range: Range<Int>) -> DrafterSample {
        let h = hiddenSize
        var tokens: [Int32] = []
        var hidden: [Float] = []
        tokens.reserveCapacity(range.count)
        hidden.reserveCapacity(range.count * h)
        for offset in range {
            let (block, slot) = locate(segment, offset)
            tokens.append(storage[block].tokens[slot])
            hidden.append(contentsOf: UnsafeBufferPointer(start: storage[block].hidden + slot * h, count: h))
        }
        return DrafterSample(tokens: tokens, hidden: hidden, startPosition: segment.startPosition + range.lowerBound)
    }

    /// Returns the block and the slot in it of the position at `offset` in `segment`.
    private func locate(_ segment: Segment, _ offset: Int) -> (block: Int, slot: Int) {
        (Int(segment.blocks[offset / Self.blockPositions]), offset % Self.blockPositions)
    }

    /// Returns the index in `segments` of the segment with `id`, by binary search.
    private func index(ofSegment id: Int) -> Int? {
        var low = 0, high = segments.count
        while low < high {
            let middle = (low + high) / 2
            if segments[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low < segments.count && segments[low].id == id ? low : nil
    }

    /// Returns the key under which the window `range` of `segment` is deduplicated, or 0 when
    /// the segment does not start at position 0. The key hashes the stream's tokens from
    /// position 0 through the window's last, and the window's bounds. Equal keys count as
    /// equal windows, because a false match of two 64-bit hashes is unlikely enough to accept.
    private func windowKey(_ segment: Segment, _ range: Range<Int>) -> UInt64 {
        guard segment.hashesCoverStream else { return 0 }
        let (block, slot) = locate(segment, range.upperBound - 1)
        let start = UInt64(segment.startPosition + range.lowerBound), end = UInt64(segment.startPosition + range.upperBound)
        let key = Self.extendHash(storage[block].prefixHashes[slot] ^ (start << 32 | end), with: 0)
        return key == 0 ? 1 : key
    }

    /// Returns the prefix hash after one more token: SplitMix64's finalizer over the
    /// previous hash plus the token, so the result depends on the order of the tokens.
    static func extendHash(_ hash: UInt64, with token: Int32) -> UInt64 {
        var z = hash &+ 0x9E37_79B9_7F4A_7C15 &+ UInt64(UInt32(bitPattern: token))
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
