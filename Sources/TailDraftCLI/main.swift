#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TailDraft

// libomp reads this when its first parallel region starts. A waiting worker then spins
// instead of yielding its core, which Linux would give to the idle-priority drafter trainer
// until its next tick (see `Transformer.keepWorkersSpinning`). A value the user set is kept.
setenv("KMP_USE_YIELD", "0", 0)

let arguments = Array(CommandLine.arguments.dropFirst())
let command = arguments.first ?? "help"
let rest = Array(arguments.dropFirst())

do {
    try KernelPath.validateEnvironment()
    switch command {
    case "generate":
        try GenerateCommand.run(rest)
    case "rollout":
        try RolloutCommand.run(rest)
    case "train-drafter":
        try TrainDrafterCommand.run(rest)
    case "tokenize":
        try TokenizeCommand.run(rest)
    case "info":
        try InfoCommand.run(rest)
    case "help", "--help", "-h":
        switch rest.first {
        case "generate": print(Help.generate)
        case "rollout": print(Help.rollout)
        case "train-drafter": print(Help.trainDrafter)
        case "tokenize": print(Help.tokenize)
        case "info": print(Help.info)
        case nil: print(Help.main)
        case let other?:
            throw UsageError(description: "unknown command '\(other)'; the commands are generate, rollout, train-drafter, tokenize, info and help")
        }
    case "version", "--version":
        print("taildraft \(TailDraftVersion.current)")
    default:
        throw UsageError(description: "unknown command '\(command)'; the commands are generate, rollout, train-drafter, tokenize, info and help")
    }
} catch {
    Console.error("error: \(SwappedFileMessage.message(for: error, command: command) ?? "\(error)")")
    exit(error is UsageError ? 2 : 1)
}
// A command that finished cleanly after Ctrl-C still reports the interruption, as shells do.
if Interrupt.requested { exit(130) }
