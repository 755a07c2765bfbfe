#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

/// A joinable POSIX thread running one closure, with helpers to pin it and lower its
/// priority from inside.
public final class BackgroundThread: @unchecked Sendable {
    private var thread: pthread_t? = nil

    /// Starts a thread that runs `body` once.
    public init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(ClosureBox(body)).toOpaque()
        var handle = pthread_t()
        let status = pthread_create(&handle, nil, { context in
            let box = Unmanaged<ClosureBox>.fromOpaque(context!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(status == 0, "pthread_create failed with error \(status)")
        thread = handle
    }

    /// Waits until the closure returns. Calling it again does nothing.
    public func join() {
        guard let handle = thread else { return }
        pthread_join(handle, nil)
        thread = nil
    }

    deinit { join() }

    /// How far the calling thread's priority was lowered.
    public enum Priority: Sendable, Equatable {
        /// SCHED_IDLE: the thread runs only when a core has nothing else to run.
        case idle
        /// Nice 19, the fallback where SCHED_IDLE is not allowed.
        case nice19
        /// Neither could be set; the thread keeps its priority.
        case unchanged
    }

    /// Lowers the calling thread's priority to SCHED_IDLE, or to nice 19 when that fails.
    /// The change cannot be undone by an unprivileged process.
    public static func lowerCurrentPriority() -> Priority {
        switch td_thread_lower_priority() {
        case 0: return .idle
        case 1: return .nice19
        default: return .unchanged
        }
    }

    /// Pins the calling thread to `cores` (CPU indices). Returns false when a core is invalid
    /// or the system rejects the mask.
    public static func pinCurrent(to cores: [Int]) -> Bool {
        guard !cores.isEmpty else { return false }
        let ids = cores.map { Int32(clamping: $0) }
        return ids.withUnsafeBufferPointer { td_thread_pin($0.baseAddress, Int32($0.count)) } == TD_OK
    }

    /// Pins the calling thread and the kernels' OpenMP threads for a `threads`-wide team to
    /// `cores`, so inference leaves the other cores to a trainer. Returns false when the
    /// system rejects the mask or the platform has no pinning.
    public static func pinInference(to cores: [Int], threads: Int) -> Bool {
        guard !cores.isEmpty, threads >= 1 else { return false }
        let ids = cores.map { Int32(clamping: $0) }
        return ids.withUnsafeBufferPointer { td_thread_pin_team($0.baseAddress, Int32($0.count), Int32(threads)) } == TD_OK
    }
}

private final class ClosureBox {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}
