import Foundation
import Synchronization
import Testing
@testable import TailDraft

/// The ring between the decode loop and the trainer.
@Suite struct SPSCRingTests {
    @Test func fullRingDropsAndCounts() {
        let ring = SPSCRing<Int32>(capacity: 4, payloadCount: 2)
        for value in 0..<6 {
            let payload: [Float] = [Float(value), -Float(value)]
            #expect(ring.push(Int32(value), payload: payload) == (value < 4), "push \(value)")
        }
        #expect(ring.dropped == 2)
        #expect(ring.count == 4)
        var popped: [Int32] = []
        while ring.pop({ header, payload in
            #expect(payload[0] == Float(header))
            #expect(payload[1] == -Float(header))
            popped.append(header)
        }) {}
        #expect(popped == [0, 1, 2, 3], "records come out in push order")
        #expect(ring.push(9, payload: [9, -9]), "popping frees slots")
    }

    /// One producer and one consumer thread race through a small ring many times around:
    /// every record arrives intact and in order, and arrivals plus drops account for all.
    @Test func concurrentProducerAndConsumerKeepRecordsIntact() {
        let total = 200_000
        let ring = SPSCRing<Int64>(capacity: 64, payloadCount: 5)
        let producer = BackgroundThread {
            var payload = [Float](repeating: 0, count: 5)
            for index in 0..<total {
                for lane in 0..<5 { payload[lane] = Float(index % 1_000_003) + Float(lane) * 0.25 }
                ring.push(Int64(index), payload: payload)
            }
        }
        var received = 0, previous: Int64 = -1, corrupt = 0, disordered = 0
        let deadline = Date().addingTimeInterval(60)
        while received + ring.dropped < total && Date() < deadline {
            let got = ring.pop { header, payload in
                if header <= previous { disordered += 1 }
                previous = header
                for lane in 0..<5 where payload[lane] != Float(Int(header) % 1_000_003) + Float(lane) * 0.25 { corrupt += 1 }
            }
            if got { received += 1 }
        }
        producer.join()
        while ring.pop({ _, _ in }) { received += 1 }
        #expect(received + ring.dropped == total, "received \(received), dropped \(ring.dropped)")
        #expect(corrupt == 0)
        #expect(disordered == 0)
        #expect(received > 0)
    }
}

/// The background trainer: training from recorded positions, snapshots, priority, and exact
/// output while weights change under the decoder.
@Suite(.serialized) struct DrafterTrainerTests {
    @Test func trainerTrainsOnRecordedPositionsAndPosts() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let initial = try DrafterWeights.random(config: LearnedDrafterTests.config, target: target, seed: 2)
                var options = DrafterTrainerOptions()
                options.windowLength = 8
                options.publishEverySteps = 2
                options.maxEpochs = 2
                let trainer = DrafterTrainer(initial: initial, target: target, options: options)
                #expect(!trainer.runOnce(), "nothing to train on yet")

                let tokens = LearnedDrafterTests.prompts(count: 1, length: 20, seed: 3)[0]
                let hidden = try LearnedDrafterTests.hiddenStates(engine, tokens)
                trainer.record(tokens: tokens[...], hidden: hidden[...], startPosition: 0)
                // A new sequence closes the first, so its last, shorter window trains too.
                trainer.record(tokens: tokens.prefix(3), hidden: hidden.prefix(3 * LearnedDrafterTests.config.hiddenSize),
                               startPosition: 0)
                // Paused, the trainer takes the positions in but does not train on them.
                trainer.isPaused = true
                #expect(!trainer.runOnce())
                #expect(trainer.statistics.positionsReceived == 23)
                #expect(trainer.statistics.steps == 0)
                trainer.isPaused = false
                var steps = 0
                while trainer.runOnce() && steps < 100 { steps += 1 }
                let statistics = trainer.statistics
                #expect(statistics.positionsReceived == 23)
                #expect(statistics.freshRows == 19, "windows overlap by one position, so each row of the closed sequence is fresh once")
                #expect(statistics.rowsTrained <= 2 * 23 + options.windowLength, "replay stops at the epoch cap")
                #expect(statistics.steps == steps)
                #expect(statistics.snapshotsPosted == steps / 2)
                let posted = try #require(trainer.mailbox.take())
                #expect(posted.version == statistics.snapshotsPosted * 2)
                #expect(trainer.mailbox.take() == nil, "a snapshot is taken once")
            }
        }
    }

    /// The learned drafter's accuracy estimate is the trainer's test-then-train accuracy over
    /// the rows evaluated since the previous estimate, taken once enough rows arrived.
    @Test func recentAccuracyCoversRowsSinceThePreviousEstimate() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let initial = try DrafterWeights.random(config: LearnedDrafterTests.config, target: target, seed: 2)
                #expect(LearnedDrafter(weights: initial, target: target).recentAccuracy() == nil, "no trainer, no estimate")
                var options = DrafterTrainerOptions()
                options.windowLength = 8
                options.maxEpochs = 1
                let trainer = DrafterTrainer(initial: initial, target: target, options: options)
                let drafter = LearnedDrafter(weights: initial, target: target, trainer: trainer)
                drafter.accuracyRows = 10
                #expect(drafter.recentAccuracy() == nil, "no rows evaluated yet")

                func feed(seed: UInt64) throws -> DrafterTrainerStatistics {
                    let tokens = LearnedDrafterTests.prompts(count: 1, length: 20, seed: seed)[0]
                    let hidden = try LearnedDrafterTests.hiddenStates(engine, tokens)
                    trainer.record(tokens: tokens[...], hidden: hidden[...], startPosition: 0)
                    trainer.record(tokens: tokens.prefix(1), hidden: hidden.prefix(LearnedDrafterTests.config.hiddenSize), startPosition: 0)
                    var steps = 0
                    while trainer.runOnce() && steps < 100 { steps += 1 }
                    return trainer.statistics
                }
                let first = try feed(seed: 3)
                #expect(first.freshRows >= 10)
                #expect(drafter.recentAccuracy() == first.freshAccuracy)
                let second = try feed(seed: 5)
                let rows = second.freshRows - first.freshRows
                #expect(rows >= 10)
                #expect(drafter.recentAccuracy() == Double(second.freshMatches - first.freshMatches) / Double(rows),
                        "only the rows after the first estimate count")
            }
        }
    }

    /// A second stream with the same tokens from position 0 is not trained again, and each
    /// fresh window's missed rows are recorded for replay.
    @Test func trainerSkipsRepeatedStreamAndRecordsMisses() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let initial = try DrafterWeights.random(config: LearnedDrafterTests.config, target: target, seed: 4)
                var options = DrafterTrainerOptions()
                options.windowLength = 8
                options.maxEpochs = 2
                let trainer = DrafterTrainer(initial: initial, target: target, options: options)
                let tokens = LearnedDrafterTests.prompts(count: 1, length: 20, seed: 6)[0]
                let hidden = try LearnedDrafterTests.hiddenStates(engine, tokens)
                for stream in [0, 1] {
                    trainer.record(tokens: tokens[...], hidden: hidden[...], startPosition: 0, stream: stream)
                    trainer.endStream(stream)
                }
                var steps = 0
                while trainer.runOnce() && steps < 100 { steps += 1 }
                let statistics = trainer.statistics
                #expect(statistics.positionsReceived == 40)
                #expect(statistics.freshRows == 19, "stream 0's windows are trained")
                #expect(statistics.duplicateRows == 19, "stream 1 repeats them")
                #expect(statistics.rowsTrained <= 2 * (40 - 19) + options.windowLength, "the epoch cap counts only unique rows")
                let misses = trainer.replay.segments.reduce(0) { $0 + $1.misses }
                #expect(misses == statistics.freshRows - statistics.freshMatches)
                #expect(trainer.replay.segments.map(\.windows.count) == [3, 0])
            }
        }
    }

    @Test func trainerThreadRunsPinnedAtIdlePriority() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                var options = DrafterTrainerOptions()
                options.cores = [0]
                let trainer = DrafterTrainer(initial: try .random(config: LearnedDrafterTests.config, target: target), target: target,
                                             options: options)
                trainer.start()
                trainer.stop()
                #expect(trainer.statistics.priority == .idle)
                #expect(trainer.statistics.steps == 0, "nothing was recorded, so nothing was trained")
            }
        }
    }

    @Test func backgroundThreadLowersItsPriority() {
        let result = Mutex<BackgroundThread.Priority?>(nil)
        let thread = BackgroundThread {
            let priority = BackgroundThread.lowerCurrentPriority()
            result.withLock { $0 = priority }
        }
        thread.join()
        #expect(result.withLock { $0 } == .idle)
    }

    /// The trainer posts new weights after every step while generations run; the drafter
    /// adopts them between steps, and the output stays plain greedy decoding's.
    @Test func outputStaysExactWhileWeightsChange() throws {
        try KernelGate.run {
            try withTinyEngine(LearnedDrafterTests.spec) { engine in
                let target = DrafterTarget(model: engine.model)
                let initial = try DrafterWeights.random(config: LearnedDrafterTests.config, target: target, seed: 12)
                var options = DrafterTrainerOptions()
                options.windowLength = 12
                options.publishEverySteps = 1
                options.maxEpochs = 50
                // Normal priority, so a loaded test machine cannot starve the trainer.
                options.idlePriority = false
                let trainer = DrafterTrainer(initial: initial, target: target, options: options)
                let drafter = LearnedDrafter(weights: initial, target: target, trainer: trainer)
                trainer.start()
                defer { trainer.stop() }

                let prompts = LearnedDrafterTests.prompts(count: 4, length: 8, seed: 40)
                let references = try prompts.map { try plainGreedy(engine, $0, maxTokens: 40).tokenIds }
                let deadline = Date().addingTimeInterval(60)
                var rounds = 0
                repeat {
                    for (prompt, reference) in zip(prompts, references) {
                        let result = try speculativeGreedy(engine, prompt, drafter: drafter, maxTokens: 40, budget: 4, maxDepth: 4)
                        #expect(result.tokenIds == reference, "round \(rounds), weights version \(drafter.weights.version)")
                    }
                    rounds += 1
                } while (drafter.weightSwaps < 3 || rounds < 2) && Date() < deadline
                #expect(drafter.weightSwaps >= 3, "the drafter adopted \(drafter.weightSwaps) snapshots in \(rounds) rounds")
                #expect(trainer.statistics.steps > 0)
            }
        }
    }
}
