/// A source of draft trees for speculative decoding.
///
/// The decoder calls `propose` once per step and `observe` after verification. Drafters are
/// used from one thread at a time.
public protocol Drafter: AnyObject {
    /// A short name for statistics and the CLI, e.g. "lookup".
    var name: String { get }

    /// Returns a tree rooted at `context.last` (the newest token, not yet verified) with at
    /// most `budget` drafted nodes and at most `maxDepth` levels below the root. `context`
    /// holds the prompt and every token generated so far.
    func propose(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree

    /// Reports what verification accepted: the drafted tokens on the accepted path, and the
    /// token the target chose after them.
    func observe(context: [Int32], accepted: [Int32], next: Int32)
}

extension Drafter {
    public func observe(context: [Int32], accepted: [Int32], next: Int32) {}
}
