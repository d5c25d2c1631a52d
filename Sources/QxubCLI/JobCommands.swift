import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

extension QxubCommand {
    /// `qxub cancel JOB...`
    package struct Cancel: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "cancel",
            abstract: "Cancel jobs submitted through qxub: by id, by name (a shell pattern), or all unfinished ones.",
            discussion: """
                --name and --all look in the local history for jobs not yet seen to end, and ask the agent about \
                them first (also with --dry-run): the jobs it reports ended are recorded as such and left out.
                """
        )
        @Argument(help: "Job ids (read from stdin, one per line, when none are given).") var jobIDs: [String] = []
        @Option(
            name: .customLong("name"),
            help: "Cancel unfinished jobs whose name matches this pattern (e.g. 'train-*')."
        ) var namePattern: String?
        @Flag(
            name: .customLong("all"),
            help: "Cancel every unfinished job of the history (of --platform when given, else of all platforms)."
        ) var all = false
        @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "List what would be cancelled.") var dryRun =
            false
        @OptionGroup(title: "Where") var place: PlatformOptions
        package init() {}

        package func validate() throws {
            if (namePattern != nil || all) && !jobIDs.isEmpty {
                throw ValidationError("give ids, --name or --all, not several")
            }
            if namePattern != nil && all { throw ValidationError("--name and --all exclude each other") }
        }

        package func run() throws {
            if let message = PythonSpellings.message(command: "cancel", arguments: jobIDs) {
                try? FileDescriptor.writeAll(2, message)
                throw ExitCode(ExitCodes.usage)
            }
            if namePattern != nil || all { return try cancelFromHistory() }
            let ids = jobIDs.isEmpty ? readIDsFromStdin() : jobIDs
            guard !ids.isEmpty else { throw ValidationError("no job ids: give them as arguments or on stdin") }
            if dryRun {
                for id in ids { print("\(id): would be cancelled") }
                return
            }
            let outcomes = try CLIFailure.catching { () throws(ClientError) -> [(String, String)] in
                // Ids of several platforms (as the history knows them): one session per platform.
                var outcomes: [(String, String)] = []
                for (platform, group) in try place.route(ids).groups {
                    let session = try AgentRequests(
                        endpoint: AgentEndpoint(platform: platform, settings: place.settings())
                    )
                    defer { session.close() }
                    outcomes += try session.cancel(group)
                }
                return outcomes
            }
            for (id, outcome) in outcomes { print("\(id): \(outcome)") }
            if outcomes.contains(where: { $0.1.hasPrefix("failed") }) { throw ExitCode(1) }
        }

        /// --name and --all: the history's unfinished jobs (of `--platform`, else of every platform that has
        /// some), each platform's asked about first and then cancelled over the same session. They need the
        /// agent even for a dry run.
        private func cancelFromHistory() throws {
            let platforms = try CLIFailure.catching { () throws(ClientError) -> [Platform] in
                if place.platformName != nil { return [try place.platform()] }
                let configuration = try place.configuration()
                var names: [String] = []
                for record in (try? History.store().unfinished()) ?? [] where !names.contains(record.platform) {
                    names.append(record.platform)
                }
                // No unfinished job anywhere: the default platform, for the message.
                if names.isEmpty { return [try Platform.resolve(nil, configuration: configuration)] }
                return try names.map { name throws(ClientError) -> Platform in
                    try Platform.resolve(name, configuration: configuration)
                }
            }
            var outcomes: [(String, String)] = []
            var found = false
            // Over several platforms, one that cannot be reached is said and the others are still cancelled;
            // qxub then exits with that platform's status.
            var unreachable: ClientError?
            for platform in platforms {
                let records = try History.store().unfinished(platform: platform.name)
                let candidates = records.filter { record in
                    namePattern.map { fnmatch($0, record.name, 0) == 0 } ?? true
                }.map(\.jobID)
                guard !candidates.isEmpty else { continue }
                let cancel = { () throws(ClientError) -> [(String, String)] in
                    let session = try AgentRequests(
                        endpoint: AgentEndpoint(platform: platform, settings: place.settings())
                    )
                    defer { session.close() }
                    let ids = try Self.stillUnfinished(candidates, requests: session, platform: platform.name)
                    found = found || !ids.isEmpty
                    if dryRun { return ids.map { ($0, "would be cancelled") } }
                    return try session.cancel(ids)
                }
                guard platforms.count > 1 else {
                    outcomes += try CLIFailure.catching(cancel)
                    continue
                }
                do throws(ClientError) {
                    outcomes += try cancel()
                } catch {
                    unreachable = unreachable ?? error
                    try? FileDescriptor.writeAll(2, "qxub: error: \(platform.name): \(error.description)\n")
                }
            }
            guard found else {
                if let unreachable { throw ExitCode(unreachable.exitCode) }
                let names = platforms.map(\.name).joined(separator: ", ")
                print("no unfinished jobs\(namePattern.map { " named \($0)" } ?? "") on \(names) in the history")
                return
            }
            for (id, outcome) in outcomes { print("\(id): \(outcome)") }
            if let unreachable { throw ExitCode(unreachable.exitCode) }
            if outcomes.contains(where: { $0.1.hasPrefix("failed") }) { throw ExitCode(1) }
        }

        /// The history only learns the ends of jobs that someone followed (a `--terse` job's end comes
        /// from nowhere): one status query for all `candidates` records the ends the agent reports, and
        /// those jobs are no longer candidates.
        static func stillUnfinished(
            _ candidates: [String],
            requests: AgentRequests,
            platform: String
        ) throws(ClientError) -> [String] {
            let ended = try requests.status(candidates).filter { $0.state.phase == .finished && $0.termination != nil }
            recordEnds(ended, platform: platform)
            let endedIDs = Set(ended.map(\.jobID))
            return candidates.filter { !endedIDs.contains($0) }
        }
    }

    /// `qxub status [check] JOB...`, `qxub status list`, `qxub status summary`
    package struct Status: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show where jobs are: queued, running or finished, and how they ended.",
            discussion: """
                `qxub status JOB...` (or `qxub status check JOB...`, the Python qxub's spelling) asks about jobs by \
                id; `qxub status list` and `qxub status summary` show the history's newest jobs with their live states.
                """,
            subcommands: [Check.self, StatusList.self, StatusSummary.self],
            defaultSubcommand: Check.self
        )
        package init() {}
    }
}

extension QxubCommand.Status {
    /// `qxub status [check] JOB... [--format human|json|snakemake|exitcode]`
    package struct Check: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Show where jobs are: queued, running or finished, and how they ended.",
            discussion: "--format snakemake prints success|running|failed (Snakemake's cluster-status contract)."
        )
        @Argument(help: "Job ids (read from stdin when none are given).") var jobIDs: [String] = []
        @Option(help: "human, json, snakemake or exitcode.", completion: .list(CompletionValues.statusFormats))
        var format: String = "human"
        /// The Python qxub's spelling (`qxub status check ID --snakemake`), so Snakemake profiles keep working.
        @Flag(name: .customLong("snakemake"), help: .hidden) var snakemake = false
        @OptionGroup(title: "Where") var place: PlatformOptions
        package init() {}

        package func validate() throws {
            guard ["human", "json", "snakemake", "exitcode"].contains(format) else {
                throw ValidationError("--format \(format): use human, json, snakemake or exitcode")
            }
        }

        package func run() throws {
            if let message = PythonSpellings.message(command: "status", arguments: jobIDs) {
                try? FileDescriptor.writeAll(2, message)
                throw ExitCode(ExitCodes.usage)
            }
            let given = jobIDs
            let format = snakemake ? "snakemake" : format
            let ids = given.isEmpty ? readIDsFromStdin() : given
            guard !ids.isEmpty else { throw ValidationError("no job ids: give them as arguments or on stdin") }
            let (routed, statuses, platformOf) = try CLIFailure.catching {
                () throws(ClientError) -> (RoutedJobs, [JobStatus], [String: String]) in
                let routed = try place.route(ids)
                var answers: [String: JobStatus] = [:]
                var platformOf: [String: String] = [:]
                for (platform, group) in routed.groups {
                    let requests = try AgentRequests(
                        endpoint: AgentEndpoint(platform: platform, settings: place.settings())
                    )
                    defer { requests.close() }
                    let statuses = try requests.status(group)
                    recordEnds(statuses, platform: platform.name)
                    for status in statuses {
                        answers[status.jobID] = status
                        platformOf[status.jobID] = platform.name
                    }
                }
                return (routed, ids.compactMap { answers[$0] }, platformOf)
            }
            var anyRunning = false
            var anyFailed = false
            // Ids no agent knows: on stderr, all in one write (there may be thousands).
            var unknown = ""
            for status in statuses {
                let code = status.termination.map { ExitCodes.exit(for: $0).code }
                if status.isUnknownJob {
                    unknown += routed.unknownLine(status.jobID, platform: platformOf[status.jobID] ?? "")
                }
                switch format {
                case "snakemake":
                    // An id nobody knows will never finish: failed, not running forever.
                    print(
                        status.isUnknownJob
                            ? "failed"
                            : status.state.phase != .finished ? "running" : (code == 0 ? "success" : "failed")
                    )
                case "json":
                    let exit = code.map { String($0) } ?? "null"
                    print(
                        "{\"job_id\": \"\(jsonEscape(status.jobID))\", \"status\": \"\(status.state.phase)\", \"host\": \"\(jsonEscape(status.state.host))\", \"exit_code\": \(exit)}"
                    )
                case "exitcode":
                    if status.isUnknownJob || (status.state.phase == .finished && code != 0) {
                        anyFailed = true
                    } else if status.state.phase != .finished {
                        anyRunning = true
                    }
                case _ where status.isUnknownJob:
                    break  // said on stderr
                default:
                    let end =
                        status.termination.map { termination -> String in
                            let (code, message) = ExitCodes.exit(for: termination)
                            return ", exit status \(code)" + (message.map { " (\($0))" } ?? "")
                        } ?? ""
                    let host = status.state.host.isEmpty ? "" : " on \(status.state.host)"
                    print(
                        "\(status.jobID): \(status.state.phase)\(host)\(end)"
                            + (status.state.detail.isEmpty ? "" : " [\(status.state.detail)]")
                    )
                }
            }
            if !unknown.isEmpty {
                fflush(nil)  // the answers printed so far go out first
                try? FileDescriptor.writeAll(2, unknown)
            }
            // As the Python qxub: 0 running, 2 finished OK, 1 failed; for several jobs a failure wins over
            // a running job, which wins over success (2 only when every job succeeded).
            if format == "exitcode" { throw ExitCode(anyFailed ? 1 : anyRunning ? 0 : 2) }
        }
    }

}

extension QxubCommand {
    /// `qxub monitor [JOB...]`: follow many jobs' states over one session until all have ended.
    package struct Monitor: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "monitor",
            abstract: "Wait for jobs to finish, showing their states; exit 0 only when every job succeeded.",
            discussion:
                "Without ids as arguments they are read from stdin (one per line), so `qxub exec --terse ... | qxub monitor` works."
        )
        @Argument(help: "Job ids.") var jobIDs: [String] = []
        @Option(name: [.customShort("i"), .customLong("interval")], help: "Seconds between checks.") var interval:
            Double = 5
        @Flag(name: .customLong("quiet"), help: "Only the final summary.") var quiet = false
        @Flag(name: .customLong("summary"), help: "Counts per state instead of a line per job.") var summary = false
        @Flag(
            name: .customLong("notify"),
            help: "Send a Slack/Discord message as each job ends (webhooks under notifications: in the configuration)."
        ) var notify = false
        @OptionGroup(title: "Where") var place: PlatformOptions
        package init() {}

        /// How long a job has run (or ran): from its started record to its exit record or now; "-" before it starts.
        static func elapsed(_ status: JobStatus, now: Double = MonotonicClock.wallNow()) -> String {
            guard status.startedAt > 0 else { return "-" }
            // Whole seconds, no conversion that can trap (the times are at most 2^63-1: see the protocol).
            let end = status.endedAt > 0 ? status.endedAt : UInt64(max(0, now))
            let seconds = Int(clamping: end >= status.startedAt ? end - status.startedAt : 0)
            return seconds >= 3600
                ? "\(seconds / 3600)h\(two(seconds / 60 % 60))m" : "\(seconds / 60)m\(two(seconds % 60))s"
        }

        private static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

        /// The live table on a terminal: one row per job, redrawn in place.
        func table(_ statuses: [JobStatus], names: [String: String], started: Double) -> [String] {
            if summary {
                var counts: [String: Int] = [:]
                for status in statuses {
                    let key: String
                    if status.state.phase == .finished {
                        key =
                            status.termination.map { ExitCodes.exit(for: $0).code == 0 } ?? false
                            ? "succeeded" : "failed"
                    } else {
                        key = "\(status.state.phase)"
                    }
                    counts[key, default: 0] += 1
                }
                return [
                    ["queued", "held", "running", "succeeded", "failed", "unknown"].compactMap { key in
                        counts[key].map { "\(key) \($0)" }
                    }.joined(separator: ", ")
                ]
            }
            var rows = [
                "JOB".padding(to: 22) + "NAME".padding(to: 24) + "STATE".padding(to: 10) + "ELAPSED".padding(to: 10)
                    + "EXIT"
            ]
            // The table goes to stdout: colour when that is a terminal and NO_COLOR is not set.
            let render = StatusLine(
                colour: StatusLine.usesColour(terminal: isatty(1) == 1, noColor: Environment.get("NO_COLOR"))
            )
            for status in statuses {
                let code = status.termination.map { ExitCodes.exit(for: $0).code }
                let state = StatusLine.monitorState(status.state.phase, exitCode: code)
                rows.append(
                    status.jobID.padding(to: 22) + String((names[status.jobID] ?? "").prefix(23)).padding(to: 24)
                        + render.paint(state.word, state.tone) + "".padding(to: 10 - state.word.count)
                        + Self.elapsed(status).padding(to: 10)
                        + (code.map(String.init) ?? "")
                )
            }
            let elapsed = Int(MonotonicClock.now() - started)
            rows.append("(\(elapsed / 60)m\(elapsed % 60)s; every \(interval)s; Ctrl-C stops watching)")
            return rows
        }

        /// The notice of a job's end as monitor saw it (elapsed from the job's own records).
        static func notice(_ status: JobStatus, name: String?, platform: String) -> JobEndNotice {
            let elapsed =
                status.startedAt > 0 && status.endedAt >= status.startedAt
                ? Int(clamping: status.endedAt - status.startedAt) : nil
            return JobEndNotice(
                jobID: status.jobID,
                name: name,
                platform: platform,
                exitCode: status.termination.map { ExitCodes.exit(for: $0).code } ?? ExitCodes.unavailable,
                elapsedSeconds: elapsed
            )
        }

        package func run() throws {
            let ids = Array(Set(jobIDs.isEmpty ? readIDsFromStdin() : jobIDs)).sorted()
            guard !ids.isEmpty else { throw ValidationError("no job ids: give them as arguments or on stdin") }
            let (succeeded, failed, unknown) = try CLIFailure.catching { () throws(ClientError) -> (Int, Int, Int) in
                // Ids of several platforms (as the history knows them): one session per platform.
                let routed = try place.route(ids)
                var sessions: [(platform: Platform, requests: AgentRequests, jobIDs: [String])] = []
                defer { for session in sessions { session.requests.close() } }
                for (platform, group) in routed.groups {
                    sessions.append(
                        (
                            platform,
                            try AgentRequests(endpoint: AgentEndpoint(platform: platform, settings: place.settings())),
                            group
                        )
                    )
                }
                var reported: Set<String> = []
                let live = !quiet && isatty(1) == 1
                var drawn = 0
                let started = MonotonicClock.now()
                var names: [String: String] = [:]
                if let history = try? HistoryStore() {
                    for id in ids { if let record = try? history.find(id) { names[id] = record.name } }
                }
                var notifier =
                    notify ? JobNotifier(settings: NotificationSettings(configuration: try place.configuration())) : nil
                for warning in notifier?.settings.warningsForNotify(followed: true) ?? [] {
                    try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n")
                }
                while true {
                    var statuses: [JobStatus] = []
                    var platformOf: [String: String] = [:]
                    for session in sessions {
                        let answered = try session.requests.status(session.jobIDs)
                        recordEnds(
                            answered.filter { $0.state.phase == .finished && !reported.contains($0.jobID) },
                            platform: session.platform.name
                        )
                        for status in answered { platformOf[status.jobID] = session.platform.name }
                        statuses += answered
                    }
                    if live {
                        // Redraw the table in place: up over what was drawn, clear, draw.
                        let rows = table(statuses, names: names, started: started)
                        var text = drawn > 0 ? "\u{1B}[\(drawn)A" : ""
                        for row in rows { text += "\r\u{1B}[K" + row + "\n" }
                        try? FileDescriptor.writeAll(1, text)
                        drawn = rows.count
                    }
                    var notices: [JobEndNotice] = []
                    for status in statuses where status.state.phase == .finished && !reported.contains(status.jobID) {
                        reported.insert(status.jobID)
                        notices.append(
                            Self.notice(status, name: names[status.jobID], platform: platformOf[status.jobID] ?? "")
                        )
                        if !quiet && !live {
                            let code = status.termination.map { ExitCodes.exit(for: $0).code } ?? ExitCodes.unavailable
                            // A failure is marked, so that it stands out among the jobs that ended well.
                            print("\(status.jobID): \(code == 0 ? "finished" : "FAILED"), exit status \(code)")
                        }
                    }
                    if notifier?.settings.webhooks.isEmpty == false, !notices.isEmpty {
                        for warning in notifier!.send(notices) {
                            try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n")
                        }
                    }
                    let finished = statuses.filter { $0.state.phase == .finished }
                    // Unknown because a scheduler query failed is not an end: ask again next round.
                    let unknown = statuses.filter {
                        $0.state.phase == .unknown && !$0.state.detail.containsText("query failed")
                    }
                    if finished.count + unknown.count == statuses.count {
                        // Unknown jobs are neither succeeded nor failed: said on stderr and counted apart.
                        var lines = ""
                        for status in unknown {
                            lines +=
                                status.isUnknownJob
                                ? routed.unknownLine(status.jobID, platform: platformOf[status.jobID] ?? "")
                                : "qxub: \(status.jobID): unknown: \(status.state.detail)\n"
                        }
                        try? FileDescriptor.writeAll(2, lines)
                        let ok = finished.filter { $0.termination.map { ExitCodes.exit(for: $0).code == 0 } ?? false }
                            .count
                        return (ok, finished.count - ok, unknown.count)
                    }
                    if !quiet && !live && summary {
                        print(table(statuses, names: names, started: started)[0])
                    }
                    usleep(UInt32(max(0.5, interval) * 1_000_000))
                }
            }
            print(
                "all jobs finished: \(succeeded) succeeded, \(failed) failed"
                    + (unknown > 0 ? ", \(unknown) unknown" : "")
            )
            if failed > 0 || unknown > 0 { throw ExitCode(1) }
        }
    }
}

/// Ends seen by status or monitor go into the history too (jobs submitted with --terse were not followed).
func recordEnds(_ statuses: [JobStatus], platform: String) {
    guard let history = try? HistoryStore() else { return }
    for status in statuses where status.state.phase == .finished {
        guard let termination = status.termination else { continue }
        let code = ExitCodes.exit(for: termination).code
        try? history.recordEnd(
            jobID: status.jobID,
            platform: platform,
            exitCode: code,
            status: code == 0 ? "succeeded" : "failed"
        )
    }
}

/// Job ids piped in (`qxub exec --terse ... | qxub monitor`).
/// Ids on stdin, one per line (or separated by spaces): the way to give thousands of them, which the
/// argument parser takes time quadratic in their number to read (30,000 ids: minutes).
func readIDsFromStdin() -> [String] {
    guard isatty(0) == 0, CommandLine.arguments.count > 0, let bytes = try? FileDescriptor.readAll(0, limit: 64 << 20)
    else { return [] }
    return String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " }).map(String.init)
}

func jsonEscape(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case _ where scalar.value < 0x20:
            result += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result
}
