#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TailDraft

/// Median and range of repeated measurements.
struct Summary {
    var samples: [Double]
    var median: Double {
        let sorted = samples.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
    var minimum: Double { samples.min() ?? 0 }
    var maximum: Double { samples.max() ?? 0 }
}

/// Returns the core the drafter trainer gets in the benchmarks: the last one when the machine
/// has more cores than `threads` inference threads, otherwise nil (the trainer shares them).
func spareTrainerCore(threads: Int) -> Int? {
    let cores = ProcessorCount.online
    return cores > threads ? cores - 1 : nil
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

/// Formats `value` with `digits` decimals, e.g. `decimals(3.14159, 2)` is "3.14".
func decimals(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return String(value) }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let units = Int((abs(value) * scale).rounded())
    let whole = Int(Double(units) / scale)
    let fraction = String(units - Int(Double(whole) * scale))
    let sign = value < 0 && units > 0 ? "-" : ""
    guard digits > 0 else { return sign + String(whole) }
    return sign + String(whole) + "." + String(repeating: "0", count: digits - fraction.count) + fraction
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Returns the "model name" line of /proc/cpuinfo, or "unknown".
func cpuModel() -> String {
    guard let handle = fopen("/proc/cpuinfo", "r") else { return "unknown" }
    defer { fclose(handle) }
    var line: UnsafeMutablePointer<CChar>? = nil
    var capacity = 0
    defer { free(line) }
    while getline(&line, &capacity, handle) > 0 {
        let text = String(cString: line!)
        if text.hasPrefix("model name"), let colon = text.firstIndex(of: ":") {
            return text[text.index(after: colon)...].trimmingCharacters()
        }
    }
    return "unknown"
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == "\n" || $0 == " " }).reversed())
    }
}

/// Peak resident set size of this process in bytes (Linux reports kilobytes).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Int(usage.ru_maxrss) * 1024
}
