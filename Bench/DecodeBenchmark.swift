#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels
import TailDraft

/// One row of results: a test (prefill of n tokens, or decode of n tokens) at a thread count.
struct Measurement {
    var test: String
    var tokens: Int
    var threads: Int
    var summary: Summary
}

struct DecodeReport {
    var cpu: String
    var isa: String
    var model: String
    var measurements: [Measurement]
    var peakResidentBytes: Int
    var fileBytes: Int
    var kvCacheBytes: Int

    func table() -> String {
        var lines = ["cpu: \(cpu)", "isa: \(isa)", "model: \(model)", "",
                     "test          threads   tokens/s (median)   min..max"]
        for m in measurements {
            let name = "\(m.test) \(m.tokens)".padding(13)
            lines.append("\(name) \(String(m.threads).padding(9)) \(decimals(m.summary.median, 1).padding(19)) \(decimals(m.summary.minimum, 1))..\(decimals(m.summary.maximum, 1))")
        }
        lines.append("")
        lines.append("peak resident memory: \(mb(peakResidentBytes)) MB; target at most \(mb(fileBytes + kvCacheBytes + 50_000_000)) MB " +
                     "(file \(mb(fileBytes)) MB + KV cache \(mb(kvCacheBytes)) MB + 50 MB for everything else)")
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        let rows = measurements.map { m in
            "{\"test\": \"\(m.test)\", \"tokens\": \(m.tokens), \"threads\": \(m.threads), " +
            "\"\(m.test)_tokens_per_second\": \(m.summary.median), \"min\": \(m.summary.minimum), \"max\": \(m.summary.maximum), " +
            "\"samples\": [\(m.summary.samples.map { String($0) }.joined(separator: ", "))]}"
        }
        return "{\"cpu\": \"\(cpu)\", \"isa\": \"\(isa)\", \"model\": \"\(model)\", \"peak_resident_bytes\": \(peakResidentBytes), " +
               "\"results\": [\(rows.joined(separator: ", "))]}"
    }

    private func mb(_ bytes: Int) -> Int { bytes / 1_000_000 }
}

/// Prefill and decode speed of the plain forward pass, like llama-bench's pp and tg tests:
/// prompts of random token ids, and decode steps that each feed one token.
struct DecodeBenchmark {
    let modelPath: String
    let threadCounts: [Int]
    let rounds: Int
    let prefillLengths = [128, 512]
    let decodeLength = 128

    func run(progress: Bool) throws -> DecodeReport {
        let file = try GGUFFile.openModel(path: modelPath)
        let config = try ModelConfig(file: file)
        let model = Transformer(config: config, weights: try ModelWeights(file: file, config: config), threads: 1)
        let cache = KVCache(config: config, capacity: 1024)
        var random = RandomGenerator(seed: 1234)
        let prompt = (0..<512).map { _ in Int32(random.next() % UInt64(config.vocabularySize)) }

        // Warm-up: page the weights in and size the scratch buffers.
        _ = try model.forward(.causal(tokens: Array(prompt.prefix(512)), startPosition: 0, logitRows: [511]), caches: [cache])
        cache.truncate(to: 0)

        var samples: [String: [Double]] = [:]
        for round in 0..<rounds {
            for threads in threadCounts {
                model.threads = threads
                for length in prefillLengths {
                    cache.truncate(to: 0)
                    let start = now()
                    _ = try model.forward(.causal(tokens: Array(prompt.prefix(length)), startPosition: 0, logitRows: [length - 1]), caches: [cache])
                    samples["prefill/\(length)/\(threads)", default: []].append(Double(length) / (now() - start))
                }
                cache.truncate(to: 0)
                var token = prompt[0]
                let start = now()
                for step in 0..<decodeLength {
                    let output = try model.forward(.causal(tokens: [token], startPosition: step, logitRows: [0]), caches: [cache])
                    token = Int32(Sampler.argmax(output.logits))
                }
                samples["decode/\(decodeLength)/\(threads)", default: []].append(Double(decodeLength) / (now() - start))
            }
            if progress { Console.error("round \(round + 1)/\(rounds) done") }
        }

        var measurements: [Measurement] = []
        for threads in threadCounts {
            for length in prefillLengths {
                measurements.append(Measurement(test: "prefill", tokens: length, threads: threads, summary: Summary(samples: samples["prefill/\(length)/\(threads)"]!)))
            }
            measurements.append(Measurement(test: "decode", tokens: decodeLength, threads: threads, summary: Summary(samples: samples["decode/\(decodeLength)/\(threads)"]!)))
        }
        return DecodeReport(cpu: cpuModel(), isa: String(cString: td_isa_name(td_isa_active())), model: modelPath,
                            measurements: measurements, peakResidentBytes: peakResidentBytes(),
                            fileBytes: file.fileSize, kvCacheBytes: cache.byteCount)
    }
}
