import Testing
@testable import TailDraft

@Suite struct CoreSharingTests {
    @Test func alternatesUntilBothWaysAreMeasured() {
        var sharing = CoreSharing(configuration: .init(tolerance: 0.1, samples: 2))
        var ways: [Bool] = []
        for _ in 0..<4 {
            let handedOver = sharing.handsOver(runningSequences: 1)
            ways.append(handedOver)
            sharing.record(handedOver: handedOver, runningSequences: 1, tokens: 10, seconds: 1)
        }
        #expect(ways == [false, true, false, true])
        #expect(sharing.records[StrategyBandit.bucket(runningSequences: 1)]?.handsOver == true)
    }

    /// One thread fewer keeps the core when it loses more than the tolerance, and hands it
    /// over when it loses less.
    @Test(arguments: [(9.5, true), (8.5, false)])
    func decidesByTolerance(_ sharedTokens: Double, _ expected: Bool) {
        var sharing = CoreSharing(configuration: .init(tolerance: 0.1, samples: 1))
        sharing.record(handedOver: false, runningSequences: 2, tokens: 100, seconds: 10)
        sharing.record(handedOver: true, runningSequences: 2, tokens: Int(sharedTokens * 10), seconds: 10)
        #expect(sharing.records[StrategyBandit.bucket(runningSequences: 2)]?.handsOver == expected)
        #expect(sharing.handsOver(runningSequences: 2) == expected)
    }

    @Test func bucketsDecideSeparately() {
        var sharing = CoreSharing(configuration: .init(tolerance: 0.1, samples: 1))
        sharing.record(handedOver: false, runningSequences: 1, tokens: 10, seconds: 1)
        sharing.record(handedOver: true, runningSequences: 1, tokens: 10, seconds: 1)
        #expect(sharing.handsOver(runningSequences: 1))
        #expect(sharing.records[StrategyBandit.bucket(runningSequences: 4)] == nil)
        #expect(!sharing.handsOver(runningSequences: 4), "an unmeasured bucket starts with all threads")
    }
}
