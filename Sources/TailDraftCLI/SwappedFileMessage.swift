import TailDraft

/// Messages for a drafter checkpoint given as the model, or a model given as the drafter,
/// that name the option of the command at hand. The library's own messages for these errors
/// name no option, because `info` and `tokenize` take no drafter at all.
enum SwappedFileMessage {
    /// The commands that take a drafter checkpoint, all as --drafter.
    static let drafterCommands = ["generate", "rollout", "train-drafter"]

    /// Returns the message for `error` as `command` reports it, or nil when `error` is not
    /// about a swapped file.
    static func message(for error: Error, command: String) -> String? {
        switch error as? DrafterError {
        case let .checkpointGivenAsModel(path)?:
            let remedy = drafterCommands.contains(command)
                ? "pass it as --drafter and the model it was trained for as --model"
                : "pass the model it was trained for as --model; 'taildraft \(command)' takes no drafter, " +
                  "but generate, rollout and train-drafter take the checkpoint as --drafter"
            return "\(path) is a learned-drafter checkpoint, not a model; \(remedy)"
        case let .notADrafterCheckpoint(path, found)?:
            return "\(path) is not a drafter checkpoint but \(found); pass a drafter checkpoint as --drafter, " +
                   "or a path where none exists yet to train a new drafter"
        default:
            return nil
        }
    }
}
