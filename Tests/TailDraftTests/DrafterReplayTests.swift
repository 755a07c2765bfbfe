import Testing
@testable import TailDraft

/// Tests of the trainer's replay buffer: segments of streams decoded side by side, its memory
/// bound, eviction, deduplication, and replay picks that favour misses and long streams.
@Suite struct DrafterReplayTests {
    /// Appends position `position` of `stream` with `token` (by default stream * 1000 +
    /// position) and a hidden state whose every value is the token.
    static func append(_ replay: DrafterReplay, stream: Int, position: Int, token: Int32? = nil) {
        let value = token ?? Int32(stream * 1000 + position)
        let hidden = [Float](repeating: Float(value), count: replay.hiddenSize)
        hidden.withUnsafeBufferPointer { replay.append(token: value, position: position, hidden: $0.baseAddress!, stream: stream) }
    }

    /// Appends positions 0 ..< `count` of each stream in `streams` and closes them.
    static func appendClosed(_ replay: DrafterReplay, streams: [Int], count: Int) {
        for stream in streams {
            for position in 0..<count { append(replay, stream: stream, position: position) }
            replay.close(stream: stream)
        }
    }

    /// Takes every fresh window of `length` and records `misses(stream)` misses for each.
    static func trainFresh(_ replay: DrafterReplay, length: Int, misses: (Int) -> Int) {
        while let window = replay.takeFresh(length: length) {
            replay.recordMisses(misses(Int(window.sample.tokens[0]) / 1000), of: window)
        }
    }

    /// Draws `count` replay windows and counts them by the stream of their first token.
    static func replayCounts(_ replay: DrafterReplay, count: Int, seed: UInt64) -> [Int: Int] {
        var rng = SplitMixGenerator(seed: seed)
        var counts: [Int: Int] = [:]
        for _ in 0..<count {
            guard let sample = replay.replayWindow(using: &rng) else { continue }
            counts[Int(sample.tokens[0]) / 1000, default: 0] += 1
        }
        return counts
    }

    @Test func interleavedStreamsKeepTheirOwnSegments() throws {
        let replay = DrafterReplay(hiddenSize: 3, capacityBlocks: 100)
        for position in 0..<10 {
            for stream in [7, 2, 5] { Self.append(replay, stream: stream, position: position) }
        }
        #expect(replay.segments.count == 3)
        #expect(replay.segments.map(\.stream) == [7, 2, 5])
        for segment in replay.segments {
            #expect(replay.tokens(of: segment) == (0..<10).map { Int32(segment.stream * 1000 + $0) })
            #expect(!segment.closed, "each stream's segment still grows")
        }

        // Windows of four come from one stream each, in order, with matching hidden states.
        var seen: [Int] = []
        while let window = replay.takeFresh(length: 4) {
            let sample = window.sample
            let stream = Int(sample.tokens[0]) / 1000
            seen.append(stream)
            #expect(sample.tokens == (0..<sample.tokens.count).map { Int32(stream * 1000 + sample.startPosition + $0) })
            #expect(sample.hidden == sample.tokens.flatMap { [Float](repeating: Float($0), count: 3) })
        }
        #expect(Set(seen) == [7, 2, 5])
    }

    /// A stream that restarts at position 0 closes its old segment, so the segment's rest is
    /// trained even when shorter than a window. Other streams' segments stay open.
    @Test func restartedStreamClosesOnlyItsSegment() throws {
        let replay = DrafterReplay(hiddenSize: 2, capacityBlocks: 100)
        for position in 0..<3 {
            Self.append(replay, stream: 1, position: position)
            Self.append(replay, stream: 2, position: position)
        }
        Self.append(replay, stream: 1, position: 0, token: 1100)
        #expect(replay.segments.map(\.closed) == [true, false, false])
        let first = replay.takeFresh(length: 64)
        #expect(first?.sample.tokens == [1000, 1001, 1002])
        let second = replay.takeFresh(length: 64)
        #expect(second == nil, "the open segments are shorter than a window")

        // Ending stream 2 makes its short segment trainable; stream 1's new segment stays open.
        replay.close(stream: 2)
        let third = replay.takeFresh(length: 64)
        #expect(third?.sample.tokens == [2000, 2001, 2002])
        #expect(replay.segments.map(\.closed) == [true, true, false])
    }

    /// Positions 0 ..< 64 of a window spanning four blocks come back in order.
    @Test func windowAcrossBlocksKeepsPositionsInOrder() throws {
        let replay = DrafterReplay(hiddenSize: 5, capacityBlocks: 10)
        Self.appendClosed(replay, streams: [3], count: 64)
        let window = try #require(replay.takeFresh(length: 64))
        #expect(window.sample.tokens == (0..<64).map { Int32(3000 + $0) })
        #expect(window.sample.hidden == window.sample.tokens.flatMap { [Float](repeating: Float($0), count: 5) })
        #expect(replay.segments[0].blocks.count == 4)
    }

    /// The default of 38 MB keeps 15,648 positions of SmolLM2, and twice the megabytes keep
    /// twice the positions.
    @Test func megabytesConvertToPositions() {
        let options = DrafterTrainerOptions()
        #expect(options.replayMegabytes == 38)
        #expect(options.replayCapacityPositions(hiddenSize: 576) == 15_648)
        #expect(DrafterReplay.bytesPerBlock(hiddenSize: 576) == 16 * (4 * 576 + 92) + 512)
        var larger = options
        larger.replayMegabytes = 76
        #expect(larger.replayCapacityPositions(hiddenSize: 576) == 2 * 15_648)
        #expect(DrafterReplay.capacityBlocks(megabytes: 0, hiddenSize: 576) == 2, "at least two blocks")
    }

    /// Over a long run of appends from several streams, with restarts, gaps, ends and
    /// training in between, the positions kept never exceed the capacity computed from the
    /// megabytes, and the blocks allocated never exceed the megabytes.
    @Test func positionsStayWithinMegabyteBound() throws {
        let megabytes = 0.05
        let replay = DrafterReplay(hiddenSize: 8, megabytes: megabytes)
        #expect(replay.capacityBlocks == 20)
        #expect(replay.capacityPositions == 320)
        var rng = SplitMixGenerator(seed: 11)
        var next = [Int](repeating: 0, count: 7)
        var maxKept = 0
        for step in 0..<30_000 {
            let stream = Int.random(in: 0..<7, using: &rng)
            let roll = Int.random(in: 0..<400, using: &rng)
            if roll == 0 {
                replay.close(stream: stream)
                next[stream] = 0
            } else if roll == 1 {
                next[stream] += 5    // dropped records leave a gap
            }
            Self.append(replay, stream: stream, position: next[stream], token: Int32(stream * 1000 + next[stream] % 1000))
            next[stream] += 1
            if step % 10 == 0, let window = replay.takeFresh(length: 8) {
                replay.recordMisses(Int.random(in: 0...7, using: &rng), of: window)
            }
            maxKept = max(maxKept, replay.positions)
            #expect(replay.positions <= replay.capacityPositions, "step \(step)")
            #expect(replay.allocatedBlocks <= replay.capacityBlocks, "step \(step)")
            #expect(replay.segments.reduce(0) { $0 + $1.count } == replay.positions, "step \(step)")
        }
        #expect(replay.allocatedBlocks * DrafterReplay.bytesPerBlock(hiddenSize: 8) <= Int(megabytes * 1_000_000))
        #expect(maxKept > replay.capacityPositions / 2, "the buffer fills up towards its bound, at most \(maxKept) positions")
    }

    /// One stream longer than the whole buffer drops its own oldest positions and keeps the
    /// newest.
    @Test func singleStreamLongerThanBufferStaysBounded() throws {
        let replay = DrafterReplay(hiddenSize: 4, capacityBlocks: 4)
        for position in 0..<1_000 {
            Self.append(replay, stream: 0, position: position, token: Int32(position))
            #expect(replay.positions <= 64, "position \(position)")
        }
        #expect(replay.segments.count == 1)
        let segment = replay.segments[0]
        #expect(segment.endPosition == 1_000)
        #expect(replay.tokens(of: segment).last == 999)
        #expect(replay.tokens(of: segment) == (segment.startPosition..<1_000).map { Int32($0) })
    }

    /// When the buffer is full, a segment with few missed rows leaves before an older one
    /// with many, and segments not yet trained on stay.
    @Test func evictionKeepsHighMissSegments() throws {
        let replay = DrafterReplay(hiddenSize: 4, capacityBlocks: 8)
        Self.appendClosed(replay, streams: [0, 1, 2, 3], count: 32)
        let misses = [0: 30, 1: 0, 2: 1, 3: 20]
        Self.trainFresh(replay, length: 32) { misses[$0]! }
        #expect(replay.segments.map(\.misses) == [30, 0, 1, 20])
        #expect(replay.positions == replay.capacityPositions, "the buffer is full")

        // Among the oldest half (streams 0 and 1), stream 1 has fewer misses per position.
        Self.append(replay, stream: 4, position: 0)
        #expect(replay.segments.map(\.stream) == [0, 2, 3, 4])
        for position in 1..<32 { Self.append(replay, stream: 4, position: position) }

        // Stream 4 is not trained on yet; among the oldest half (0 and 2), stream 2 leaves.
        Self.append(replay, stream: 5, position: 0)
        #expect(replay.segments.map(\.stream) == [0, 3, 4, 5])
        #expect(replay.positions <= replay.capacityPositions)
    }

    /// Replay picks windows with missed rows far more often than equally long windows
    /// without misses. With half the windows hard, about 80 % of picks go to them, and the
    /// test requires 75 %, where a uniform pick would give 50 %.
    @Test func replayFavoursWindowsWithMisses() throws {
        let replay = DrafterReplay(hiddenSize: 2, capacityBlocks: 100)
        let streams = Array(0..<10)
        Self.appendClosed(replay, streams: streams, count: 64)
        Self.trainFresh(replay, length: 64) { $0 % 2 == 0 ? 40 : 0 }
        #expect(replay.segments.map(\.windows.count) == [Int](repeating: 1, count: 10))

        let draws = 4_000
        let counts = Self.replayCounts(replay, count: draws, seed: 7)
        let hard = streams.filter { $0 % 2 == 0 }.reduce(0) { $0 + counts[$1, default: 0] }
        #expect(counts.values.reduce(0, +) == draws)
        #expect(Double(hard) / Double(draws) > 0.75, "hard windows got \(hard) of \(draws) picks")
    }

    /// The uniform share of replay picks still reaches every window without misses when one
    /// window has missed every row.
    @Test func uniformShareReachesEasyWindows() throws {
        let replay = DrafterReplay(hiddenSize: 2, capacityBlocks: 100)
        let streams = Array(0..<10)
        Self.appendClosed(replay, streams: streams, count: 64)
        Self.trainFresh(replay, length: 64) { $0 == 0 ? 63 : 0 }

        let draws = 4_000
        let counts = Self.replayCounts(replay, count: draws, seed: 3)
        // Each easy window expects about 5 % of the picks: 2.5 % from the uniform share alone.
        for stream in streams.dropFirst() {
            #expect(counts[stream, default: 0] > draws / 50, "stream \(stream) got \(counts[stream, default: 0]) picks")
        }
        #expect(counts[0, default: 0] > draws / 3, "the hard window got \(counts[0, default: 0]) picks")
    }

    /// Among windows without misses, a window of a long stream is picked more often than a
    /// window of a short one.
    @Test func replayFavoursLongStreams() throws {
        let replay = DrafterReplay(hiddenSize: 2, capacityBlocks: 200)
        Self.appendClosed(replay, streams: [1], count: 64)
        Self.appendClosed(replay, streams: [2], count: 1 + 16 * 63)
        Self.trainFresh(replay, length: 64) { _ in 0 }
        #expect(replay.segments.map(\.windows.count) == [1, 16])

        let counts = Self.replayCounts(replay, count: 8_000, seed: 5)
        let short = Double(counts[1, default: 0])
        let longPerWindow = Double(counts[2, default: 0]) / 16
        #expect(longPerWindow > 1.4 * short, "a long stream's window got \(longPerWindow) picks, the short one's \(short)")
    }

    /// Two streams with the same first tokens (a shared prompt) train those windows once, and
    /// where their tokens part, both are trained. The skipped rows are counted and get no
    /// window to replay.
    @Test func duplicateWindowsAreSkipped() throws {
        let replay = DrafterReplay(hiddenSize: 2, capacityBlocks: 100)
        for stream in [1, 2] {
            for position in 0..<60 {
                let token = position < 40 ? Int32(position) : Int32(stream * 1000 + position)
                Self.append(replay, stream: stream, position: position, token: token)
            }
            replay.close(stream: stream)
        }
        var windows: [[Int32]] = []
        while let window = replay.takeFresh(length: 16) { windows.append(window.sample.tokens) }
        // Stream 1 gives windows at 0, 15, 30 and 45; stream 2 repeats the first two.
        #expect(windows.count == 6)
        #expect(Set(windows).count == 6, "no window is trained twice")
        #expect(replay.duplicateRows == 2 * 15)
        #expect(replay.segments.map(\.windows.count) == [4, 2])

        // The same tokens from a position other than 0 are not taken as duplicates, since
        // their hidden states depend on tokens the buffer never saw.
        for position in 5..<21 { Self.append(replay, stream: 3, position: position, token: Int32(position)) }
        for position in 5..<21 { Self.append(replay, stream: 4, position: position, token: Int32(position)) }
        replay.close(stream: 3)
        replay.close(stream: 4)
        var later = 0
        while replay.takeFresh(length: 16) != nil { later += 1 }
        #expect(later == 2)
        #expect(replay.duplicateRows == 2 * 15)
    }
}
