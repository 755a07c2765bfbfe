import Kernels
import TailDraft

/// Forward-pass time for m = 1...32 rows appended to a fixed context: the cost curve that
/// sizes speculative trees. Each measurement appends m causal rows, times the pass and rolls
/// the cache back, so every round sees the same context.
///
/// The curve also bounds what speculation can gain for a batch of B sequences. Plain
/// decoding gets B tokens from a pass of B rows. A drafter that is always right gets R
/// tokens from a pass of R rows. The bound is the best (R / time(R)) / (B / time(B)) over
/// the measured R >= B.
struct VerifyCostBenchmark {
    let modelPath: String
    let threads: Int
    let rounds: Int
    let context: Int
    let rowCounts = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]

    struct Report {
        var cpu: String
        var isa: String
        var threads: Int
        var context: Int
        /// Per row count: median and range of milliseconds.
        var rows: [(count: Int, summary: Summary)]

        func table() -> String {
            let base = rows.first?.summary.median ?? 1
            var lines = ["cpu: \(cpu)", "isa: \(isa)", "threads: \(threads), context: \(context) tokens", "",
                         "rows   ms (median)   min..max        ratio to 1 row"]
            for (count, summary) in rows {
                lines.append("\(String(count).padding(6)) \(decimals(summary.median, 2).padding(13)) \((decimals(summary.minimum, 2) + ".." + decimals(summary.maximum, 2)).padding(15)) \((decimals(summary.median / base, 2) + "x"))")
            }
            lines += ["", "batch  best speedup with drafts always accepted  at rows"]
            for bound in bounds() {
                lines.append("\(String(bound.batch).padding(6)) \((decimals(bound.speedup, 2) + "x").padding(45)) \(bound.rows)")
            }
            return lines.joined(separator: "\n")
        }

        /// Returns, for batches of 1, 2, 4 and 8 sequences, the measured row count with the
        /// most tokens per millisecond if every row yields a token, and that rate over plain
        /// decoding's. Uses the medians, O(rows).
        func bounds() -> [(batch: Int, rows: Int, speedup: Double)] {
            let time = Dictionary(uniqueKeysWithValues: rows.map { ($0.count, $0.summary.median) })
            return [1, 2, 4, 8].compactMap { batch in
                guard let plain = time[batch] else { return nil }
                let best = rows.filter { $0.count >= batch }
                    .map { (rows: $0.count, speedup: (Double($0.count) / $0.summary.median) / (Double(batch) / plain)) }
                    .max { $0.speedup < $1.speedup }
                return best.map { (batch, $0.rows, $0.speedup) }
            }
        }

        func json() -> String {
            let entries = rows.map { "{\"rows\": \($0.count), \"milliseconds\": \($0.summary.median), \"min\": \($0.summary.minimum), \"max\": \($0.summary.maximum)}" }
            let bounds = bounds().map { "{\"batch\": \($0.batch), \"rows\": \($0.rows), \"speedup\": \($0.speedup)}" }
            return "{\"cpu\": \"\(cpu)\", \"isa\": \"\(isa)\", \"threads\": \(threads), \"context\": \(context), " +
                "\"results\": [\(entries.joined(separator: ", "))], \"always_accepted_bounds\": [\(bounds.joined(separator: ", "))]}"
        }


    }

    func run(progress: Bool) throws -> Report {
        let file = try GGUFFile.openModel(path: modelPath)
        let config = try ModelConfig(file: file)
        let model = Transformer(config: config, weights: try ModelWeights(file: file, config: config), threads: threads)
        let maxRows = rowCounts.max()!
        let cache = KVCache(config: config, capacity: context + maxRows)
        var random = RandomGenerator(seed: 99)
        let tokens = (0..<(context + maxRows)).map { _ in Int32(random.next() % UInt64(config.vocabularySize)) }
        _ = try model.forward(.causal(tokens: Array(tokens.prefix(context)), startPosition: 0, logitRows: []), caches: [cache])

        var samples: [Int: [Double]] = [:]
        for round in 0..<rounds {
            for count in rowCounts {
                let rows = Array(tokens[context..<(context + count)])
                let start = now()
                _ = try model.forward(.causal(tokens: rows, startPosition: context), caches: [cache])
                samples[count, default: []].append((now() - start) * 1000)
                cache.truncate(to: context)
            }
            if progress { Console.error("round \(round + 1)/\(rounds) done") }
        }
        return Report(cpu: cpuModel(), isa: String(cString: td_isa_name(td_isa_active())), threads: threads, context: context,
                      rows: rowCounts.map { ($0, Summary(samples: samples[$0]!)) })
    }
}
