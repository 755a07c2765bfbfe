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
    }

    /// Copies each row's key and value into its slot of `layer`, rounded to the cache's
    /// precision.
    func store(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, layer: Int, caches: [KVCache]) {
        for (row, slot) in slotOfRow.enumerated() {
            let cache = caches[sequences[row]]
            let kvDim = cache.kvDim
            let key = cache.keys(layer: layer) + slot * kvDim, value = cache.values(layer: layer) + slot * kvDim
            switch cache.precision {
            case .float16:
                check(td_round_to_half(keys + row * kvDim, key, Int64(kvDim)), "td_round_to_half")
                check(td_round_to_half(values + row * kvDim, value, Int64(kvDim)), "td_round_to_half")
            case .float32:
                key.update(from: keys + row * kvDim, count: kvDim)
                value.update(from: values + row * kvDim, count: kvDim)
            }
        }
    }

    func attend(queries: UnsafePointer<Float>, layer: Int, caches: [KVCache], into output: UnsafeMutablePointer<Float>,
                config: ModelConfig, threads: Int) {
        let keyBases: [UnsafePointer<Float>?] = sequences.map { UnsafePointer(caches[$0].keys(layer: layer)) }
        let valueBases: [UnsafePointer<Float>?] = sequences.map { UnsafePointer(caches[$0].values(layer: layer)) }
        let status = td_attention(queries, Int64(config.queryDim), Int64(sequences.count), Int32(config.headCount),
                                  Int32(config.kvHeadCount), Int32(config.headDim), keyBases, valueBases,
                                  Int64(config.kvDim), slotOffsets, slots, output, Int64(config.queryDim), Int32(threads))
        check(status, "td_attention")
    }

    /// Advances each sequence's committed count past the rows this batch wrote.
    func commit(caches: [KVCache]) {
        for (sequence, count) in addedPerSequence { caches[sequence].commit(count) }
    }
}
