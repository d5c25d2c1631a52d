/// Reads resource values the way users write them, or says which forms are accepted.
package enum ResourceParser {
    package static let memoryForms =
        "4GB, 16g, 1.5GB, 4GiB, 512MB, 512m, 100kb, or a number of megabytes (2000); binary units: 1GB = 1024MB, as PBS"
    package static let timeForms =
        "2h30m, 90m, 45s, 1d, 1d12h, 100:00:00, 1:30:00, 2:30 (hours:minutes), 1-12:00:00, or a number of minutes (90)"

    /// Bytes from "4GB", "16g", "1.5GB", "4GiB", "512MB"; a plain number is megabytes (as the Python
    /// qxub's parser and Slurm's `--mem` read it).
    package static func memory(_ text: String) throws(ClientError) -> UInt64 {
        let lowered = text.lowercased().filter { $0 != " " }
        var number = ""
        var unit = ""
        for character in lowered {
            if unit.isEmpty && (character.isNumber || character == ".") {
                number.append(character)
            } else {
                unit.append(character)
            }
        }
        guard let value = Double(number), value >= 0, value.isFinite else {
            throw ClientError(
                "'\(text)' is not a memory size",
                hint: "write it like \(memoryForms)",
                exitCode: ExitCodes.usage
            )
        }
        let scale: Double
        switch unit {
        case "g", "gb", "gib": scale = 1024 * 1024 * 1024
        case "t", "tb", "tib": scale = 1024 * 1024 * 1024 * 1024
        case "", "m", "mb", "mib": scale = 1024 * 1024
        case "k", "kb", "kib": scale = 1024
        case "b": scale = 1
        default:
            throw ClientError(
                "'\(text)': unknown memory unit '\(unit)'",
                hint: "write it like \(memoryForms)",
                exitCode: ExitCodes.usage
            )
        }
        let bytes = value * scale
        guard bytes >= 1, bytes < 1e18 else {
            throw ClientError(
                "'\(text)' is not a usable memory size",
                hint: "write it like \(memoryForms)",
                exitCode: ExitCodes.usage
            )
        }
        // Round up to whole kilobytes so PBS and Slurm can express it exactly.
        let kilobytes = (bytes / 1024).rounded(.up)
        return UInt64(kilobytes) * 1024
    }

    /// Seconds from "2h30m", "90m", "1d", "100:00:00", "1:30:00", "2:30" (H:MM, as the Python qxub reads
    /// it for PBS users) or "90" (minutes).
    package static func walltime(_ text: String) throws(ClientError) -> UInt64 {
        let trimmed = text.lowercased().filter { $0 != " " }
        func fail() -> ClientError {
            ClientError("'\(text)' is not a duration", hint: "write it like \(timeForms)", exitCode: ExitCodes.usage)
        }
        guard !trimmed.isEmpty else { throw fail() }
        // Bounded well below overflow: ten years is more than any scheduler grants.
        let limit: UInt64 = 10 * 366 * 86400
        var seconds: UInt64 = 0
        if trimmed.contains(":") {
            // [D-]H:MM:SS or H:MM
            var rest = Substring(trimmed)
            var days: UInt64 = 0
            if let dash = rest.firstIndex(of: "-") {
                guard let value = UInt64(rest[..<dash]) else { throw fail() }
                days = value
                rest = rest[rest.index(after: dash)...]
            }
            let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map { UInt64($0) }
            guard parts.allSatisfy({ $0 != nil && $0! < limit }), (2...3).contains(parts.count), days < limit else {
                throw fail()
            }
            let numbers = parts.map { $0! }
            if numbers.count == 3 {
                guard numbers[1] < 60, numbers[2] < 60 else { throw fail() }
                seconds = numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
            } else {
                guard numbers[1] < 60 else { throw fail() }
                seconds = numbers[0] * 3600 + numbers[1] * 60
            }
            seconds += days * 86400
        } else if let minutes = UInt64(trimmed) {
            guard minutes < limit else { throw fail() }
            seconds = minutes * 60
        } else {
            var number = ""
            var sawUnit = false
            for character in trimmed {
                if character.isNumber || character == "." {
                    number.append(character)
                    continue
                }
                guard let value = Double(number), value.isFinite, value >= 0 else { throw fail() }
                let unit: Double
                switch character {
                case "d": unit = 86400
                case "h": unit = 3600
                case "m": unit = 60
                case "s": unit = 1
                case "w": unit = 7 * 86400
                default: throw fail()
                }
                let amount = (value * unit).rounded()
                guard amount < Double(limit) else { throw fail() }
                seconds += UInt64(amount)
                number = ""
                sawUnit = true
            }
            guard number.isEmpty, sawUnit else { throw fail() }
        }
        guard seconds <= limit else { throw fail() }
        guard seconds > 0 else {
            throw ClientError(
                "'\(text)' is zero: a job needs some time",
                hint: "write it like \(timeForms)",
                exitCode: ExitCodes.usage
            )
        }
        return seconds
    }
}
