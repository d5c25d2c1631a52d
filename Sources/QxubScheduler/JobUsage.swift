/// What a finished job used, from the job's own record (the job log's usage lines) or the scheduler's
/// (`qstat -xf` resources_used.*, `sacct`); nil where the source does not say.
package struct JobUsage: Sendable, Equatable {
    package var walltimeSeconds: Double?
    /// User plus system time of the command (and --pre/--post).
    package var cpuSeconds: Double?
    package var memoryPeakBytes: UInt64?
    package var cpus: Int?

    package init(
        walltimeSeconds: Double? = nil,
        cpuSeconds: Double? = nil,
        memoryPeakBytes: UInt64? = nil,
        cpus: Int? = nil
    ) {
        self.walltimeSeconds = walltimeSeconds
        self.cpuSeconds = cpuSeconds
        self.memoryPeakBytes = memoryPeakBytes
        self.cpus = cpus
    }

    /// Nothing known.
    package var isEmpty: Bool { self == JobUsage() }

    /// cpu time / (walltime × cpus), when all three are known and the walltime is not zero.
    package var cpuEfficiency: Double? {
        guard let cpuSeconds, let walltimeSeconds, let cpus, walltimeSeconds > 0, cpus > 0 else { return nil }
        return cpuSeconds / (walltimeSeconds * Double(cpus))
    }

    /// Each value of `self`, else `other`'s.
    package func filled(from other: JobUsage) -> JobUsage {
        JobUsage(
            walltimeSeconds: walltimeSeconds ?? other.walltimeSeconds,
            cpuSeconds: cpuSeconds ?? other.cpuSeconds,
            memoryPeakBytes: memoryPeakBytes ?? other.memoryPeakBytes,
            cpus: cpus ?? other.cpus
        )
    }

    // MARK: - The job's own record

    /// The usage lines the job script writes to the job log (``JobScript``'s usage record):
    ///
    ///     usage:          cpus=4 memory_peak=123456
    ///     cpu times:      0m0.010s 0m0.004s
    ///     1m2.500s 0m0.250s
    ///
    /// The line after `cpu times:` holds the children's user and system time (bash's `times`). Values
    /// written `-` are unknown. The last record wins (a job log appended to by a rerun).
    package static func fromJobLog(_ text: String) -> JobUsage {
        var usage = JobUsage()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            if line.hasPrefix("usage:") {
                usage = JobUsage()
                for field in line.dropFirst("usage:".count).split(separator: " ") {
                    let parts = field.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    switch parts[0] {
                    case "cpus": usage.cpus = Int(parts[1])
                    case "memory_peak": usage.memoryPeakBytes = UInt64(parts[1])
                    default: break
                    }
                }
            } else if line.hasPrefix("cpu times:"), index + 1 < lines.count {
                let children = lines[index + 1].split(separator: " ")
                let times = children.compactMap { bashDuration($0) }
                usage.cpuSeconds = times.count == 2 ? times[0] + times[1] : nil
            }
        }
        return usage
    }

    /// bash's `times` format: `1m2.500s` (also `1m2,500s` in a locale with a decimal comma).
    static func bashDuration(_ text: Substring) -> Double? {
        guard text.hasSuffix("s"), let m = text.firstIndex(of: "m") else { return nil }
        guard let minutes = Double(text[..<m]) else { return nil }
        let secondsText = text[text.index(after: m)..<text.index(before: text.endIndex)]
        guard let seconds = Double(secondsText.replacingComma()) else { return nil }
        return minutes * 60 + seconds
    }

    // MARK: - The scheduler's records

    /// `qstat -xf ID` (PBS Pro): the `resources_used.*` attributes of the first job in the text.
    package static func fromPBS(_ text: String) -> JobUsage {
        var usage = JobUsage()
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix("resources_used.") else { continue }
            let parts = trimmed.dropFirst("resources_used.".count).split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].filter { $0 != " " }
            let value = Substring(parts[1].filter { $0 != " " })
            switch key {
            case "walltime": usage.walltimeSeconds = clockDuration(value)
            case "cput": usage.cpuSeconds = clockDuration(value)
            case "mem": usage.memoryPeakBytes = pbsSize(value)
            case "ncpus": usage.cpus = Int(value)
            default: break
            }
        }
        return usage
    }

    /// `sacct -j ID -P -n -o JobID,Elapsed,TotalCPU,MaxRSS,AllocCPUS` (Slurm): the job's line gives the
    /// elapsed time, total cpu and cpus; MaxRSS is reported per step, so the largest over the steps.
    package static func fromSacct(_ text: String) -> JobUsage {
        var usage = JobUsage()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false)
            guard fields.count >= 5 else { continue }
            let isStep = fields[0].contains(".")
            if !isStep {
                usage.walltimeSeconds = clockDuration(fields[1])
                usage.cpuSeconds = clockDuration(fields[2])
                usage.cpus = Int(fields[4])
            }
            if let rss = slurmSize(fields[3]), rss > (usage.memoryPeakBytes ?? 0) { usage.memoryPeakBytes = rss }
        }
        return usage
    }

    /// `[D-]HH:MM:SS[.fff]` or `MM:SS.fff` (sacct's TotalCPU under an hour) → seconds.
    static func clockDuration(_ text: Substring) -> Double? {
        var days = 0.0
        var rest = text
        if let dash = text.firstIndex(of: "-") {
            guard let parsed = Double(text[..<dash]) else { return nil }
            days = parsed
            rest = text[text.index(after: dash)...]
        }
        let parts = rest.split(separator: ":")
        guard (2...3).contains(parts.count) else { return nil }
        var seconds = 0.0
        for part in parts {
            guard let value = Double(part) else { return nil }
            seconds = seconds * 60 + value
        }
        return days * 86_400 + seconds
    }

    /// PBS sizes: `123456kb`, `12mb`, `3gb`, `100b`.
    static func pbsSize(_ text: Substring) -> UInt64? {
        let lower = text.lowercased()
        let units: [(String, UInt64)] = [("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("b", 1)]
        for (suffix, factor) in units where lower.hasSuffix(suffix) {
            guard let number = UInt64(lower.dropLast(suffix.count)) else { return nil }
            return number.multipliedReportingOverflow(by: factor).overflow ? nil : number * factor
        }
        return UInt64(lower)
    }

    /// Slurm sizes: `1234K`, `56M`, `2G`, a bare number of bytes; empty (a step without a record): nil.
    static func slurmSize(_ text: Substring) -> UInt64? {
        guard let last = text.last else { return nil }
        let factors: [Character: Double] = [
            "K": 1024, "M": 1024 * 1024, "G": 1024 * 1024 * 1024, "T": 1024 * 1024 * 1024 * 1024,
        ]
        if let factor = factors[last] {
            guard let number = Double(text.dropLast()), number >= 0, number * factor < 1.8e19 else { return nil }
            return UInt64(number * factor)
        }
        return UInt64(text)
    }
}

extension Substring {
    fileprivate func replacingComma() -> String { String(map { $0 == "," ? "." : $0 }) }
}
