import Testing
@testable import TailDraft

/// Proposes a fixed chain after whatever context it gets, and counts its proposals.
final class ChainDrafter: Drafter {
    let name = "chain"
    var chain: [Int32]
    /// What `recentAccuracy` reports.
    var accuracy: Double?
    private(set) var proposals = 0

    init(_ chain: [Int32]) { self.chain = chain }

    func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        proposals += 1
        return DraftTree(root: context.last!, chain: Array(chain.prefix(min(budget, maxDepth))))
    }

    func recentAccuracy() -> Double? { accuracy }
}

/// `AutoDrafter` merging another drafter's branches: the merged tree's shape, the merge and
/// drop decisions on planted acceptance, and exact output on a tiny model.
@Suite(.serialized) struct AutoDrafterMergeTests {
    @Test func mergedTreeKeepsBudgetAndSharedPaths() {
        var own = DraftTree(root: 1, chain: [2, 3, 4, 5])
        own.addChild(9, to: 0)
        let other = DraftTree(root: 1, chain: [2, 7, 8])
        let merged = own.merging(other, budget: 5, reserved: 2)
        #expect(merged.checkInvariants() == nil)
        #expect(merged.draftedCount == 5)
        #expect(merged.matchedLength(of: [2, 3, 4]) == 3, "the own tree keeps its first three drafted nodes")
        #expect(merged.matchedLength(of: [2, 7, 8]) == 3, "the shared token 2 is not repeated, so 7 and 8 fit")
        #expect(merged.matchedLength(of: [9]) == 0, "the own tree's last node gave way to the reserve")
        #expect(own.merging(DraftTree(root: 1), budget: 5, reserved: 2) == own, "an empty tree reserves nothing")
    }

    @Test func matchedLengthStopsAtFirstMiss() {
        let tree = DraftTree(root: 0, chain: [5, 6, 7])
        #expect(tree.matchedLength(of: [5, 6, 8]) == 2)
        #expect(tree.matchedLength(of: [4]) == 0)
        #expect(tree.matchedLength(of: [5, 6, 7, 1]) == 3)
    }

    /// Runs `steps` steps where the target's tokens after each root are `truth`, and the
    /// verifier accepts the longest matched prefix of the proposed tree.
    func run(_ auto: AutoDrafter, steps: Int, truth: [Int32]) {
        for _ in 0..<steps {
            let tree = auto.propose(context: [0], budget: 4, maxDepth: 4)
            let accepted = Array(truth.prefix(tree.matchedLength(of: truth)))
            auto.observe(context: [0], accepted: accepted, next: truth[accepted.count])
        }
    }

    /// Branches that hold the target's tokens are merged after a few trial merges, and
    /// dropped once the chosen drafter's own tree matches as much.
    @Test func mergeAndDropFollowPlantedAcceptance() {
        let own = ChainDrafter([1, 2, 3, 4]), learned = ChainDrafter([5, 6, 7, 8])
        let auto = AutoDrafter(drafters: [own], merging: learned, policy: .init(probeEvery: 4))

        run(auto, steps: 3, truth: [5, 6, 7, 8, 9])
        #expect(learned.proposals == 0, "no trial merge before step 4")
        #expect(!auto.isMerging)

        run(auto, steps: 1, truth: [5, 6, 7, 8, 9])
        #expect(learned.proposals == 1, "a trial merge at step 4")
        #expect(auto.trialSteps == 1)
        #expect(auto.mergedSteps == 1)
        #expect(auto.isMerging, "the trial merge added 2 tokens, so the average \(auto.expectedGain) passes 0.25")
        #expect(auto.merges == 1)

        run(auto, steps: 4, truth: [5, 6, 7, 8, 9])
        #expect(learned.proposals == 5, "merged branches join every step")

        run(auto, steps: 12, truth: [1, 2, 3, 4, 9])
        #expect(!auto.isMerging, "branches that add nothing are dropped; average \(auto.expectedGain)")
        #expect(auto.drops == 1)
        let proposals = learned.proposals
        run(auto, steps: 3, truth: [1, 2, 3, 4, 9])
        #expect(learned.proposals <= proposals + 1, "after the drop only trial merges remain")
    }

    /// Branches that add less than `mergeAbove` per step are never merged, and the trials
    /// that measure them come twice as far apart each time.
    @Test func trialsBackOffWhileGainIsSmall() {
        let own = ChainDrafter([1, 2, 3, 4]), learned = ChainDrafter([1, 2, 7, 8])
        let auto = AutoDrafter(drafters: [own], merging: learned, policy: .init(probeEvery: 2, maxProbeEvery: 16, mergeAbove: 2))
        run(auto, steps: 40, truth: [1, 2, 7, 8, 9])
        // Trials at steps 2, 6, 14 and 30: intervals of 4, 8, then the cap of 16.
        #expect(learned.proposals == 4)
        #expect(!auto.isMerging, "a gain of at most 1 per step stays under 2; average \(auto.expectedGain)")
        run(auto, steps: 32, truth: [1, 2, 7, 8, 9])
        #expect(learned.proposals == 6, "trials at steps 46 and 62, 16 apart")
    }

    /// After trials backed off, branches that start to pay are merged at the next trial.
    @Test func backedOffTrialsStillMergeBranchesThatPay() {
        let own = ChainDrafter([1, 2, 3, 4]), learned = ChainDrafter([1, 2, 3, 4])
        let auto = AutoDrafter(drafters: [own], merging: learned, policy: .init(probeEvery: 2, maxProbeEvery: 16))
        run(auto, steps: 30, truth: [1, 2, 3, 4, 9])
        #expect(!auto.isMerging, "identical branches add nothing")
        learned.chain = [5, 6, 7, 8]
        run(auto, steps: 16, truth: [5, 6, 7, 8, 9])
        #expect(auto.isMerging, "the next trial saw 4 extra tokens; average \(auto.expectedGain)")
    }

    /// Trial merges wait while the merged drafter reports an accuracy below the policy's
    /// minimum, and run again at the first due step after it rises.
    @Test func trialsWaitForTheMinimumAccuracy() {
        let own = ChainDrafter([1, 2, 3, 4]), learned = ChainDrafter([5, 6, 7, 8])
        learned.accuracy = 0.2
        let auto = AutoDrafter(drafters: [own], merging: learned, policy: .init(probeEvery: 2, maxProbeEvery: 4, minAccuracy: 0.3))
        run(auto, steps: 20, truth: [5, 6, 7, 8, 9])
        #expect(learned.proposals == 0)
        #expect(auto.mergedSteps == 0)
        #expect(auto.skippedTrials == 10, "due every 2 steps, since a trial left out does not double the interval")
        learned.accuracy = 0.3
        run(auto, steps: 2, truth: [5, 6, 7, 8, 9])
        #expect(learned.proposals == 1)
        #expect(auto.trialSteps == 1)
        #expect(auto.isMerging, "the trial merge added 2 tokens; average \(auto.expectedGain)")
    }

    /// A shadow draft, which is never verified, comes from the chosen drafter alone. A trial
    /// merge that falls due then waits for the next verified step.
    @Test func shadowDraftsLeaveOutTrialMerges() {
        let own = ChainDrafter([1, 2, 3, 4])
        let learned = ChainDrafter([5, 6, 7, 8])
        let auto = AutoDrafter(drafters: [own], merging: learned, policy: .init(probeEvery: 2))
        for _ in 0..<6 {
            let shadow = auto.proposeShadow(context: [0], budget: 4, maxDepth: 4)
            #expect(shadow.matchedLength(of: [1, 2, 3, 4]) == 4)
            auto.observe(context: [0], accepted: [], next: 5)
        }
        #expect(learned.proposals == 0, "no trial merge in shadow steps")
        #expect(auto.mergedSteps == 0)
        run(auto, steps: 1, truth: [5, 6, 7, 8, 9])
        #expect(learned.proposals == 1, "the trial due since step 2 runs at the first verified step")
        #expect(auto.isMerging)
    }

    /// On a tiny model, an oracle's merged branches rescue a drafter that is never right,
    /// and the output is exactly plain greedy decoding, also with the learned drafter merged.
    @Test func mergedBranchesKeepGreedyOutput() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let prompt = LearnedDrafterTests.prompts(count: 1, length: 9, seed: 41)[0]
                let reference = try plainGreedy(engine, prompt, maxTokens: 60)
                let recording = prompt + reference.tokenIds
                let vocabulary = LearnedDrafterTests.spec.vocabularySize
                let wrong = ReplayDrafter(recording: recording, vocabularySize: vocabulary, corrupt: true)
                let oracle = ReplayDrafter(recording: recording, vocabularySize: vocabulary)
                let auto = AutoDrafter(drafters: [wrong], merging: oracle, policy: .init(probeEvery: 2))
                let result = try speculativeGreedy(engine, prompt, drafter: auto, maxTokens: 60, budget: 6)
                #expect(result.tokenIds == reference.tokenIds)
                #expect(auto.isMerging, "gain \(auto.expectedGain)")
                #expect(auto.merges == 1)
                #expect((result.speculation?.accepted ?? 0) > 0)

                let target = DrafterTarget(model: engine.model)
                let learned = LearnedDrafter(weights: try .random(config: LearnedDrafterTests.config, target: target, seed: 2), target: target)
                let withLearned = AutoDrafter(drafters: [SuffixDrafter()], merging: learned,
                                              policy: .init(probeEvery: 1, mergeAbove: -1, dropBelow: -1))
                #expect(withLearned.observesHiddenStates)
                let second = try speculativeGreedy(engine, prompt, drafter: withLearned, maxTokens: 60, budget: 6)
                #expect(second.tokenIds == reference.tokenIds)
                #expect(withLearned.mergedSteps > 0)
            }
        }
    }
}
