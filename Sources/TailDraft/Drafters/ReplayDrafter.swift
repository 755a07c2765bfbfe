/// A drafter that replays a recorded token sequence: the oracle of speculative decoding
/// tests, and with `corrupt` an adversary.
///
/// `recording` contains a prompt and a plain-decoding continuation of it. When the context is a
/// prefix of the recording, the drafter proposes the recorded continuation as a chain, or as
/// a tree where a wrong sibling precedes each true token (`wrongFirst`). `corrupt` makes
/// every drafted token wrong (the recorded token + 1), so nothing is ever accepted.
public final class ReplayDrafter: Drafter {
    public let name: String
    public let recording: [Int32]
    public let vocabularySize: Int
    public let corrupt: Bool
    public let wrongFirst: Bool

    public init(recording: [Int32], vocabularySize: Int, corrupt: Bool = false, wrongFirst: Bool = false) {
        self.recording = recording
        self.vocabularySize = vocabularySize
        self.corrupt = corrupt
        self.wrongFirst = wrongFirst
        name = corrupt ? "adversarial" : "oracle"
    }

    public func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        var tree = DraftTree(root: context.last!)
        guard context.count <= recording.count, Array(recording[..<context.count]) == context else { return tree }
        var node = 0
        for token in recording[context.count...].prefix(maxDepth) {
            let wrong = Int32((Int(token) + 1) % vocabularySize)
            if corrupt {
                guard tree.draftedCount < budget else { break }
                node = tree.addChild(wrong, to: node)
                continue
            }
            if wrongFirst {
                guard tree.draftedCount + 2 <= budget else { break }
                tree.addChild(wrong, to: node)
            } else {
                guard tree.draftedCount < budget else { break }
            }
            node = tree.addChild(token, to: node)
        }
        return tree
    }
}
