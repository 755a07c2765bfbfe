#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Set by the signal handler, read by `Interrupt.requested`.
private let interruptFlag = Atomic<Bool>(false)

/// Ctrl-C (SIGINT) and SIGTERM handling for commands whose work is worth finishing cleanly,
/// such as training a drafter that is saved at exit.
///
/// After `install()`, the first signal only sets `requested` and prints a line, so the command
/// ends its current token, prints its statistics and saves what it has. The handler then gives
/// the signal back to the system, so a second Ctrl-C ends the process at once.
enum Interrupt {
    /// Whether a signal arrived since `install()`.
    static var requested: Bool { interruptFlag.load(ordering: .relaxed) }

    /// Installs the handler for SIGINT and SIGTERM, and unblocks both: a parent process may
    /// start this one with them blocked, and a blocked signal would never reach the handler.
    static func install() {
        signal(SIGINT, handleInterrupt)
        signal(SIGTERM, handleInterrupt)
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    }
}

/// Sets the flag, writes one line to standard error and restores the default action. Only
/// async-signal-safe calls (an atomic store, write, signal) run here.
private func handleInterrupt(_ signalNumber: Int32) {
    interruptFlag.store(true, ordering: .relaxed)
    let message: StaticString = "\ninterrupted: stopping and saving the drafter; press Ctrl-C again to quit at once\n"
    _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
    signal(signalNumber, SIG_DFL)
}
