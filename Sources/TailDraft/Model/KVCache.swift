import Kernels

/// Keys and values of one sequence for every layer, stored as half or single precision.
///
/// Layout: for layer l, slot s holds `kvDim` key elements at `keys(layer: l)` plus
/// `s * bytesPerSlot` bytes, and the same for values. Slots `0..<count` hold the committed
/// tokens in position order; a forward pass appends its rows after them, and `truncate(to:)`
/// or `keepSlots(_:from:)` roll back or compact speculative rows. Memory:
/// 2 * layers * capacity * kvDim * `precision.bytesPerElement` bytes, allocated once. Not
/// thread-safe: one forward pass at a time may use a cache.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let kvDim: Int
    /// Maximum number of slots (the context length), in tokens.
    public let capacity: Int
    /// Number of committed slots.
    public private(set) var count = 0
    /// Precision of the stored keys and values.
    public let precision: Precision

    /// Element type of the stored keys and values.
    public enum Precision: Sendable {
        /// IEEE half floats (2 bytes), rounded to nearest even: llama.cpp's default F16 cache,
        /// so greedy output follows llama.cpp's most closely. Finite values beyond the half
        /// range saturate to +-65504 instead of becoming infinite.
        case float16
        /// Single-precision floats (4 bytes), stored as computed.
        case float32

        /// Bytes of one stored key or value element.
        public var bytesPerElement: Int {
            switch self {
            case .float16: return 2
            case .float32: return 4
            }
        }

        /// The td_type code that td_attention takes for this element type.
        var kernelType: Int32 {
            switch self {
            case .float16: return Int32(TD_TYPE_F16.rawValue)
            case .float32: return Int32(TD_TYPE_F32.rawValue)
            }
        }
    }

    private let storage: UnsafeMutableRawPointer

    public init(config: ModelConfig, capacity: Int, precision: Precision = .float16) {
        precondition(capacity > 0, "KV cache capacity must be positive, got \(capacity)")
        self.precision = precision
        layerCount = config.layerCount
        kvDim = config.kvDim
        self.capacity = capacity
        let bytes = Self.byteCount(config: config, capacity: capacity, precision: precision)
        storage = .allocate(byteCount: bytes, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    }

    deinit { storage.deallocate() }

    /// Bytes a cache of `capacity` tokens holds for `config`: two tensors (keys and values)
    /// per layer of capacity * kvDim elements each.
    public static func byteCount(config: ModelConfig, capacity: Int, precision: Precision) -> Int {
        2 * config.layerCount * capacity * config.kvDim * precision.bytesPerElement
    }

    /// Bytes of memory held.
    public var byteCount: Int { 2 * layerCount * capacity * bytesPerSlot }

    /// Bytes of one slot of one layer's keys (or values): kvDim elements.
    var bytesPerSlot: Int { kvDim * precision.bytesPerElement }

    /// Start of layer `layer`'s keys: `capacity` slots of `bytesPerSlot` bytes.
    func keys(layer: Int) -> UnsafeMutableRawPointer {
        storage + (2 * layer) * capacity * bytesPerSlot
    }

    /// Start of layer `layer`'s values, laid out as `keys(layer:)`.
    func values(layer: Int) -> UnsafeMutableRawPointer {
        storage + (2 * layer + 1) * capacity * bytesPerSlot
    }

    /// Stores `kvDim` floats from `source` into slot `slot` of `destination` (a `keys(layer:)`
    /// or `values(layer:)` pointer), converted to the cache's precision.
    func store(_ source: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer, slot: Int) {
        let target = destination + slot * bytesPerSlot
        switch precision {
        case .float16:
            let halves = target.assumingMemoryBound(to: td_fp16.self)
            check(td_convert_to_half(source, halves, Int64(kvDim)), "td_convert_to_half")
        case .float32:
            target.assumingMemoryBound(to: Float.self).update(from: source, count: kvDim)
        }
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
    /// Slots are copied as stored bytes, so kept keys and values are unchanged bit for bit.
    /// Cost: O(layers * kept * kvDim) copies.
    public func keepSlots(_ kept: [Int], from start: Int) {
        precondition(start >= 0 && start <= count, "keepSlots start \(start) outside 0...\(count)")
        var previous = start - 1
        for slot in kept {
            precondition(slot > previous && slot < count, "keepSlots needs increasing slots in \(start)..<\(count), got \(kept)")
            previous = slot
        }
        let slotBytes = bytesPerSlot
        for layer in 0..<layerCount {
            for (index, slot) in kept.enumerated() where slot != start + index {
                let target = (start + index) * slotBytes, source = slot * slotBytes
                (keys(layer: layer) + target).copyMemory(from: keys(layer: layer) + source, byteCount: slotBytes)
                (values(layer: layer) + target).copyMemory(from: values(layer: layer) + source, byteCount: slotBytes)
            }
        }
        count = start + kept.count
    }
}
