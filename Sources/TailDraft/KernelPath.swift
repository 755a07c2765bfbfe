#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

/// The SIMD path the C kernels run on, chosen once per process.
public enum KernelPath {
    /// The active path's name: "scalar", "avx2" or "avx512".
    public static var active: String { String(cString: td_isa_name(td_isa_active())) }

    /// The best path this CPU supports.
    public static var best: String { String(cString: td_isa_name(td_isa_best())) }

    /// Checks the TAILDRAFT_ISA environment variable, which the kernels read to override the
    /// path, and rejects a value they would ignore.
    ///
    /// - Throws: `KernelPathError` naming the value and the accepted ones.
    public static func validateEnvironment() throws {
        guard let raw = getenv("TAILDRAFT_ISA") else { return }
        let requested = String(cString: raw)
        let isa = td_isa_parse(raw)
        guard isa >= 0 else { throw KernelPathError.unknown(requested) }
        guard isa <= td_isa_best() else { throw KernelPathError.unsupported(requested, best: best) }
    }
}

/// An invalid TAILDRAFT_ISA value.
public enum KernelPathError: Error, CustomStringConvertible {
    case unknown(String)
    case unsupported(String, best: String)

    public var description: String {
        switch self {
        case let .unknown(value):
            return "invalid TAILDRAFT_ISA '\(value)': expected scalar, avx2 or avx512, or unset it to use the best path"
        case let .unsupported(value, best):
            return "TAILDRAFT_ISA '\(value)' is not supported by this CPU; its best path is \(best), so use that or a lower one"
        }
    }
}

/// The library's version.
public enum TailDraftVersion {
    public static let current = "0.1.0"
}
