import QxubProtocol

/// Parses PBS Pro's `qstat -f` / `qstat -xf` text output (as recorded from OpenPBS 23.06).
///
/// Text is used rather than `-F json` because batched JSON is broken in current OpenPBS
/// (openpbs/openpbs#2672: only the first operand's jobs are printed, rc 0), while batched text returns
/// every job, so one `qstat -xf A B C` serves all watched jobs.
package enum PBSStatusParser {
    /// One job's attributes, continuation lines joined.
    package struct Record: Hashable, Sendable {
        package var jobID: String
        package var attributes: [String: String]
    }

    /// Splits the output into records. A continuation line starts with one TAB, and its text goes on
    /// with no separator; records end with a blank line.
    package static func records(_ text: String) -> [Record] {
        var records: [Record] = []
        var current: Record?
        var lastKey: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("Job Id: ") {
                if let current { records.append(current) }
                current = Record(jobID: String(line.dropFirst("Job Id: ".count)), attributes: [:])
                lastKey = nil
            } else if line.hasPrefix("\t"), let key = lastKey {
                current?.attributes[key, default: ""] += line.dropFirst()
            } else if let separator = line.firstRange(ofLiteral: " = "), line.hasPrefix("    ") {
                let key = String(line[line.startIndex..<separator.lowerBound].drop { $0 == " " })
                current?.attributes[key] = String(line[separator.upperBound...])
                lastKey = key
            } else if line.isEmpty {
                lastKey = nil
            }
        }
        if let current { records.append(current) }
        return records
    }

    /// Interprets one record.
    package static func info(_ record: Record) -> SchedulerJobInfo {
        let state = record.attributes["job_state"] ?? ""
        let host = record.attributes["exec_host"].map { String($0.prefix { $0 != "/" && $0 != "+" }) } ?? ""
        var info = SchedulerJobInfo(jobID: record.jobID, phase: .unknown, host: host, rawState: state)
        switch state {
        case "Q", "W", "T":
            info.phase = .queued
            info.reason = record.attributes["comment"] ?? ""
        case "H":
            info.phase = .held
            info.reason = record.attributes["comment"] ?? ""
        case "R", "E", "B", "S", "U": info.phase = .running
        case "F", "X":
            info.phase = .finished
            info.termination = termination(record)
        default: info.phase = .unknown
        }
        return info
    }

    /// How a finished job ended, from `Exit_status`, `substate` and `comment`.
    static func termination(_ record: Record) -> JobTermination {
        let comment = record.attributes["comment"] ?? ""
        let ran = record.attributes["stime"] != nil || record.attributes["exec_host"] != nil
        if record.attributes["substate"] == "91" {
            // Terminated by qdel: with no Exit_status it never ran.
            return .killedByScheduler(
                .deleted,
                detail: comment,
                ranFirst: record.attributes["Exit_status"] != nil && ran
            )
        }
        guard let text = record.attributes["Exit_status"], let status = Int32(text) else {
            return .killedByScheduler(
                .deleted,
                detail: comment.isEmpty ? "finished without an exit status" : comment,
                ranFirst: false
            )
        }
        switch status {
        case 0...255: return .exited(status)
        case 256...: return .signaled(status - 256)
        case -29: return .killedByScheduler(.walltime, detail: comment, ranFirst: true)
        case -27, -26: return .killedByScheduler(.memory, detail: comment, ranFirst: true)
        case -28:
            return .killedByScheduler(
                .other,
                detail: "cpu time limit exceeded" + (comment.isEmpty ? "" : ": " + comment),
                ranFirst: true
            )
        // JOB_EXEC_RETRY, JOB_EXEC_INITABT/INITRST/INITRMG, JOB_EXEC_BADRESRT: the execution host failed
        // the job (MOM initialisation, a restart); running it again may work.
        case -7...(-3):
            return .killedByScheduler(
                .nodeFailure,
                detail: "PBS exit status \(status)" + (comment.isEmpty ? "" : ": " + comment),
                ranFirst: ran
            )
        default:
            return .killedByScheduler(
                .other,
                detail: "PBS exit status \(status)" + (comment.isEmpty ? "" : ": " + comment),
                ranFirst: ran
            )
        }
    }

    /// `qstat -xf` output (stdout) for the asked ids → what PBS knows; ids it did not print are absent.
    package static func parse(_ text: String) -> [String: SchedulerJobInfo] {
        var result: [String: SchedulerJobInfo] = [:]
        for record in records(text) { result[record.jobID] = info(record) }
        return result
    }
}
