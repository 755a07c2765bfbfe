import Kernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings that choose the next token from the logits.
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature; 0 means greedy (argmax, ties to the lowest token id).
    public var temperature: Float
    /// Keep only the k most likely tokens; 0 turns the filter off.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability sum reaches p; 1 is off.
    public var topP: Float
    /// Drop tokens whose probability is below minP times the most likely token's; 0 is off.
    public var minP: Float
    public var seed: UInt64

    /// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05.
    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.seed = seed
    }

    /// Greedy decoding.
    public static let greedy = SamplingParameters(temperature: 0, topK: 0, topP: 1, minP: 0)

    public var isGreedy: Bool { temperature <= 0 }
}

/// A token and its probability after filtering.
public struct TokenProbability: Sendable, Equatable {
    public var token: Int32
    public var probability: Double
}

/// Chooses tokens from logits: filters in llama.cpp's default order (top-k, top-p, min-p),
/// then applies the temperature and draws from the result with a seeded generator.
///
/// Cost per token: O(V) for greedy and for top-k filtering with small k, O(V log V) when
/// top-k is off and top-p or min-p must rank the whole vocabulary.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var random: RandomGenerator

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        self.random = RandomGenerator(seed: parameters.seed)
    }

    /// Returns the index of the largest logit; ties go to the lowest index. O(V).
    public static func argmax<C: RandomAccessCollection>(_ logits: C) -> Int where C.Element == Float, C.Index == Int {
        withContiguous(logits) { argmax(buffer: $0) }
    }

    /// Returns the distribution the sampler draws from for `logits`: the filtered candidates
    /// with their temperature-scaled probabilities, most likely first. Greedy returns one.
    public func distribution<C: RandomAccessCollection>(_ logits: C) -> [TokenProbability] where C.Element == Float, C.Index == Int {
        Self.withContiguous(logits) { distribution(buffer: $0) }
    }

    /// Chooses the next token for `logits`, advancing the generator unless greedy.
    public mutating func sample<C: RandomAccessCollection>(_ logits: C) -> Int32 where C.Element == Float, C.Index == Int {
        let candidates = distribution(logits)
        if candidates.count == 1 { return candidates[0].token }
        return Self.draw(from: candidates, unit: random.nextUnit())
    }

    /// Returns a uniform draw in [0, 1) from the sampler's generator; speculative
    /// verification uses it for its accept and reject decisions.
    public mutating func nextUnit() -> Double {
        random.nextUnit()
    }

    /// Runs `body` on the logits as one contiguous buffer. The generic entry points funnel
    /// into buffer code, which stays fast when they are called unspecialized from another
    /// module (a generic loop over 49,152 logits then costs milliseconds per token).
    static func withContiguous<C: RandomAccessCollection, R>(_ logits: C, _ body: (UnsafeBufferPointer<Float>) -> R) -> R
    where C.Element == Float, C.Index == Int {
        precondition(!logits.isEmpty, "logits must not be empty")
        if let result = logits.withContiguousStorageIfAvailable(body) { return result }
        return Array(logits).withUnsafeBufferPointer(body)
    }

    /// Returns the first index of the largest value, through the C kernel's vector passes (one
    /// for the maximum, one for its first occurrence). NaN logits are never chosen unless all
    /// are NaN, in which case the result is 0. O(V).
    static func argmax(buffer: UnsafeBufferPointer<Float>) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        return Int(td_argmax(base, Int64(buffer.count)))
    }

    private func distribution(buffer logits: UnsafeBufferPointer<Float>) -> [TokenProbability] {
        if parameters.isGreedy {
            return [TokenProbability(token: Int32(Self.argmax(buffer: logits)), probability: 1)]
        }
        var candidates = Self.ranked(logits, topK: parameters.topK)

        // Top-p and min-p use probabilities at temperature 1, as llama.cpp does.
        let base = Self.softmax(candidates.map { $0.logit }, temperature: 1)
        var keep = candidates.count
        if parameters.topP < 1 {
            var cumulative = 0.0
            for (i, p) in base.enumerated() {
                cumulative += p
                if cumulative >= Double(parameters.topP) { keep = i + 1; break }
            }
        }
        if parameters.minP > 0, let top = base.first {
            let threshold = top * Double(parameters.minP)
            var kept = 1
            while kept < keep && base[kept] >= threshold { kept += 1 }
            keep = kept
        }
        candidates.removeLast(candidates.count - keep)

        let probabilities = Self.softmax(candidates.map { $0.logit }, temperature: parameters.temperature)
        return zip(candidates, probabilities).map { TokenProbability(token: $0.token, probability: $1) }
    }

    /// Draws from `candidates` by inverting the cumulative distribution at `unit` in [0, 1).
    public static func draw(from candidates: [TokenProbability], unit: Double) -> Int32 {
        let total = candidates.reduce(0) { $0 + $1.probability }
        var target = unit * total
        for candidate in candidates {
            target -= candidate.probability
            if target < 0 { return candidate.token }
        }
        return candidates[candidates.count - 1].token
    }

    /// Candidates sorted by logit, descending (ties by lower id), cut to `topK` when positive.
    static func ranked(_ logits: UnsafeBufferPointer<Float>, topK: Int) -> [(token: Int32, logit: Float)] {
        func before(_ a: (token: Int32, logit: Float), _ b: (token: Int32, logit: Float)) -> Bool {
            a.logit > b.logit || (a.logit == b.logit && a.token < b.token)
        }
        if topK <= 0 || topK >= logits.count {
            return logits.indices.map { (Int32($0), logits[$0]) }.sorted(by: before)
        }
        // Keep a sorted list of the best k; most logits fail the first comparison.
        var best: [(token: Int32, logit: Float)] = []
        best.reserveCapacity(topK + 1)
        for i in logits.indices {
            let entry = (token: Int32(i), logit: logits[i])
            if best.count == topK, !before(entry, best[topK - 1]) { continue }
            var position = best.count
            while position > 0 && before(entry, best[position - 1]) { position -= 1 }
            best.insert(entry, at: position)
            if best.count > topK { best.removeLast() }
        }
        return best
    }

    /// Softmax of `logits / temperature` in double precision.
    static func softmax(_ logits: [Float], temperature: Float) -> [Double] {
        guard let maxLogit = logits.max() else { return [] }
        let t = Double(temperature)
        let exps = logits.map { exp((Double($0) - Double(maxLogit)) / t) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }
}
