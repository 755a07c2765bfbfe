/// Keys and values of the drafter's single layer for one sequence: `kvDim` floats per slot,
/// slot t holding position t. Grows on demand (amortized doubling); the drafter truncates it
/// to the committed positions after each draft, so drafted slots never outlive their step.
final class DrafterKVCache {
    let kvDim: Int
    private(set) var capacity = 0
    private(set) var count = 0
    private(set) var keys = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private(set) var values = UnsafeMutablePointer<Float>.allocate(capacity: 1)

    init(kvDim: Int) {
        self.kvDim = kvDim
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Makes room for `slots` slots in all, keeping the stored ones. Moves the storage, so
    /// pointers taken before are invalid afterwards.
    func reserve(_ slots: Int) {
        guard slots > capacity else { return }
        let newCapacity = max(slots, 2 * capacity, 64)
        for path in [\DrafterKVCache.keys, \DrafterKVCache.values] as [ReferenceWritableKeyPath<DrafterKVCache, UnsafeMutablePointer<Float>>] {
            let storage = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * kvDim)
            storage.initialize(repeating: 0, count: newCapacity * kvDim)
            storage.update(from: self[keyPath: path], count: count * kvDim)
            self[keyPath: path].deallocate()
            self[keyPath: path] = storage
        }
        capacity = newCapacity
    }

    /// Marks `added` slots after `count` as written.
    func commit(_ added: Int) {
        precondition(count + added <= capacity, "drafter KV cache overflow: \(count) + \(added) > \(capacity)")
        count += added
    }

    /// Drops every slot from `newCount` on (a no-op when it contains fewer).
    func truncate(to newCount: Int) {
        count = min(count, max(0, newCount))
    }
}
