/// A command-line usage error: one line for the user, then a non-zero exit.
struct UsageError: Error, CustomStringConvertible {
    let description: String
}

/// Options of one subcommand, parsed from `--name value`, `--name=value` and `--flag`.
struct Arguments {
    let command: String
    private var values: [String: String] = [:]
    private var flags: Set<String> = []

    /// Parses `arguments` against the options a command accepts.
    /// - Throws: `UsageError` for an unknown option, a missing value or a stray argument.
    init(command: String, arguments: [String], valueOptions: Set<String>, flagOptions: Set<String>) throws {
        self.command = command
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("--") else {
                throw UsageError(description: "unexpected argument '\(argument)' for '\(command)'; options start with --, see 'taildraft \(command) --help'")
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String? = nil
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if flagOptions.contains(name) {
                guard inlineValue == nil else {
                    throw UsageError(description: "option --\(name) takes no value; remove '=\(inlineValue!)'")
                }
                flags.insert(name)
            } else if valueOptions.contains(name) {
                guard values[name] == nil else {
                    throw UsageError(description: "option --\(name) is given twice; pass it once")
                }
                if let inlineValue {
                    values[name] = inlineValue
                } else {
                    index += 1
                    guard index < arguments.count else {
                        throw UsageError(description: "option --\(name) needs a value; see 'taildraft \(command) --help'")
                    }
                    values[name] = arguments[index]
                }
            } else {
                throw UsageError(description: "unknown option '--\(name)' for '\(command)'; see 'taildraft \(command) --help'")
            }
            index += 1
        }
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }

    func string(_ name: String) -> String? { values[name] }

    func required(_ name: String) throws -> String {
        guard let value = values[name] else {
            throw UsageError(description: "missing required option --\(name) for '\(command)'; see 'taildraft \(command) --help'")
        }
        return value
    }

    /// Returns the integer value of `--name` within `range`, or `defaultValue` when absent.
    func int(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = values[name] else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError(description: "invalid value '\(text)' for --\(name): expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// Returns the number value of `--name` within `range`, or `defaultValue` when absent.
    /// `expected` describes the accepted values in the error message, e.g. "a number in (0, 1]".
    func float(_ name: String, default defaultValue: Float, range: ClosedRange<Float>, expected: String) throws -> Float {
        guard let text = values[name] else { return defaultValue }
        guard let value = Float(text), value.isFinite, range.contains(value) else {
            throw UsageError(description: "invalid value '\(text)' for --\(name): expected \(expected)")
        }
        return value
    }

    func uint64(_ name: String, default defaultValue: UInt64) throws -> UInt64 {
        guard let text = values[name] else { return defaultValue }
        guard let value = UInt64(text) else {
            throw UsageError(description: "invalid value '\(text)' for --\(name): expected an integer in 0...\(UInt64.max)")
        }
        return value
    }
}
