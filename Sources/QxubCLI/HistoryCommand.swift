import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

extension QxubCommand {
    /// `qxub history [list] | show JOB | out JOB | err JOB`
    package struct History: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "history",
            abstract: "Jobs submitted from this machine (local and remote), newest first; a job's details and output.",
            subcommands: [List.self, Show.self, Out.self, Err.self, Log.self],
            defaultSubcommand: List.self
        )
        package init() {}

        static func store() throws(CLIFailure) -> HistoryStore {
            try CLIFailure.catching { () throws(ClientError) -> HistoryStore in try HistoryStore() }
        }

        static func find(_ jobID: String?) throws -> HistoryStore.Record {
            let store = try store()
            let record = try jobID.map { try store.find($0) } ?? store.recent(limit: 1).first
            guard let record else {
                throw CLIFailure(
                    ClientError(
                        jobID.map { "no job \($0) in the history (or the prefix matches several)" }
                            ?? "the history is empty",
                        hint: "`qxub history` lists the jobs",
                        exitCode: 1
                    )
                )
            }
            return record
        }

        package struct List: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "list",
                abstract: "List recent jobs, newest first, after a header line.",
                discussion: """
                    Columns: submitted (local time, to the second), job id, platform, status or exit, name.
                    --tag KEY=VALUE lists the jobs submitted with that --tag (--tag KEY: any value), --name the jobs
                    whose name matches (a shell pattern: --name 'align-*'); `history show ID` prints a job's tags
                    and output paths.
                    """
            )
            @Option(name: [.customShort("n"), .customLong("limit")], help: "How many (the newest).") var limit = 20
            @Option(help: "Only jobs of this platform.") var platform: String?
            @Option(help: "Only jobs with this tag: KEY=VALUE, or KEY for any value (as given with exec --tag).")
            var tag: String?
            @Option(help: "Only jobs of this name (a shell pattern such as 'align-*' matches several).")
            var name: String?
            @Flag(
                name: .customLong("remote"),
                help: "Ask the platform's agent: every job submitted on the cluster, from any machine."
            ) var remote = false
            package init() {}
            package func run() throws {
                if remote {
                    if tag != nil || name != nil {
                        throw ValidationError("--tag and --name filter this machine's history: not with --remote")
                    }
                    let entries = try CLIFailure.catching { () throws(ClientError) -> [HistoryEntry] in
                        let resolved = try Platform.resolve(platform, configuration: try Configuration.load())
                        let requests = try AgentRequests(
                            endpoint: AgentEndpoint(platform: resolved, settings: .fromProcess())
                        )
                        defer { requests.close() }
                        return try requests.history(limit: max(1, limit))
                    }
                    if entries.isEmpty { print("no jobs yet") } else { print(Self.remoteHeader) }
                    // The agent answers newest first.
                    for entry in entries {
                        let end = entry.exitStatus.map { "exit \($0)" } ?? "no exit yet"
                        print(
                            "\(LocalTime(time_t(entry.submittedAt)).seconds)  \(entry.jobID.padding(to: 18))\(end.padding(to: 12))\(entry.name)  (from \(entry.submitHost))"
                        )
                    }
                    return
                }
                let records = try History.store().recent(
                    limit: max(1, limit),
                    matching: HistoryStore.Filter(platform: platform, tag: tag, name: name)
                )
                if records.isEmpty { print("no jobs yet") } else { print(Self.header) }
                for record in records {
                    let stamp = LocalTime(time_t(record.submittedAt)).seconds
                    let end = record.exitCode.map { "exit \($0)" } ?? record.status
                    print(
                        "\(stamp)  \(record.jobID.padding(to: 18))\(record.platform.padding(to: 10))\(end.padding(to: 10))\(record.name)"
                    )
                }
            }

            /// The first line, on a terminal or not (as `ps` and `qstat` print theirs): scripts skip it with
            /// `tail -n +2`.
            static let header =
                "SUBMITTED".padding(to: 21) + "JOB".padding(to: 18) + "PLATFORM".padding(to: 10)
                + "STATUS".padding(to: 10)
                + "NAME"
            static let remoteHeader =
                "SUBMITTED".padding(to: 21) + "JOB".padding(to: 18) + "STATUS".padding(to: 12) + "NAME  (FROM HOST)"
        }

        package struct Show: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "show",
                abstract: "Everything recorded about one job (default: the newest)."
            )
            @Argument(help: "Job id or a unique prefix.") var jobID: String?
            package init() {}
            package func run() throws {
                let record = try History.find(jobID)
                print("job:        \(record.jobID)")
                print("platform:   \(record.platform) (\(record.backend))")
                print("name:       \(record.name)")
                print("command:    \(record.command)")
                print("directory:  \(record.workingDirectory)")
                print("state:      \(record.stateDirectory)")
                // The paths the job was given, else where the agent puts them (JobPaths' defaults).
                func path(_ given: String, _ file: String) -> String {
                    given.isEmpty ? record.stateDirectory + "/" + file : given
                }
                print("stdout:     \(path(record.stdoutPath, "out"))")
                print("stderr:     \(path(record.stderrPath, "err"))")
                print("joblog:     \(path(record.joblogPath, "joblog"))")
                if !record.tags.isEmpty { print("tags:       \(record.tags.joined(separator: ", "))") }
                print("status:     \(record.status)" + (record.exitCode.map { ", exit \($0)" } ?? ""))
            }
        }

        /// Prints one of a job's streams, fetched through the agent (so remote jobs work too): the agent of the
        /// platform the history recorded, or of `--platform` (which also reaches jobs the history lacks).
        static func stream(
            _ jobID: String?,
            _ stream: Output.Stream,
            joblog: Bool = false,
            place: PlatformOptions
        )
            throws
        {
            let target: (platform: String?, jobID: String)
            if let explicit = place.platformName {
                if let jobID {
                    target = (explicit, jobID)
                } else {
                    let newest = try store().recent(limit: 1, platform: explicit).first
                    guard let newest else {
                        throw CLIFailure(
                            ClientError(
                                "no job of \(explicit) in the history",
                                hint: "give the job id",
                                exitCode: 1
                            )
                        )
                    }
                    target = (explicit, newest.jobID)
                }
            } else {
                let record = try find(jobID)
                target = (record.platform, record.jobID)
            }
            let code = try CLIFailure.catching { () throws(ClientError) -> Int32 in
                let platform = try Platform.resolve(target.platform, configuration: try place.configuration())
                return try Exec.runSession(
                    endpoint: AgentEndpoint(platform: platform, settings: place.settings()),
                    start: .attach(jobID: target.jobID),
                    mode: .follow,
                    onlyStream: stream,
                    joblog: joblog
                )
            }
            if code == ExitCodes.unavailable || code == ExitCodes.connectionLost { throw ExitCode(code) }
        }

        package struct Out: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "out",
                abstract: "Print a job's stdout (waits for a running job; default: the newest job)."
            )
            @Argument(help: "Job id or a unique prefix.") var jobID: String?
            @OptionGroup(title: "Where") var place: PlatformOptions
            package init() {}
            package func run() throws { try History.stream(jobID, .stdout, place: place) }
        }

        package struct Log: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "log",
                abstract: "Print a job's log: qxub's audit block and the scheduler's output (default: the newest job)."
            )
            @Argument(help: "Job id or a unique prefix.") var jobID: String?
            @OptionGroup(title: "Where") var place: PlatformOptions
            package init() {}
            package func run() throws { try History.stream(jobID, .stdout, joblog: true, place: place) }
        }

        package struct Err: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "err",
                abstract: "Print a job's stderr (waits for a running job; default: the newest job)."
            )
            @Argument(help: "Job id or a unique prefix.") var jobID: String?
            @OptionGroup(title: "Where") var place: PlatformOptions
            package init() {}
            package func run() throws { try History.stream(jobID, .stderr, place: place) }
        }
    }
}
