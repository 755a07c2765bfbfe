/// Keys and values of one sequence for every layer, in float32 storage.
///
/// Layout: for layer l, slot s holds `kvDim` key floats at `keys(layer: l) + s * kvDim` and
/// the same for values. Slots `0..<count` hold the committed tokens in position order; a
/// forward pass appends its rows after them, and `truncate(to:)` or `keepSlots(_:from:)`
/// roll back or compact speculative rows. Memory: 2 * layers * capacity * kvDim * 4 bytes,
/// allocated once. Not thread-safe: one forward pass at a time may use a cache.
///
/// NOTE: `.float16` precision stores half-precision values in float32 slots; true float16
/// storage would halve the memory but needs half-precision loads in each ISA's attention.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let kvDim: Int
    /// Maximum number of slots (the context length), in tokens.
    public let capacity: Int
    /// Number of committed slots.
    public private(set) var count = 0
    /// Precision of the stored keys and values.
    public let precision: Precision

    /// Rounding applied to keys and values when they are stored.
    public enum Precision: Sendable {
        /// Rounded to half precision, the values of llama.cpp's default F16 cache; greedy
        /// output then follows llama.cpp's most closely.
        case float16
        /// Stored as computed.
        case float32
    }

    private let storage: UnsafeMutablePointer<Float>

    public init(config: ModelConfig, capacity: Int, precision: Precision = .float16) {
        precondition(capacity > 0, "KV cache capacity must be positive, got \(capacity)")
        self.precision = precision
        layerCount = config.layerCount
        kvDim = config.kvDim
        self.capacity = capacity
        let floats = 2 * layerCount * capacity * kvDim
        storage = .allocate(capacity: floats)
        storage.initialize(repeating: 0, count: floats)
    }

    deinit { storage.deallocate() }

    /// Bytes of memory held.
    public var byteCount: Int { 2 * layerCount * capacity * kvDim * MemoryLayout<Float>.size }

    func keys(layer: Int) -> UnsafeMutablePointer<Float> {
        storage + (2 * layer) * capacity * kvDim
    }

    func values(layer: Int) -> UnsafeMutablePointer<Float> {
        storage + (2 * layer + 1) * capacity * kvDim
    }

    /// Marks `added` more slots as committed (called by the forward pass after it wrote them).
    func commit(_ added: Int) {
        precondition(count + added <= capacity, "KV cache overflow: \(count) + \(added) > \(capacity)")
        count += added
    }

    /// Drops every slot from `newCount` on. O(1).
    public func truncate(to newCount: Int) {
        precondition(newCount >= 0 && newCount <= count, "cannot truncate KV cache of \(count) slots to \(newCount)")
        count = newCount
    }

    /// Keeps slots `0..<start` and then the listed slots (increasing, all >= start), moved down
    /// to `start, start + 1, ...`; drops the rest. Used to commit an accepted path of a tree.
    /// Cost: O(layers * kept * kvDim) copies.
    public func keepSlots(_ kept: [Int], from start: Int) {
        precondition(start >= 0 && start <= count, "keepSlots start \(start) outside 0...\(count)")
        var previous = start - 1
        for slot in kept {
            precondition(slot > previous && slot < count, "keepSlots needs increasing slots in \(start)..<\(count), got \(kept)")
            previous = slot
        }
        for layer in 0..<layerCount {
            for (index, slot) in kept.enumerated() where slot != start + index {
                let target = (start + index) * kvDim, source = slot * kvDim
                (keys(layer: layer) + target).update(from: keys(layer: layer) + source, count: kvDim)
                (values(layer: layer) + target).update(from: values(layer: layer) + source, count: kvDim)
            }
        }
        count = start + kept.count
    }
}
