import QxubProtocol

/// Parses Slurm 22.05's `squeue` and `scontrol show job` text output.
package enum SlurmStatusParser {
    /// The `squeue` format this parser reads: id, state, node list, reason.
    package static let squeueFormat = "%i|%T|%N|%r"

    /// `squeue -h -t all -o '%i|%T|%N|%r' -j A,B` → what Slurm still holds (finished jobs stay for MinJobAge).
    /// Also reads the plain `'%i %T'` form.
    package static func parseSqueue(_ text: String) -> [String: SchedulerJobInfo] {
        var result: [String: SchedulerJobInfo] = [:]
        for line in text.split(separator: "\n") {
            let fields =
                line.contains("|" as Character)
                ? line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                : line.split(separator: " ").map(String.init)
            guard fields.count >= 2 else { continue }
            let id = fields[0]
            let nodes = fields.count > 2 ? fields[2] : ""
            let reason = fields.count > 3 ? fields[3] : ""
            result[id] = info(jobID: id, state: fields[1], nodes: nodes, reason: reason, exitCode: nil)
        }
        return result
    }

    /// `scontrol show job ID` → one record per job (an array parent prints one per task).
    package static func parseScontrol(_ text: String) -> [String: SchedulerJobInfo] {
        var result: [String: SchedulerJobInfo] = [:]
        for block in blocks(text) {
            var fields: [String: String] = [:]
            for token in block.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                guard let equals = token.firstIndex(of: "=") else { continue }
                let key = String(token[..<equals])
                if fields[key] == nil { fields[key] = String(token[token.index(after: equals)...]) }
            }
            guard let id = fields["JobId"], let state = fields["JobState"] else { continue }
            var jobID = id
            if let arrayJob = fields["ArrayJobId"], let task = fields["ArrayTaskId"] { jobID = arrayJob + "_" + task }
            let nodes = fields["NodeList"].flatMap { $0 == "(null)" ? nil : $0 } ?? ""
            result[jobID] = info(
                jobID: jobID,
                state: state,
                nodes: nodes,
                reason: fields["Reason"] ?? "",
                exitCode: fields["ExitCode"]
            )
        }
        return result
    }

    /// Records separated by blank lines (lines of spaces count as blank, as scontrol ends records with "   ").
    static func blocks(_ text: String) -> [String] {
        var blocks: [String] = []
        var current = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.allSatisfy({ $0 == " " }) {
                if !current.isEmpty { blocks.append(current) }
                current = ""
            } else {
                current += line + "\n"
            }
        }
        if !current.isEmpty { blocks.append(current) }
        return blocks
    }

    static func info(jobID: String, state: String, nodes: String, reason: String, exitCode: String?) -> SchedulerJobInfo
    {
        let host = String(nodes.prefix { $0 != "," && $0 != "[" })
        var info = SchedulerJobInfo(jobID: jobID, phase: .unknown, host: host, rawState: state)
        let ran = !nodes.isEmpty && nodes != "(null)"
        // State names may carry a suffix ("CANCELLED by 0").
        switch state.split(separator: " ").first.map(String.init) ?? state {
        case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD":
            info.phase = reason.hasPrefix("JobHeld") || state == "REQUEUE_HOLD" ? .held : .queued
            info.host = ""
            // squeue says "None" when it has no reason; `(Priority)` style parentheses are sacct's.
            info.reason = reason == "None" ? "" : reason
        case "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING":
            info.phase = .running
        case "COMPLETED":
            info.phase = .finished
            info.termination = exitCode.flatMap(termination(exitCode:)) ?? .exited(0)
        case "FAILED":
            info.phase = .finished
            info.termination = exitCode.flatMap(termination(exitCode:))
        case "TIMEOUT", "DEADLINE":
            info.phase = .finished
            info.termination = .killedByScheduler(.walltime, detail: reason == "None" ? "" : reason, ranFirst: true)
        case "OUT_OF_MEMORY":
            info.phase = .finished
            info.termination = .killedByScheduler(.memory, detail: "", ranFirst: true)
        case "CANCELLED":
            info.phase = .finished
            info.termination = .killedByScheduler(.deleted, detail: "", ranFirst: ran)
        case "NODE_FAIL", "BOOT_FAIL":
            info.phase = .finished
            info.termination = .killedByScheduler(.nodeFailure, detail: state, ranFirst: ran)
        case "PREEMPTED", "REVOKED", "SPECIAL_EXIT":
            info.phase = .finished
            info.termination = .killedByScheduler(.other, detail: state.lowercased(), ranFirst: ran)
        default:
            info.phase = .unknown
        }
        return info
    }

    /// `ExitCode=N:S`: S is the signal that ended the batch script, N its exit status.
    static func termination(exitCode: String) -> JobTermination? {
        let parts = exitCode.split(separator: ":")
        guard parts.count == 2, let code = Int32(parts[0]), let signal = Int32(parts[1]) else { return nil }
        return signal > 0 ? .signaled(signal) : .exited(code)
    }
}
