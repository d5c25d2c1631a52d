import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The history's newest jobs with their live states, for `qxub status list` and `status summary`: the jobs
/// not yet seen to end are asked about in one status query per platform (the agent batches the ids into one
/// scheduler query); a job the history saw end keeps that end, which cannot change.
struct HistoryLiveStates {
    /// One job: its history record and the state to show.
    struct Job {
        var record: HistoryStore.Record
        /// queued, held, running, succeeded, failed or unknown (``StateCount/keys``).
        var state: String
        var exitCode: Int?
        /// The scheduler's or the agent's word on it ("Priority", a host), if any.
        var detail: String
    }

    /// The jobs of one platform, newest first; `problem` when its agent could not be asked.
    struct Platform {
        var name: String
        var jobs: [Job]
        var problem: String?
    }

    var platforms: [Platform]

    /// The state names, in the order they are shown.
    static let stateKeys = ["queued", "held", "running", "succeeded", "failed", "unknown"]

    /// The state name of a live status.
    static func state(of status: JobStatus) -> (state: String, exitCode: Int?) {
        guard status.state.phase == .finished else { return ("\(status.state.phase)", nil) }
        guard let termination = status.termination else { return ("unknown", nil) }
        let code = Int(ExitCodes.exit(for: termination).code)
        return (code == 0 ? "succeeded" : "failed", code)
    }

    /// What to show beside a live state: why an unfinished job waits, or where it runs.
    static func detail(of status: JobStatus) -> String {
        if status.isUnknownJob { return "the agent does not know it" }
        if status.state.phase == .finished { return "" }
        // The scheduler's reason ("Priority", "Insufficient ncpus"), not its raw state letter.
        if !status.state.reason.isEmpty { return status.state.reason }
        return status.state.host.isEmpty ? "" : "on \(status.state.host)"
    }

    /// The state name of a job the history saw end.
    static func state(of record: HistoryStore.Record) -> String {
        guard record.endedAt != nil else { return "unknown" }
        return record.exitCode == 0 ? "succeeded" : "failed"
    }

    /// Asks each platform of `records` (newest first) about its unfinished jobs, in one query per platform.
    /// - Parameter ask: one platform's name and ids → their statuses (the agent session, or a test's answer).
    static func gather(
        _ records: [HistoryStore.Record],
        ask: (String, [String]) throws(ClientError) -> [JobStatus]
    ) -> HistoryLiveStates {
        var order: [String] = []
        var byPlatform: [String: [HistoryStore.Record]] = [:]
        for record in records {
            if byPlatform[record.platform] == nil { order.append(record.platform) }
            byPlatform[record.platform, default: []].append(record)
        }
        var platforms: [Platform] = []
        for name in order {
            let records = byPlatform[name] ?? []
            let unfinished = records.filter { $0.endedAt == nil }.map(\.jobID)
            var live: [String: JobStatus] = [:]
            var problem: String?
            if !unfinished.isEmpty {
                do {
                    for status in try ask(name, unfinished) { live[status.jobID] = status }
                } catch {
                    problem = error.message
                }
            }
            let jobs = records.map { record -> Job in
                if record.endedAt != nil {
                    return Job(record: record, state: state(of: record), exitCode: record.exitCode, detail: "")
                }
                guard let status = live[record.jobID] else {
                    return Job(record: record, state: "unknown", exitCode: nil, detail: "")
                }
                let (state, code) = state(of: status)
                let detail = Self.detail(of: status)
                return Job(record: record, state: state, exitCode: code, detail: detail)
            }
            platforms.append(Platform(name: name, jobs: jobs, problem: problem))
        }
        return HistoryLiveStates(platforms: platforms)
    }

    /// `status list`: per platform a header, then a line per job.
    func listLines() -> [String] {
        var lines: [String] = []
        for platform in platforms {
            lines.append(
                "\(platform.name): \(platform.jobs.count) job\(platform.jobs.count == 1 ? "" : "s")"
                    + (platform.problem.map { " (live states unavailable: \($0))" } ?? "")
            )
            lines.append(
                "  " + "JOB".padding(to: 22) + "STATE".padding(to: 11) + "EXIT".padding(to: 6)
                    + "SUBMITTED".padding(to: 21)
                    + "NAME"
            )
            for job in platform.jobs {
                let submitted = LocalTime(time_t(job.record.submittedAt)).seconds
                let exit = job.exitCode.map(String.init) ?? "-"
                let detail = job.detail.isEmpty ? "" : "  [\(job.detail)]"
                var line = "  " + job.record.jobID.padding(to: 22)
                line += job.state.padding(to: 11) + exit.padding(to: 6)
                line += submitted.padding(to: 21) + job.record.name + detail
                lines.append(line)
            }
        }
        return lines
    }

    /// `status summary`: the counts per state of each platform, then of all (when there are several).
    func summaryLines() -> [String] {
        func counts(_ jobs: [Job]) -> String {
            var counts: [String: Int] = [:]
            for job in jobs { counts[job.state, default: 0] += 1 }
            return Self.stateKeys.compactMap { key in counts[key].map { "\($0) \(key)" } }.joined(separator: ", ")
        }
        var lines = platforms.map { platform in
            "\(platform.name): \(platform.jobs.count) job\(platform.jobs.count == 1 ? "" : "s"): \(counts(platform.jobs))"
                + (platform.problem.map { " (live states unavailable: \($0))" } ?? "")
        }
        if platforms.count > 1 {
            let all = platforms.flatMap(\.jobs)
            lines.append("all: \(all.count) jobs: \(counts(all))")
        }
        return lines
    }
}
