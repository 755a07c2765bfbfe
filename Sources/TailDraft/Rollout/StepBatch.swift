/// The rows one sequence contributes to a forward pass: a prompt chunk, one decode token, or
/// a draft tree.
struct RowGroup {
    var tokens: [Int32]
    var positions: [Int32]
    /// `mask[i][j]`: row i of the group attends to row j of the group; nil means causal.
    var mask: [[Bool]]?
    /// Rows of the group whose logits are needed, increasing.
    var logitRows: [Int]

    var count: Int { tokens.count }
}

/// Several sequences' row groups as one `ForwardBatch`: group g's rows follow group g - 1's,
/// and its rows name KV cache g.
///
/// The mask is built only when a group has a tree. It then has one block per group (the
/// group's mask, or causal), and nothing across groups, because the forward pass lets a row
/// see only rows of its own sequence. Cost: O(rows) without trees, O(rows^2) with them.
struct StepBatch {
    let batch: ForwardBatch
    /// Batch row of each group's first row.
    let firstRows: [Int]

    init(groups: [RowGroup]) {
        precondition(!groups.isEmpty, "a forward pass needs at least one row group")
        var tokens: [Int32] = [], positions: [Int32] = [], sequences: [Int] = [], logitRows: [Int] = []
        var firstRows: [Int] = []
        for (index, group) in groups.enumerated() {
            precondition(group.count > 0 && group.positions.count == group.count, "row group \(index) is empty or has \(group.positions.count) positions for \(group.count) tokens")
            firstRows.append(tokens.count)
            logitRows += group.logitRows.map { tokens.count + $0 }
            tokens += group.tokens
            positions += group.positions
            sequences += Array(repeating: index, count: group.count)
        }

        var mask: [[Bool]]? = nil
        if groups.contains(where: { $0.mask != nil }) {
            var full = [[Bool]](repeating: [Bool](repeating: false, count: tokens.count), count: tokens.count)
            for (index, group) in groups.enumerated() {
                let first = firstRows[index]
                for row in 0..<group.count {
                    for column in 0..<group.count {
                        full[first + row][first + column] = group.mask.map { $0[row][column] } ?? (column <= row)
                    }
                }
            }
            mask = full
        }
        batch = ForwardBatch(tokens: tokens, positions: positions, sequences: sequences, mask: mask, logitRows: logitRows)
        self.firstRows = firstRows
    }
}
