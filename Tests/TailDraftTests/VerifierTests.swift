import Testing
@testable import TailDraft
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The verification rule on a 4-token vocabulary, checked by chi-square against the target p.
@Suite struct VerifierTests {
    static let p: [Double] = [0.5, 0.3, 0.15, 0.05]
    static let q: [Double] = [0.1, 0.1, 0.4, 0.4]
    /// The 0.999 quantile of chi-square with 3 degrees of freedom.
    static let chiSquareLimit = 16.27
    static let trials = 200_000

    /// Runs `trials` verifications of a tree built by `makeTree` and returns how often each
    /// token came out first, and how many trials accepted a drafted token.
    static func run(seed: UInt64, makeTree: (inout RandomGenerator) -> DraftTree) -> (counts: [Int], accepted: Int) {
        let logits = p.map { Float(log($0)) }
        var sampler = Sampler(SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0, seed: seed))
        var drafts = RandomGenerator(seed: seed &+ 1)
        var counts = [0, 0, 0, 0]
        var accepted = 0
        for _ in 0..<trials {
            let tree = makeTree(&drafts)
            let outcome = Verifier.verify(tree: tree, logits: { _ in logits[...] }, sampler: &sampler)
            let first = outcome.acceptedNodes.first.map { tree.tokens[$0] } ?? outcome.next
            counts[Int(first)] += 1
            if !outcome.acceptedNodes.isEmpty { accepted += 1 }
        }
        return (counts, accepted)
    }

    static func chiSquare(_ counts: [Int]) -> Double {
        zip(counts, p).reduce(0) { sum, pair in
            let expected = pair.1 * Double(trials)
            return sum + pow(Double(pair.0) - expected, 2) / expected
        }
    }

    static func sample(_ distribution: [Double], _ random: inout RandomGenerator) -> Int32 {
        var u = random.nextUnit()
        for (token, probability) in distribution.enumerated() {
            u -= probability
            if u < 0 { return Int32(token) }
        }
        return Int32(distribution.count - 1)
    }

    @Test func sampledChildKeepsTargetDistribution() {
        let seed: UInt64 = 10
        let q = Dictionary(uniqueKeysWithValues: Self.q.enumerated().map { (Int32($0.offset), $0.element) })
        let (counts, accepted) = Self.run(seed: seed) { random in
            var tree = DraftTree(root: 0)
            tree.addChild(Self.sample(Self.q, &random), to: 0, probability: 1)
            tree.setSampledDistribution(q, of: 0)
            return tree
        }
        #expect(Self.chiSquare(counts) < Self.chiSquareLimit, "seed \(seed): counts \(counts)")
        // Acceptance is the sum over tokens of min(p, q) = 0.1 + 0.1 + 0.15 + 0.05.
        #expect(abs(Double(accepted) / Double(Self.trials) - 0.40) < 0.01, "seed \(seed): accepted \(accepted)")
    }

    @Test func deterministicChildKeepsTargetDistribution() {
        let seed: UInt64 = 20
        let (counts, accepted) = Self.run(seed: seed) { _ in DraftTree(root: 0, chain: [2]) }
        #expect(Self.chiSquare(counts) < Self.chiSquareLimit, "seed \(seed): counts \(counts)")
        #expect(abs(Double(accepted) / Double(Self.trials) - 0.15) < 0.01, "seed \(seed): accepted \(accepted)")
    }

    @Test func twoDeterministicChildrenKeepTargetDistribution() {
        let seed: UInt64 = 30
        let (counts, accepted) = Self.run(seed: seed) { _ in
            var tree = DraftTree(root: 0)
            tree.addChild(2, to: 0)
            tree.addChild(3, to: 0)
            return tree
        }
        #expect(Self.chiSquare(counts) < Self.chiSquareLimit, "seed \(seed): counts \(counts)")
        #expect(abs(Double(accepted) / Double(Self.trials) - 0.20) < 0.01, "seed \(seed): accepted \(accepted)")
    }

    @Test func twoSampledChildrenKeepTargetDistribution() {
        let seed: UInt64 = 40
        let q = Dictionary(uniqueKeysWithValues: Self.q.enumerated().map { (Int32($0.offset), $0.element) })
        let (counts, _) = Self.run(seed: seed) { random in
            var tree = DraftTree(root: 0)
            tree.addChild(Self.sample(Self.q, &random), to: 0)
            tree.addChild(Self.sample(Self.q, &random), to: 0)
            tree.setSampledDistribution(q, of: 0)
            return tree
        }
        #expect(Self.chiSquare(counts) < Self.chiSquareLimit, "seed \(seed): counts \(counts)")
    }

    @Test func greedyAcceptsOnlyArgmax() {
        let logits: [Float] = [0.1, 2.0, 0.3, 1.9]
        var sampler = Sampler(.greedy)
        var tree = DraftTree(root: 7)
        tree.addChild(3, to: 0)
        let right = tree.addChild(1, to: 0)
        let grandchild = tree.addChild(0, to: right)
        let outcome = Verifier.verify(tree: tree, logits: { node in node == 0 ? logits[...] : [5, 0, 0, 0][...] }, sampler: &sampler)
        #expect(outcome.acceptedNodes == [right, grandchild])
        #expect(outcome.next == 0)
    }

    @Test func treeInvariantsCatchBadTrees() {
        var tree = DraftTree(root: 1, chain: [2, 3])
        #expect(tree.checkInvariants() == nil)
        #expect(tree.positions(rootPosition: 10) == [10, 11, 12])
        #expect(tree.ancestorMask == [[true, false, false], [true, true, false], [true, true, true]])
        tree.addChild(2, to: 0)
        #expect(tree.checkInvariants()?.contains("repeats token 2") == true)
    }
}

@Suite struct SpeculationGateTests {
    static let cost = VerificationCost(relative: [1, 1.4, 1.9, 1.9])

    @Test func rejectedStepsSwitchOffAndMatchingShadowsSwitchOn() {
        var gate = SpeculationGate(maxBudget: 3, cost: Self.cost)
        #expect(gate.budget == 3, "speculation starts with the full budget")
        for _ in 0..<12 { gate.record(depth: 3, accepted: 0) }
        #expect(gate.budget == 0)

        // While off, chains drafted before each plain token are scored against it.
        let tokens: [Int32] = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
        for (index, token) in tokens.enumerated() {
            gate.shadow(Array(tokens[index..<min(tokens.count, index + 3)]))
            gate.observe(token: token)
        }
        #expect(gate.budget == 3, "drafts that would have been accepted switch speculation back on")
    }

    /// With one row extra costing 0.4 and two more costing 0.5 together, a first draft that is
    /// accepted most of the time pays alone, but not with weak second and third drafts. One
    /// accepted half the time gains too little over a plain step to draft at all.
    @Test func budgetFollowsCostAndAcceptanceByDepth() {
        var gate = SpeculationGate(maxBudget: 3, cost: Self.cost)
        for step in 0..<40 { gate.record(depth: 3, accepted: step % 5 == 4 ? 0 : 1) }
        #expect(gate.budget == 1)
        for step in 0..<40 { gate.record(depth: 3, accepted: step % 2 == 0 ? 1 : 0) }
        #expect(gate.budget == 0)
        for _ in 0..<40 { gate.record(depth: 3, accepted: 3) }
        #expect(gate.budget == 3)
    }

    /// With extra rows at 0.16 of a pass, a drafter rejected from the start stops after four
    /// steps at the default start, while a start at 1 (the rollouts') still drafts.
    @Test func defaultStartStopsFailingDrafterSooner() {
        let cheap = VerificationCost(relative: [1, 1.16, 1.32, 1.48])
        var gate = SpeculationGate(maxBudget: 3, cost: cheap)
        var certain = SpeculationGate(maxBudget: 3, cost: cheap, initialAcceptance: 1)
        #expect(gate.budget == 3)
        #expect(certain.budget == 3)
        for _ in 0..<4 {
            gate.record(depth: 3, accepted: 0)
            certain.record(depth: 3, accepted: 0)
        }
        #expect(gate.budget == 0)
        #expect(certain.budget > 0)
    }

    @Test func emptyShadowCountsAsNothingAccepted() {
        var gate = SpeculationGate(maxBudget: 3, cost: Self.cost)
        for _ in 0..<20 { gate.shadow([]) }
        #expect(gate.budget == 0)
    }

    @Test func costTableExtendsLinearly() {
        #expect(Self.cost.cost(rows: 1) == 1)
        #expect(Self.cost.cost(rows: 4) == 1.9)
        #expect(Self.cost.cost(rows: 6) == 1.9)
        let rising = VerificationCost(relative: [1, 1.5, 2])
        #expect(rising.cost(rows: 5) == 3.0)
        let estimated = VerificationCost.estimated(maxRows: 4).relative
        for (index, expected) in [1, 1.33, 1.66, 1.99].enumerated() {
            #expect(abs(estimated[index] - expected) < 1e-12)
        }
    }

    /// A table measured while other work ran can claim that more rows cost less. Such entries
    /// are raised to the cost before them, and none falls below one row's cost.
    @Test func costTableNeverDecreases() throws {
        #expect(VerificationCost.monotonic([1, 0.8, 0.85, 1.3]) == [1, 1, 1, 1.3])
        #expect(VerificationCost.monotonic([1, 1.2, 1.1]) == [1, 1.2, 1.2])

        let model = TinyModel(spec: TinyModelSpec())
        try model.withTransformer { transformer in
            let measured = try KernelGate.run { try VerificationCost.measure(model: transformer, maxRows: 6, context: 16, repeats: 2) }
            #expect(measured.relative.count == 6)
            #expect(measured.relative.first == 1)
            #expect(VerificationCost.monotonic(measured.relative) == measured.relative)
        }
    }
}
