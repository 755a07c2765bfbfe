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

    /// Returns a tree as `propose` does, for a step whose draft is not verified. With
    /// speculation switched off, the gate only scores the tree's first chain against the
    /// target's tokens (see `SpeculationGate`). The default calls `propose`. A drafter can
    /// leave out costly parts that never lead the first chain.
    func proposeShadow(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree

    /// Reports what verification accepted: the drafted tokens on the accepted path, and the
    /// token the target chose after them.
    func observe(context: [Int32], accepted: [Int32], next: Int32)

    /// Whether the decoder passes the target's hidden states to `observeHidden`; gathering
    /// them costs a copy of H floats per committed token. False by default.
    var observesHiddenStates: Bool { get }

    /// Receives the target's final hidden states (after its output norm, H floats per token,
    /// row-major) of `tokens`, which the target has just written to its KV cache at positions
    /// `startPosition`, `startPosition + 1`, ... Called after each prefill chunk and after each
    /// verification with the root and the accepted path. A `startPosition` below the end of
    /// earlier calls means the sequence restarted (0) or was rolled back there.
    func observeHidden(tokens: ArraySlice<Int32>, hidden: ArraySlice<Float>, startPosition: Int)

    /// Steps between the shadow drafts the decoder requests, only to score them, while the
    /// gate has switched speculation off. The default 1 suits drafters that cost microseconds.
    /// A drafter whose proposals cost a noticeable part of a target step returns more.
    var shadowInterval: Int { get }

    /// Returns the drafter's own estimate of its recent first-draft accuracy (the share of
    /// steps whose first drafted token would be the target's), or nil when it has none. A
    /// learned drafter reports what its trainer measured before training on each new position.
    /// The default is nil. The call may take a lock, so callers make it when they need the
    /// estimate rather than every step.
    func recentAccuracy() -> Double?
}

extension Drafter {
    public func proposeShadow(context: [Int32], budget: Int, maxDepth: Int) -> DraftTree {
        propose(context: context, budget: budget, maxDepth: maxDepth)
    }
    public func observe(context: [Int32], accepted: [Int32], next: Int32) {}
    public var observesHiddenStates: Bool { false }
    public func observeHidden(tokens: ArraySlice<Int32>, hidden: ArraySlice<Float>, startPosition: Int) {}
    public var shadowInterval: Int { 1 }
    public func recentAccuracy() -> Double? { nil }
}
