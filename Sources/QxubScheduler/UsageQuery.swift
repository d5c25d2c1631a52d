import QxubProtocol
import QxubSystem

/// The question the agent asks a scheduler about what finished jobs used (`qstat -xf`, `sacct`), and its
/// answer per job as ``SchedulerUsage``: the values, or a note that says why the scheduler has none.
package struct UsageQuery {
    package let kind: SchedulerKind

    package init(kind: SchedulerKind) { self.kind = kind }

    /// The fields ``JobUsage/fromSacct(_:)`` reads, in its order.
    package static let sacctFields = "JobID,Elapsed,TotalCPU,MaxRSS,AllocCPUS"

    /// One command for all `jobIDs` (nil for the local backend, which has no records of its own).
    package func command(_ jobIDs: [String]) -> [String]? {
        guard !jobIDs.isEmpty else { return nil }
        switch kind {
        case .pbspro: return ["qstat", "-xf"] + jobIDs
        case .slurm: return ["sacct", "-j", jobIDs.joined(separator: ","), "-P", "-n", "-o", Self.sacctFields]
        case .local: return nil
        }
    }

    /// Each asked job's usage from the command's run; a job the answer does not mention gets a note.
    package func answer(_ jobIDs: [String], _ run: CollectedRun) -> [String: SchedulerUsage] {
        var usages: [String: SchedulerUsage] = [:]
        let firstError = run.stderrText.trimmingWhitespace().split(separator: "\n").first.map(String.init) ?? ""
        // Why a job the answer does not mention has no record: empty when the scheduler simply forgot it.
        var why = ""
        var gone = true
        if kind == .pbspro, run.stderrText.containsText("not configured to maintain job history") {
            why = "(PBS keeps no job history here)"
        } else if kind == .slurm, run.exit != .exited(0) {
            (why, gone) = (firstError.isEmpty ? "(sacct failed)" : "(\(firstError))", false)
        } else if kind == .pbspro, case .exited(let code) = run.exit, ![0, 153, 35].contains(code) {
            (why, gone) = (firstError.isEmpty ? "(qstat failed)" : "(\(firstError))", false)
        } else if case .exited = run.exit {
            let parsed = kind == .pbspro ? JobUsage.perPBSJob(run.stdoutText) : JobUsage.perSacctJob(run.stdoutText)
            for (id, usage) in parsed where !usage.isEmpty { usages[id] = SchedulerUsage(usage) }
        } else {
            (why, gone) = ("(\(kind == .pbspro ? "qstat" : "sacct") did not finish: \(run.exit))", false)
        }
        for id in jobIDs where usages[id] == nil {
            let what =
                gone ? "the scheduler no longer has job \(id)" : "the scheduler's records of job \(id) cannot be read"
            usages[id] = SchedulerUsage(note: what + (why.isEmpty ? "" : " \(why)"))
        }
        return usages
    }
}

extension SchedulerUsage {
    /// `usage` on the wire (times in milliseconds).
    package init(_ usage: JobUsage) {
        self.init(
            walltimeMillis: usage.walltimeSeconds.flatMap(Self.millis),
            cpuMillis: usage.cpuSeconds.flatMap(Self.millis),
            memoryPeakBytes: usage.memoryPeakBytes,
            cpus: usage.cpus.map { UInt64(max(0, $0)) }
        )
    }

    /// Seconds as whole milliseconds; nil for what no scheduler means (negative, not finite, past 2⁵³).
    static func millis(_ seconds: Double) -> UInt64? {
        let value = (seconds * 1000).rounded()
        guard value.isFinite, value >= 0, value < 9e15 else { return nil }
        return UInt64(value)
    }
}

extension JobUsage {
    /// The values a ``SchedulerUsage`` carries.
    package init(_ usage: SchedulerUsage) {
        self.init(
            walltimeSeconds: usage.walltimeMillis.map { Double($0) / 1000 },
            cpuSeconds: usage.cpuMillis.map { Double($0) / 1000 },
            memoryPeakBytes: usage.memoryPeakBytes,
            cpus: usage.cpus.flatMap { Int(exactly: $0) }
        )
    }

    /// `qstat -xf A B …`: each job's ``fromPBS(_:)``, by its `Job Id:`.
    package static func perPBSJob(_ text: String) -> [String: JobUsage] {
        var result: [String: JobUsage] = [:]
        var id: String?
        var block: [Substring] = []
        func flush() {
            if let id { result[id] = fromPBS(block.joined(separator: "\n")) }
        }
        for line in text.split(separator: "\n") {
            if line.hasPrefix("Job Id:") {
                flush()
                id = String(line.dropFirst("Job Id:".count).drop { $0 == " " })
                block = []
            } else {
                block.append(line)
            }
        }
        flush()
        return result
    }

    /// `sacct -j A,B,… -P -n -o` ``UsageQuery/sacctFields``: each job's ``fromSacct(_:)``, its steps
    /// (`7.batch`, `7.0`) grouped with it.
    package static func perSacctJob(_ text: String) -> [String: JobUsage] {
        var lines: [String: [Substring]] = [:]
        for line in text.split(separator: "\n") {
            guard let field = line.split(separator: "|", omittingEmptySubsequences: false).first else { continue }
            let id = field.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)[0]
            lines[String(id), default: []].append(line)
        }
        return lines.mapValues { fromSacct($0.joined(separator: "\n")) }
    }
}
