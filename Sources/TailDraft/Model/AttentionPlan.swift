import Kernels

/// The KV-cache slot each batch row writes its key and value to, and the slots each row
/// attends to. Built and validated before any cache is written, so an invalid batch
/// leaves the caches untouched.
struct AttentionPlan {
    /// Per row: the cache slot its key and value are written to.
    let slotOfRow: [Int]
    let sequences: [Int]
    /// RoPE positions as the kernels take them.
    let positions: [Int32]
    /// Visible slots per row, CSR style: row i sees slots[offsets[i] ..< offsets[i + 1]].
    let slotOffsets: [Int32]
    let slots: [Int32]
    /// Rows added per sequence index.
    let addedPerSequence: [Int: Int]
    /// The td_type of the keys and values of every cache the batch uses.
    let kvType: Int32

    init(batch: ForwardBatch, caches: [KVCache], config: ModelConfig) throws {
        let m = batch.count
        guard m > 0 else { throw ForwardError.emptyBatch }
        guard batch.positions.count == m, batch.sequences.count == m else {
            throw ForwardError.mismatchedLengths(tokens: m, positions: batch.positions.count, sequences: batch.sequences.count)
        }
        for row in 0..<m {
            let token = batch.tokens[row]
            guard token >= 0, Int(token) < config.vocabularySize else {
                throw ForwardError.tokenOutOfRange(row: row, token: token, vocabularySize: config.vocabularySize)
            }
            let sequence = batch.sequences[row]
            guard sequence >= 0, sequence < caches.count else {
                throw ForwardError.unknownSequence(row: row, sequence: sequence, cacheCount: caches.count)
            }
            let position = batch.positions[row]
            guard position >= 0, Int(position) < caches[sequence].capacity else {
                throw ForwardError.positionOutOfRange(row: row, position: position, contextLength: caches[sequence].capacity)
            }
        }
        let precisions = Set(batch.sequences.map { caches[$0].precision })
        guard precisions.count == 1, let precision = precisions.first else {
            throw ForwardError.mixedCachePrecisions(precisions.map { "\($0)" }.sorted())
        }
        if let rows = batch.logitRows {
            guard zip(rows, rows.dropFirst()).allSatisfy({ $0 < $1 }), rows.allSatisfy({ (0..<m).contains($0) }) else {
                throw ForwardError.badLogitRows(rows)
            }
        }
        if let mask = batch.mask {
            guard mask.count == m, mask.allSatisfy({ $0.count == m }) else {
                throw ForwardError.badMask("expected \(m) rows of \(m) entries")
            }
            for row in 0..<m where !mask[row][row] {
                throw ForwardError.badMask("row \(row) does not attend to itself")
            }
        }

        // Slots: each sequence's rows follow its committed slots, in row order.
        var added: [Int: Int] = [:]
        var slotOfRow = [Int](repeating: 0, count: m)
        for row in 0..<m {
            let sequence = batch.sequences[row]
            let index = added[sequence, default: 0]
            slotOfRow[row] = caches[sequence].count + index
            added[sequence] = index + 1
        }
        for (sequence, count) in added where caches[sequence].count + count > caches[sequence].capacity {
            throw ForwardError.contextFull(sequence: sequence, used: caches[sequence].count, adding: count, capacity: caches[sequence].capacity)
        }

        // Visible slots: the committed prefix, then allowed rows of the same sequence.
        var offsets: [Int32] = [0]
        var slots: [Int32] = []
        for row in 0..<m {
            let sequence = batch.sequences[row]
            slots.append(contentsOf: (0..<caches[sequence].count).map(Int32.init))
            for other in 0..<m where batch.sequences[other] == sequence {
                let visible = batch.mask.map { $0[row][other] } ?? (other <= row)
                if visible { slots.append(Int32(slotOfRow[other])) }
            }
            offsets.append(Int32(slots.count))
        }
        self.slotOfRow = slotOfRow
        self.sequences = batch.sequences
        self.positions = batch.positions
        self.slotOffsets = offsets
        self.slots = slots
        self.addedPerSequence = added
        self.kvType = precision.kernelType
    }

    /// Copies each row's key and value into its slot of `layer`, converted to the cache's
    /// precision.
    func store(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, layer: Int, caches: [KVCache]) {
        for (row, slot) in slotOfRow.enumerated() {
            let cache = caches[sequences[row]]
            let kvDim = cache.kvDim
            cache.store(keys + row * kvDim, into: cache.keys(layer: layer), slot: slot)
            cache.store(values + row * kvDim, into: cache.values(layer: layer), slot: slot)
        }
    }

    /// Runs attention for every row over its visible slots of `layer`. All caches of one
    /// forward pass must share a precision, because the kernel takes one element type.
    func attend(queries: UnsafePointer<Float>, layer: Int, caches: [KVCache], into output: UnsafeMutablePointer<Float>,
                config: ModelConfig, threads: Int) {
        let keyBases: [UnsafeRawPointer?] = sequences.map { UnsafeRawPointer(caches[$0].keys(layer: layer)) }
        let valueBases: [UnsafeRawPointer?] = sequences.map { UnsafeRawPointer(caches[$0].values(layer: layer)) }
        let status = td_attention(queries, Int64(config.queryDim), Int64(sequences.count), Int32(config.headCount),
                                  Int32(config.kvHeadCount), Int32(config.headDim), kvType, keyBases, valueBases,
                                  Int64(config.kvDim), slotOffsets, slots, output, Int64(config.queryDim), Int32(threads))
        check(status, "td_attention")
    }

    /// Advances each sequence's committed count past the rows this batch wrote.
    func commit(caches: [KVCache]) {
        for (sequence, count) in addedPerSequence { caches[sequence].commit(count) }
    }
}
