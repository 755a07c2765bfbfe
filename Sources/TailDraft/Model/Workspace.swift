/// Reusable float buffers for forward passes, grown on demand and never shrunk, so decode
/// steps do not allocate or page-fault.
final class Workspace {
    private var buffers: [UnsafeMutableRawPointer] = []
    private var sizes: [Int] = []

    /// Returns buffer `index` with room for at least `bytes` bytes, 64-byte aligned.
    func buffer(_ index: Int, bytes: Int) -> UnsafeMutableRawPointer {
        while buffers.count <= index {
            buffers.append(.allocate(byteCount: 64, alignment: 64))
            sizes.append(64)
        }
        if sizes[index] < bytes {
            buffers[index].deallocate()
            let size = max(bytes, sizes[index] * 2)
            buffers[index] = .allocate(byteCount: size, alignment: 64)
            sizes[index] = size
        }
        return buffers[index]
    }

    func floats(_ index: Int, count: Int) -> UnsafeMutablePointer<Float> {
        buffer(index, bytes: max(1, count) * MemoryLayout<Float>.stride).assumingMemoryBound(to: Float.self)
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }
}
