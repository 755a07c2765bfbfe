#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Output helpers for the command-line tools, safe under Swift 6's strict concurrency
/// (the C `stdout`/`stderr` globals are not).
public enum Console {
    /// Writes `text` to standard output and flushes it, so streamed tokens appear at once.
    public static func write(_ text: String) {
        print(text, terminator: "")
        fflush(nil)
    }

    /// Writes `text` and a newline to standard error, unbuffered.
    public static func error(_ text: String) {
        writeError(text + "\n")
    }

    /// Writes `text` to standard error as it is, unbuffered. A progress line that ends in a
    /// carriage return instead of a newline is then overwritten by the next one.
    public static func writeError(_ text: String) {
        fflush(nil)
        var line = text
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = systemWrite(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    /// Whether standard error is a terminal, where progress can update in place.
    public static var standardErrorIsTerminal: Bool { isatty(2) != 0 }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif
