#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The cost of verifying n rows in one forward pass, relative to a single-row pass: what a
/// draft tree of n - 1 nodes costs on this machine.
public struct VerificationCost: Sendable, Equatable {
    /// `relative[n - 1]`: time for n rows over time for one row; `relative[0]` is 1.
    public let relative: [Double]

    public init(relative: [Double]) {
        precondition(!relative.isEmpty && relative[0] == 1, "relative costs start with 1 for one row")
        self.relative = relative
    }

    /// Returns an estimate for when nothing was measured: each extra row costs a third of a
    /// pass, as `taildraft-bench verify-cost` showed for up to 4 rows with the AVX-512 kernels.
    public static func estimated(maxRows: Int) -> VerificationCost {
        VerificationCost(relative: (1...max(1, maxRows)).map { 1 + 0.33 * Double($0 - 1) })
    }

    /// Returns the first `rows` entries of the table.
    func truncated(toRows rows: Int) -> VerificationCost {
        VerificationCost(relative: Array(relative.prefix(max(1, rows))))
    }

    /// Returns the relative cost of `rows` rows, extending the table linearly past its end.
    public func cost(rows: Int) -> Double {
        if rows <= relative.count { return relative[max(0, rows - 1)] }
        let last = relative[relative.count - 1]
        let step = relative.count > 1 ? max(0, last - relative[relative.count - 2]) : 0.33
        return last + step * Double(rows - relative.count)
    }

    /// Context length, in tokens, at which `cached` measures. Attention makes extra rows cost
    /// more as the context grows, so this sits between a short prompt and a long answer.
    public static let measuredContext = 256

    /// Version of the measurement, part of the cache key. A kernel or method change that
    /// moves the costs bumps it, so tables measured before are not reused.
    static let measurementVersion = 8

    /// Measures forward time for 1...maxRows rows after `context` tokens of a scratch cache.
    ///
    /// Each round times, for every row count n >= 2, a single-row pass and then a pass of n
    /// rows, the order in which a decode loop runs a verification between plain steps. On an
    /// AMD EPYC, a pass of 2 to 4 rows took 10 to 15 % longer right after a single-row pass
    /// than right after a pass of its own size. Timing row counts back to back therefore
    /// understated what a draft costs. Each ratio divides two passes a few milliseconds apart,
    /// which see the machine in the same state. The table takes each row count's median ratio
    /// over `repeats` rounds, so rounds that other work disturbed do not count, raised where
    /// needed so that more rows never cost less. The first round is not timed, because right
    /// after loading the first passes measured up to 30 % slow. Costs about
    /// 3 x maxRows x (repeats + 1) forward passes.
    ///
    /// The medians are used as they are. A straight line through them, as earlier versions
    /// fitted, charged two rows 1.34 passes in a 16-row table where they cost about 1.15,
    /// because rows beyond the kernels' tiles of four cost more each.
    public static func measure(model: Transformer, maxRows: Int = 8, context: Int = measuredContext, repeats: Int = 15) throws -> VerificationCost {
        let cache = KVCache(config: model.config, capacity: context + maxRows)
        let tokens = (0..<(context + maxRows)).map { Int32(($0 * 7919) % model.config.vocabularySize) }
        _ = try model.forward(.causal(tokens: Array(tokens.prefix(context)), startPosition: 0, logitRows: []), caches: [cache])
        func pass(rows: Int) throws -> Double {
            let start = Generator.now()
            _ = try model.forward(.causal(tokens: Array(tokens[context..<(context + rows)]), startPosition: context), caches: [cache])
            let seconds = Generator.now() - start
            cache.truncate(to: context)
            return seconds
        }
        var ratios = [[Double]](repeating: [], count: maxRows)
        for round in 0..<(max(1, repeats) + 1) {
            for rows in stride(from: 2, through: maxRows, by: 1) {
                // The first single-row pass follows the previous pass of several rows and is
                // not the loop's steady state, so the second one is the baseline.
                _ = try pass(rows: 1)
                let single = try pass(rows: 1)
                let several = try pass(rows: rows)
                if round > 0 { ratios[rows - 1].append(several / single) }
            }
        }
        ratios[0] = [1]
        return VerificationCost(relative: monotonic(ratios.map(median)))
    }

    /// Returns the middle value of `values`, or the mean of the two middle ones.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// Returns `values` with each entry raised to at least the one before it (and the first
    /// to 1): verifying more rows never costs less than verifying fewer.
    static func monotonic(_ values: [Double]) -> [Double] {
        var result: [Double] = []
        for value in values {
            result.append(max(value, result.last ?? 1))
        }
        return result
    }

    /// Loads the costs measured earlier for this model file, kernel path and thread count
    /// from the user's cache folder, or measures and stores them at `measuredContext` tokens.
    /// For SmolLM2-135M on 2 threads, measuring took about 1 s for 4 rows and 5 s for the
    /// 16 rows of a rollout's tail. A cache that cannot be written is skipped.
    public static func cached(model: Transformer, modelPath: String, maxRows: Int = 8) throws -> VerificationCost {
        let key = "verify-cost-v\(measurementVersion)-\(model.weights.file.fileSize)-\(model.weights.file.tensors.count)-" +
            "\(KernelPath.active)-\(model.threads)t-\(maxRows)r-\(measuredContext)c.txt"
        let folder = cacheFolder()
        let path = folder.map { $0 + "/" + key }
        if let path, let text = readFile(path) {
            let values = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
            if values.count == maxRows, values.first == 1, values.allSatisfy({ $0.isFinite && $0 > 0 }),
               monotonic(values) == values {
                return VerificationCost(relative: values)
            }
        }
        // Four row counts at least, so that `cost(rows:)` extends a short table by the step
        // from three to four rows, where the kernels' tiles fill up.
        let measured = try measure(model: model, maxRows: max(maxRows, 4)).truncated(toRows: maxRows)
        if let folder, let path {
            mkdir(folder, 0o755)
            writeFile(path, measured.relative.map { String($0) }.joined(separator: " ") + "\n")
        }
        return measured
    }

    /// $XDG_CACHE_HOME/taildraft or $HOME/.cache/taildraft, created one level at a time.
    private static func cacheFolder() -> String? {
        if let xdg = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), !xdg.isEmpty {
            return xdg + "/taildraft"
        }
        guard let home = getenv("HOME").map({ String(cString: $0) }), !home.isEmpty else { return nil }
        mkdir(home + "/.cache", 0o755)
        return home + "/.cache/taildraft"
    }

    private static func readFile(_ path: String) -> String? {
        guard let handle = fopen(path, "r") else { return nil }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, handle)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func writeFile(_ path: String, _ text: String) {
        guard let handle = fopen(path, "w") else { return }
        defer { fclose(handle) }
        let bytes = Array(text.utf8)
        _ = fwrite(bytes, 1, bytes.count, handle)
    }
}
