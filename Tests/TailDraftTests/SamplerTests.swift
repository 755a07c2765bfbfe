import Kernels
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import TailDraft

@Suite struct SamplerTests {
    @Test func temperatureZeroPicksLowestIdOnTie() {
        let sampler = Sampler(SamplingParameters(temperature: 0, topK: 40, topP: 0.9, minP: 0.05, seed: 7))
        let logits: [Float] = [1, 5, 3, 5, -2]
        #expect(sampler.distribution(logits) == [TokenProbability(token: 1, probability: 1)])
    }

    @Test(arguments: [Float(1e-6), 1e-3])
    func tinyTemperatureIsFiniteAndPeaked(_ temperature: Float) {
        var sampler = Sampler(SamplingParameters(temperature: temperature, topK: 0, topP: 1, minP: 0, seed: 3))
        let logits: [Float] = [0.5, 2.0, 1.0, 1.99]
        let distribution = sampler.distribution(logits)
        #expect(distribution.allSatisfy { $0.probability.isFinite })
        #expect(distribution.first?.token == 1)
        #expect((distribution.first?.probability ?? 0) > 0.99)
        #expect(sampler.sample(logits) == 1)
    }

    @Test func topKKeepsKBestTokens() {
        let sampler = Sampler(SamplingParameters(temperature: 1, topK: 2, topP: 1, minP: 0))
        let tokens = sampler.distribution([0.1, 3, 2, 2.5, -1] as [Float]).map(\.token)
        #expect(tokens == [1, 3])
    }

    @Test func topKZeroKeepsAllTokens() {
        let sampler = Sampler(SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0))
        #expect(sampler.distribution([0.1, 3, 2, 2.5, -1] as [Float]).count == 5)
    }

    @Test func topPKeepsSmallestSetReachingP() {
        // Probabilities at temperature 1: about 0.64, 0.24, 0.09, 0.03.
        let logits: [Float] = [3, 2, 1, 0]
        let sampler = Sampler(SamplingParameters(temperature: 1, topK: 0, topP: 0.85, minP: 0))
        #expect(sampler.distribution(logits).map(\.token) == [0, 1])
    }

    @Test func minPUsesProbabilitiesBeforeTemperature() {
        // At temperature 1 token 2 has 0.09 / 0.64 = 0.14 of the top probability: kept by
        // min-p 0.1 even though temperature 0.1 later makes it far less likely.
        let logits: [Float] = [3, 2, 1, 0]
        let sampler = Sampler(SamplingParameters(temperature: 0.1, topK: 0, topP: 1, minP: 0.1))
        #expect(sampler.distribution(logits).map(\.token) == [0, 1, 2])
    }

    @Test func temperatureScalesAfterFiltering() {
        let logits: [Float] = [2, 1]
        let sampler = Sampler(SamplingParameters(temperature: 0.5, topK: 0, topP: 1, minP: 0))
        let distribution = sampler.distribution(logits)
        let expected = 1 / (1 + exp(-2.0))  // logits 4 and 2 after dividing by 0.5
        #expect(abs(distribution[0].probability - expected) < 1e-12)
    }

    @Test func sameSeedGivesSameTokens() {
        let logits: [Float] = (0..<100).map { Float($0 % 7) * 0.3 }
        let parameters = SamplingParameters(temperature: 1.2, topK: 0, topP: 1, minP: 0, seed: 42)
        var first = Sampler(parameters), second = Sampler(parameters)
        let a = (0..<50).map { _ in first.sample(logits) }
        let b = (0..<50).map { _ in second.sample(logits) }
        #expect(a == b)
        var other = Sampler(SamplingParameters(temperature: 1.2, topK: 0, topP: 1, minP: 0, seed: 43))
        #expect((0..<50).map { _ in other.sample(logits) } != a)
    }

    @Test func sampledFrequenciesFollowDistribution() {
        let logits: [Float] = [log(0.5), log(0.3), log(0.15), log(0.05)]
        var sampler = Sampler(SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0, seed: 11))
        let trials = 40_000
        var counts = [0, 0, 0, 0]
        for _ in 0..<trials { counts[Int(sampler.sample(logits))] += 1 }
        let expected = [0.5, 0.3, 0.15, 0.05].map { $0 * Double(trials) }
        let chiSquare = zip(counts, expected).reduce(0.0) { $0 + pow(Double($1.0) - $1.1, 2) / $1.1 }
        // 16.27 is the 0.999 quantile of chi-square with 3 degrees of freedom.
        #expect(chiSquare < 16.27, "counts \(counts), chi-square \(chiSquare)")
    }

    @Test func randomGeneratorIsReproducible() {
        var a = RandomGenerator(seed: 5), b = RandomGenerator(seed: 5)
        for _ in 0..<100 { #expect(a.next() == b.next()) }
        var unit = RandomGenerator(seed: 9)
        for _ in 0..<1000 {
            let value = unit.nextUnit()
            #expect(value >= 0)
            #expect(value < 1)
        }
    }
}

@Suite struct ArgmaxTests {
    @Test(arguments: [1, 15, 16, 17, 49_152])
    func argmaxFindsFirstMaximum(_ count: Int) {
        var random = SplitMix64(seed: UInt64(count))
        var logits = (0..<count).map { _ in Float.random(in: -10...10, using: &random) }
        let position = count / 2
        logits[position] = 20
        #expect(Sampler.argmax(logits) == position)
        if count > position + 1 {
            logits[count - 1] = 20
            #expect(Sampler.argmax(logits) == position, "ties go to the lowest index")
        }
        #expect(Sampler.argmax(logits[0..<max(1, position)]) == Sampler.argmax(Array(logits[0..<max(1, position)])))
    }

    @Test func argmaxOfSliceIsRelativeToSlice() {
        let logits: [Float] = [9, 1, 2, 7, 3]
        #expect(Sampler.argmax(logits[2...]) == 1)
    }

    @Test func argmaxSkipsNaNAndTiesSignedZeros() {
        #expect(Sampler.argmax([Float.nan, 1, .nan, 3, 3]) == 3)
        #expect(Sampler.argmax([Float](repeating: .nan, count: 40)) == 0)
        #expect(Sampler.argmax([Float](repeating: -.infinity, count: 40)) == 0)
        #expect(Sampler.argmax([-1, -0.0, 0, -2]) == 1)
        var long = [Float](repeating: -5, count: 100)
        long[70] = .nan
        long[90] = 4
        #expect(Sampler.argmax(long) == 90)
    }

    /// Every kernel path picks the same index: the vector passes and the scalar loop.
    @Test(arguments: [1, 16, 31, 32, 33, 100, 49_152])
    func argmaxPathsAgree(_ count: Int) {
        var random = SplitMix64(seed: 0xA26 &+ UInt64(count))
        // Few distinct values, so the maximum repeats and the first occurrence matters.
        let logits = (0..<count).map { _ in Float(Int.random(in: -20...20, using: &random)) / 4 }
        KernelGate.run {
            let indices = KernelGate.isaPaths.map { isa -> Int64 in
                KernelGate.select(isa)
                return td_argmax(logits, Int64(count))
            }
            let expected = logits.firstIndex(of: logits.max()!)!
            for (isa, index) in zip(KernelGate.isaPaths, indices) {
                #expect(index == Int64(expected), "ISA \(KernelGate.name(isa))")
            }
        }
    }
}
