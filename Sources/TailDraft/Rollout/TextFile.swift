#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file that could not be read, written or created, with the system's reason.
public struct FileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    /// The attempted action: "read", "write", "create the folder", ...
    public let action: String
    /// The system's message for errno, e.g. "No such file or directory".
    public let reason: String

    public var description: String { "cannot \(action) \(path): \(reason)" }

    init(path: String, action: String, errorNumber: Int32) {
        self.path = path
        self.action = action
        reason = String(cString: strerror(errorNumber))
    }
}

/// Whole-file reads and folder creation on top of the C library.
public enum TextFile {
    /// Reads the file at `path` as UTF-8 (invalid bytes become U+FFFD).
    /// - Throws: `FileError` when the file cannot be opened or read.
    public static func read(_ path: String) throws -> String {
        guard let handle = fopen(path, "rb") else { throw FileError(path: path, action: "read", errorNumber: errno) }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&buffer, 1, buffer.count, handle)
            if count > 0 { bytes += buffer[0..<count] }
            if count < buffer.count {
                if ferror(handle) != 0 { throw FileError(path: path, action: "read", errorNumber: errno) }
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to `path`, replacing the file.
    /// - Throws: `FileError` when the file cannot be created or written.
    public static func write(_ text: String, to path: String) throws {
        let output = try OutputFile(path: path)
        try output.write(text)
    }

    /// Creates the folder at `path` and its missing parents, like `mkdir -p`.
    /// - Throws: `FileError` when a part of the path cannot be created or is not a folder.
    public static func createFolder(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw FileError(path: prefix, action: "create the folder", errorNumber: errno)
            }
        }
        var status = stat()
        guard stat(path, &status) == 0 else { throw FileError(path: path, action: "create the folder", errorNumber: errno) }
        guard (status.st_mode & S_IFMT) == S_IFDIR else {
            throw FileError(path: path, action: "create the folder", errorNumber: ENOTDIR)
        }
    }
}

/// A file opened for writing whose every `write` reaches the operating system at once, so a
/// crash later loses nothing written before it. Not thread-safe.
public final class OutputFile {
    public let path: String
    private let handle: UnsafeMutablePointer<FILE>
    private let closes: Bool

    /// Creates or truncates the file at `path`.
    /// - Throws: `FileError` when it cannot be opened for writing.
    public init(path: String) throws {
        guard let handle = fopen(path, "wb") else { throw FileError(path: path, action: "write", errorNumber: errno) }
        self.path = path
        self.handle = handle
        closes = true
    }

    /// Standard output through a stream of its own, flushed after each write and never closed.
    public init(standardOutput: ()) {
        path = "standard output"
        // fdopen on descriptor 1 avoids the C `stdout` global, which Swift 6 rejects as unsafe.
        handle = fdopen(1, "wb")
        closes = false
    }

    deinit {
        if closes { fclose(handle) }
    }

    /// Writes `text` and flushes it.
    /// - Throws: `FileError` when the write fails (a full disk, a closed pipe).
    public func write(_ text: String) throws {
        var text = text
        let written = text.withUTF8 { fwrite($0.baseAddress, 1, $0.count, handle) }
        guard written == text.utf8.count, fflush(handle) == 0 else {
            throw FileError(path: path, action: "write", errorNumber: errno)
        }
    }
}
