import Synchronization

/// A lock-free single-producer, single-consumer ring of fixed-size records: a small header
/// plus `payloadCount` floats each, in slots allocated once at creation.
///
/// `push` never blocks and never allocates: when the ring is full the record is dropped and
/// counted in `dropped`. One thread may push and one other thread may pop at the same time;
/// `dropped` and `count` may be read from any thread.
///
/// Ordering: the producer publishes a slot with a releasing store of `tail` after writing it,
/// and the consumer frees it with a releasing store of `head` after reading it; each side
/// reads the other's index with an acquiring load.
public final class SPSCRing<Header: BitwiseCopyable>: @unchecked Sendable {
    /// Maximum number of records in the ring.
    public let capacity: Int
    /// Floats of payload per record.
    public let payloadCount: Int

    @usableFromInline let headers: UnsafeMutablePointer<Header>
    @usableFromInline let payloads: UnsafeMutablePointer<Float>
    /// Index of the next record to pop; only the consumer stores it.
    @usableFromInline let head = Atomic<Int>(0)
    /// Index of the next record to push; only the producer stores it.
    @usableFromInline let tail = Atomic<Int>(0)
    @usableFromInline let droppedCount = Atomic<Int>(0)

    /// Creates a ring of `capacity` records, allocating `capacity * payloadCount` floats.
    public init(capacity: Int, payloadCount: Int) {
        precondition(capacity >= 1, "ring capacity must be at least 1, got \(capacity)")
        precondition(payloadCount >= 0, "payload size must not be negative, got \(payloadCount)")
        self.capacity = capacity
        self.payloadCount = payloadCount
        headers = .allocate(capacity: capacity)
        payloads = .allocate(capacity: max(1, capacity * payloadCount))
        payloads.initialize(repeating: 0, count: max(1, capacity * payloadCount))
    }

    deinit {
        headers.deallocate()
        payloads.deallocate()
    }

    /// Records dropped because the ring was full.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }

    /// Records waiting to be popped (a snapshot; it may change at once).
    public var count: Int { tail.load(ordering: .acquiring) - head.load(ordering: .acquiring) }

    /// Appends a record, copying `payload` (exactly `payloadCount` floats). Producer only.
    /// Returns false, and counts a drop, when the ring is full. O(payloadCount).
    @inlinable @discardableResult
    public func push(_ header: Header, payload: UnsafePointer<Float>) -> Bool {
        let t = tail.load(ordering: .relaxed)
        guard t - head.load(ordering: .acquiring) < capacity else {
            droppedCount.add(1, ordering: .relaxed)
            return false
        }
        let slot = t % capacity
        headers[slot] = header
        (payloads + slot * payloadCount).update(from: payload, count: payloadCount)
        tail.store(t + 1, ordering: .releasing)
        return true
    }

    /// Passes the oldest record to `body`, then frees its slot. Consumer only. The payload
    /// pointer is valid only inside `body`. Returns false when the ring is empty.
    @inlinable @discardableResult
    public func pop(_ body: (Header, UnsafePointer<Float>) -> Void) -> Bool {
        let h = head.load(ordering: .relaxed)
        guard h < tail.load(ordering: .acquiring) else { return false }
        let slot = h % capacity
        body(headers[slot], UnsafePointer(payloads + slot * payloadCount))
        head.store(h + 1, ordering: .releasing)
        return true
    }
}
