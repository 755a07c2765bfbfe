#if canImport(Glibc)
import Glibc
#endif
import Kernels

/// Interleaved copies of a model's weight matrices, made once at load time.
///
/// The batch kernels read sixteen rows of a matrix with one vector load when the rows are
/// interleaved (`td_repack`). Products are bitwise the same as from the row-major file data.
/// One allocation, aligned to 2 MiB so the kernel may back it with huge pages, contains every
/// copy. After a tensor is copied, its file pages are dropped from this process's resident
/// set, so peak memory grows by about one tensor, not by the model size.
final class InterleavedArena: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    /// Bytes between two copies; keeps every copy aligned to a cache line.
    static let alignment = 64

    /// Copies `matrices` (each of a type `td_interleaved_type` accepts) and returns the arena
    /// with each matrix's copy, in order. Cost: one pass over the matrices' bytes.
    static func make(_ matrices: [WeightMatrix]) -> (InterleavedArena, [UnsafeRawPointer])? {
        var offsets: [Int] = []
        var total = 0
        for matrix in matrices {
            offsets.append(total)
            let bytes = td_repacked_bytes(Int32(matrix.type.rawValue), Int64(matrix.rows), Int64(matrix.cols))
            precondition(bytes > 0, "\(matrix.name) has no interleaved layout")
            total += (bytes + alignment - 1) / alignment * alignment
        }
        guard total > 0 else { return nil }
        let hugePage = 2 << 20
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, hugePage, total) == 0, let base = raw else { return nil }
        _ = madvise(base, total, MADV_HUGEPAGE)
        let arena = InterleavedArena(base: base, byteCount: total)
        var pointers: [UnsafeRawPointer] = []
        for (matrix, offset) in zip(matrices, offsets) {
            let destination = base + offset
            let status = td_repack(Int32(matrix.type.rawValue), matrix.data, Int64(matrix.rows), Int64(matrix.cols), destination)
            precondition(status == TD_OK, "td_repack failed with status \(status) for \(matrix.name)")
            releaseFilePages(matrix.data, byteCount: matrix.rowBytes * matrix.rows)
            pointers.append(UnsafeRawPointer(destination))
        }
        return (arena, pointers)
    }

    private init(base: UnsafeMutableRawPointer, byteCount: Int) {
        self.base = base
        self.byteCount = byteCount
    }

    deinit {
        free(base)
    }

    /// Drops the whole pages inside a read-only file mapping from the resident set. A later
    /// read faults them back in from the file, so nothing is lost.
    private static func releaseFilePages(_ start: UnsafeRawPointer, byteCount: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + byteCount) / page * page
        guard end > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(pointer, end - first, MADV_DONTNEED)
    }
}
