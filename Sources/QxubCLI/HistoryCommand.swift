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
            package static let configuration = CommandConfiguration(commandName: "list", abstract: "List recent jobs.")
            @Option(name: [.customShort("n"), .customLong("limit")], help: "How many.") var limit = 20
            @Option(help: "Only jobs of this platform.") var platform: String?
            @Flag(
                name: .customLong("remote"),
                help: "Ask the platform's agent: every job submitted on the cluster, from any machine."
            ) var remote = false
            package init() {}
            package func run() throws {
                if remote {
                    let entries = try CLIFailure.catching { () throws(ClientError) -> [HistoryEntry] in
                        let resolved = try Platform.resolve(platform, configuration: try Configuration.load())
                        let requests = try AgentRequests(
                            endpoint: AgentEndpoint(platform: resolved, settings: .fromProcess())
                        )
                        defer { requests.close() }
                        return try requests.history(limit: max(1, limit))
                    }
                    if entries.isEmpty { print("no jobs yet") }
                    for entry in entries.reversed() {
                        let end = entry.exitStatus.map { "exit \($0)" } ?? "no exit yet"
                        print(
                            "\(LocalTime(time_t(entry.submittedAt)).minutes)  \(entry.jobID.padding(to: 18))\(end.padding(to: 12))\(entry.name)  (from \(entry.submitHost))"
                        )
                    }
                    return
                }
                let records = try History.store().recent(limit: max(1, limit), platform: platform)
                if records.isEmpty { print("no jobs yet") }
                for record in records.reversed() {
                    let stamp = LocalTime(time_t(record.submittedAt)).minutes
                    let end = record.exitCode.map { "exit \($0)" } ?? record.status
                    print(
                        "\(stamp)  \(record.jobID.padding(to: 18))\(record.platform.padding(to: 10))\(end.padding(to: 10))\(record.name)"
                    )
                }
            }
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
                print("status:     \(record.status)" + (record.exitCode.map { ", exit \($0)" } ?? ""))
            }
        }

        /// Prints one of a job's streams, fetched through the agent (so remote jobs work too).
        static func stream(_ jobID: String?, _ stream: Output.Stream, joblog: Bool = false) throws {
            let record = try find(jobID)
            let code = try CLIFailure.catching { () throws(ClientError) -> Int32 in
                let configuration = try Configuration.load()
                let platform =
                    record.platform == Platform.local.name
                    ? Platform.local : try Platform.resolve(record.platform, configuration: configuration)
                return try Exec.runSession(
                    endpoint: AgentEndpoint(platform: platform, settings: .fromProcess()),
                    start: .attach(jobID: record.jobID),
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
            package init() {}
            package func run() throws { try History.stream(jobID, .stdout) }
        }

        package struct Log: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "log",
                abstract: "Print a job's log: qxub's audit block and the scheduler's output (default: the newest job)."
            )
            @Argument(help: "Job id or a unique prefix.") var jobID: String?
            package init() {}
            package func run() throws { try History.stream(jobID, .stdout, joblog: true) }
        }

        package struct Err: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "err",
                abstract: "Print a job's stderr (waits for a running job; default: the newest job)."
            )
            @Argument(help: "Job id or a unique prefix.") var jobID: String?
            package init() {}
            package func run() throws { try History.stream(jobID, .stderr) }
        }
    }
}
