#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels
import TailDraft

/// `taildraft-bench`: speed measurements, apart from the tests. Each figure is the median of
/// several interleaved rounds, printed with the CPU model and the kernel ISA path.
let usage = """
Usage: taildraft-bench decode --model PATH [--threads N] [--rounds N] [--json]

Measures prefill speed for 128- and 512-token prompts and decode speed for 128 generated
tokens, in tokens per second, at 1 and 2 threads (or only N). Rounds alternate between
thread counts so a busy machine affects each setting alike. Prints the median and the
spread (min..max) over the rounds, the CPU model, the ISA path and the peak resident memory.

Options:
  --model PATH   GGUF model file (required).
  --threads N    Measure only N threads (default: 1 and 2).
  --rounds N     Rounds per measurement (default 5).
  --json         Print one JSON object instead of a table.
"""

func fail(_ message: String) -> Never {
    Console.error("error: \(message)")
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first, command != "--help", command != "-h", command != "help" else {
    print(usage)
    exit(arguments.isEmpty ? 2 : 0)
}
guard command == "decode" else { fail("unknown benchmark '\(command)'; the benchmarks are: decode") }
arguments.removeFirst()

var modelPath: String?
var threadCounts = [1, 2]
var rounds = 5
var json = false
var index = 0
while index < arguments.count {
    let argument = arguments[index]
    func value() -> String {
        index += 1
        guard index < arguments.count else { fail("option \(argument) needs a value") }
        return arguments[index]
    }
    switch argument {
    case "--model": modelPath = value()
    case "--threads":
        let text = value()
        guard let n = Int(text), (1...256).contains(n) else { fail("invalid value '\(text)' for --threads: expected an integer in 1...256") }
        threadCounts = [n]
    case "--rounds":
        let text = value()
        guard let n = Int(text), (1...100).contains(n) else { fail("invalid value '\(text)' for --rounds: expected an integer in 1...100") }
        rounds = n
    case "--json": json = true
    case "--help", "-h": print(usage); exit(0)
    default: fail("unknown option '\(argument)'; see 'taildraft-bench --help'")
    }
    index += 1
}
guard let modelPath else { fail("missing required option --model") }

do {
    let report = try DecodeBenchmark(modelPath: modelPath, threadCounts: threadCounts, rounds: rounds).run(progress: !json)
    print(json ? report.json() : report.table())
} catch {
    fail("\(error)")
}
