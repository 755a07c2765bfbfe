import Testing
@testable import TailDraft

/// The epsilon-greedy strategy bandit on synthetic rewards, with seeded randomness.
@Suite struct StrategyBanditTests {
    /// Tokens per second each arm earns in the simulation, by arm index.
    static let rates: [Double] = [100, 140, 90, 180, 120, 60, 150]

    /// Runs `steps` choices at `runningSequences`, rewarding each arm with its rate over a
    /// one-second step, and returns the chosen arms.
    static func simulate(_ bandit: inout StrategyBandit, steps: Int, runningSequences: Int = 1) -> [Int] {
        (0..<steps).map { _ in
            let arm = bandit.choose(runningSequences: runningSequences)
            bandit.record(arm: arm, runningSequences: runningSequences, tokens: Int(rates[arm]), seconds: 1)
            return arm
        }
    }

    @Test func armsAreOffThenEveryDrafterAndBudget() {
        let arms = SpeculationStrategy.arms()
        #expect(arms.map(\.description) == ["off", "lookup/2", "lookup/3", "lookup/5", "suffix/2", "suffix/3", "suffix/5"])
    }

    @Test(arguments: [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (8, 3), (9, 4), (64, 6)])
    func bucketsGrowByPowersOfTwo(_ running: Int, _ bucket: Int) {
        #expect(StrategyBandit.bucket(runningSequences: running) == bucket)
    }

    @Test func bucketLabelsNameTheirRange() {
        #expect((0...3).map { StrategyBandit.label(bucket: $0) } == ["1", "2", "3-4", "5-8"])
    }

    @Test func everyArmIsTriedFirst() {
        var bandit = StrategyBandit(configuration: .init(minimumPulls: 2, seed: 1))
        let first = Self.simulate(&bandit, steps: 14)
        #expect(Set(first) == Set(0..<7))
        for arm in 0..<7 {
            #expect(first.filter { $0 == arm }.count == 2, "arm \(arm) in \(first)")
        }
    }

    @Test func bestArmDominatesAfterExploration() {
        var bandit = StrategyBandit(configuration: .init(epsilon: 0.1, minimumPulls: 2, seed: 7))
        let choices = Self.simulate(&bandit, steps: 1_000)
        let best = choices.dropFirst(14).filter { $0 == 3 }.count
        #expect(best > 850, "the 180 tokens/s arm should be chosen most of the time: \(best) of 986")
        #expect(bandit.bestArm(runningSequences: 1) == 3)
    }

    @Test func explorationIsBounded() {
        var bandit = StrategyBandit(configuration: .init(epsilon: 1, minimumPulls: 2, maxExplorations: 20, seed: 3))
        let choices = Self.simulate(&bandit, steps: 500)
        let bucket = try! #require(bandit.buckets[0])
        #expect(bucket.explorations == 20)
        #expect(choices.dropFirst(14).filter { $0 != 3 }.count == 20, "only the capped explorations leave the best arm")
    }

    @Test func sameSeedMakesSameChoices() {
        var first = StrategyBandit(configuration: .init(epsilon: 0.3, seed: 42))
        var second = StrategyBandit(configuration: .init(epsilon: 0.3, seed: 42))
        var other = StrategyBandit(configuration: .init(epsilon: 0.3, seed: 43))
        let a = Self.simulate(&first, steps: 300)
        #expect(a == Self.simulate(&second, steps: 300))
        #expect(a != Self.simulate(&other, steps: 300), "another seed should explore differently")
    }

    @Test func bucketsLearnSeparately() {
        var bandit = StrategyBandit(configuration: .init(epsilon: 0, seed: 1))
        for _ in 0..<40 {
            let small = bandit.choose(runningSequences: 1)
            bandit.record(arm: small, runningSequences: 1, tokens: small == 5 ? 300 : 100, seconds: 1)
            let large = bandit.choose(runningSequences: 4)
            bandit.record(arm: large, runningSequences: 4, tokens: large == 0 ? 300 : 100, seconds: 1)
        }
        #expect(bandit.bestArm(runningSequences: 1) == 5)
        #expect(bandit.bestArm(runningSequences: 3) == 0)
        #expect(bandit.bestArm(runningSequences: 2) == nil)
    }

    @Test func rewardIsTokensOverTotalTime() {
        var bandit = StrategyBandit(arms: [.off], configuration: .init(seed: 1))
        bandit.record(arm: 0, runningSequences: 1, tokens: 10, seconds: 0.5)
        bandit.record(arm: 0, runningSequences: 1, tokens: 30, seconds: 1.5)
        let record = bandit.buckets[0]!.arms[0]
        #expect(record.pulls == 2)
        #expect(record.reward == 20)
    }
}
