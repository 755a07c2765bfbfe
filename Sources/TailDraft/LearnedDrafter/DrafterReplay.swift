/// Committed positions the trainer has received, as contiguous segments, bounded in size:
/// the oldest segments leave first, so memory never grows with run time.
///
/// Positions come from one or more streams (sequences decoded side by side, such as the
/// responses of a rollout), each with its own id. Records of different streams may
/// interleave, and each stream's positions still form their own segments.
struct DrafterReplay {
    struct Segment {
        var stream: Int
        var startPosition: Int
        var tokens: [Int32] = []
        var hidden: [Float] = []
        /// Positions before this index were trained on as fresh data.
        var freshFrom = 0
        /// Whether the segment stopped growing: its stream started another segment.
        var closed = false
    }

    let hiddenSize: Int
    /// Largest number of positions kept over all segments.
    let capacityPositions: Int
    private(set) var segments: [Segment] = []
    private(set) var positions = 0

    init(hiddenSize: Int, capacityPositions: Int) {
        self.hiddenSize = hiddenSize
        self.capacityPositions = max(2, capacityPositions)
    }

    /// Appends one position of `stream`. A position that does not follow the last one of the
    /// stream's newest segment closes that segment and starts a new one, because it begins a
    /// new sequence or follows dropped records. Finding the stream's segment takes time
    /// linear in the number of segments kept.
    mutating func append(token: Int32, position: Int, hidden: UnsafePointer<Float>, stream: Int = 0) {
        let newest = segments.lastIndex { $0.stream == stream && !$0.closed }
        if let newest, segments[newest].startPosition + segments[newest].tokens.count == position {
            segments[newest].tokens.append(token)
            segments[newest].hidden.append(contentsOf: UnsafeBufferPointer(start: hidden, count: hiddenSize))
        } else {
            if let newest { segments[newest].closed = true }
            var segment = Segment(stream: stream, startPosition: position)
            segment.tokens.append(token)
            segment.hidden.append(contentsOf: UnsafeBufferPointer(start: hidden, count: hiddenSize))
            segments.append(segment)
        }
        positions += 1
        while positions > capacityPositions, segments.count > 1 {
            positions -= segments.removeFirst().tokens.count
        }
    }

    /// Marks the newest segment of `stream` as finished, so its last positions can be taken
    /// even when fewer than a window.
    mutating func close(stream: Int) {
        if let newest = segments.lastIndex(where: { $0.stream == stream && !$0.closed }) {
            segments[newest].closed = true
        }
    }

    /// Takes the oldest window of untrained positions: `length` positions of a segment (the first
    /// may be one trained before, since it only gives the input state), or the rest of a
    /// segment that no longer grows. Marks it trained.
    mutating func takeFresh(length: Int) -> DrafterSample? {
        for index in segments.indices {
            let segment = segments[index]
            let from = max(0, segment.freshFrom - 1)
            let available = segment.tokens.count - from
            let closed = segment.closed
            guard available >= 2, available >= length || closed, segment.freshFrom < segment.tokens.count else { continue }
            let to = from + min(length, available)
            segments[index].freshFrom = to
            return sample(index, from ..< to)
        }
        return nil
    }

    /// Returns a window of up to `length` positions at a random place among trained positions.
    func randomWindow(length: Int, using rng: inout some RandomNumberGenerator) -> DrafterSample? {
        let eligible = segments.indices.filter { segments[$0].freshFrom >= 2 }
        guard let index = eligible.randomElement(using: &rng) else { return nil }
        let trained = segments[index].freshFrom
        let size = min(length, trained)
        let from = Int.random(in: 0 ... trained - size, using: &rng)
        return sample(index, from ..< from + size)
    }

    private func sample(_ index: Int, _ range: Range<Int>) -> DrafterSample {
        let segment = segments[index]
        let h = hiddenSize
        return DrafterSample(tokens: Array(segment.tokens[range]), hidden: Array(segment.hidden[range.lowerBound * h ..< range.upperBound * h]),
                             startPosition: segment.startPosition + range.lowerBound)
    }
}
