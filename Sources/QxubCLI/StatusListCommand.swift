import ArgumentParser
import QxubClient
import QxubProtocol

extension QxubCommand.Status {
    /// `qxub status list [--limit N] [--platform P]`
    package struct StatusList: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "The history's newest jobs with their live states, grouped per platform.",
            discussion: """
                Jobs the history has not seen end are asked about in one status query per platform (one \
                scheduler query on the agent's side); the ends found are recorded in the history. A platform \
                whose agent cannot be reached is listed with what the history knows and the reason, and the \
                command exits 69 after the list.
                """
        )
        @Option(name: [.customShort("n"), .customLong("limit")], help: "How many jobs (the newest).") var limit = 20
        @OptionGroup(title: "Where") var place: PlatformOptions
        package init() {}

        package func validate() throws {
            if limit < 1 { throw ValidationError("--limit \(limit): give a number of jobs, 1 or more") }
        }

        package func run() throws {
            try Self.show(limit: limit, place: place) { $0.listLines() }
        }

        /// Prints `lines` of the live states (or that there are no jobs); exits 69 after them when a platform's
        /// agent could not be reached.
        static func show(limit: Int, place: PlatformOptions, lines: (HistoryLiveStates) -> [String]) throws {
            let states = try gather(limit: limit, place: place)
            if states.platforms.isEmpty {
                print(place.platformName.map { "no jobs of \($0) in the history" } ?? "the history is empty")
                return
            }
            for line in lines(states) { print(line) }
            if states.platforms.contains(where: { $0.problem != nil }) { throw ExitCode(ExitCodes.unavailable) }
        }

        /// The newest `limit` records (of `--platform` when given) with live states: one agent session and
        /// one status query per platform; the ends it reports go into the history.
        static func gather(limit: Int, place: PlatformOptions) throws -> HistoryLiveStates {
            let records = try CLIFailure.catching { () throws(ClientError) -> [HistoryStore.Record] in
                do {
                    return try HistoryStore().recent(limit: limit, platform: place.platformName)
                } catch let error as ClientError {
                    throw error
                } catch {
                    throw ClientError("cannot read the history: \(error)", exitCode: ExitCodes.unavailable)
                }
            }
            let configuration = try CLIFailure.catching { () throws(ClientError) -> Configuration in
                try place.configuration()
            }
            return HistoryLiveStates.gather(records) { name, ids throws(ClientError) -> [JobStatus] in
                let platform = try Platform.resolve(name, configuration: configuration)
                let requests = try AgentRequests(
                    endpoint: AgentEndpoint(platform: platform, settings: place.settings())
                )
                defer { requests.close() }
                let statuses = try requests.status(ids)
                recordEnds(statuses, platform: name)
                return statuses
            }
        }
    }

    /// `qxub status summary [--limit N] [--platform P]`
    package struct StatusSummary: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "summary",
            abstract: "How many of the history's newest jobs are queued, held, running, succeeded, failed, unknown.",
            discussion: """
                Counts per platform (and over all platforms when there are several), from the same live states \
                as `qxub status list`: one status query per platform. Exits 69 when a platform's agent cannot \
                be reached (its jobs are then counted from what the history knows).
                """
        )
        @Option(name: [.customShort("n"), .customLong("limit")], help: "How many jobs (the newest).") var limit = 100
        @OptionGroup(title: "Where") var place: PlatformOptions
        package init() {}

        package func validate() throws {
            if limit < 1 { throw ValidationError("--limit \(limit): give a number of jobs, 1 or more") }
        }

        package func run() throws {
            try StatusList.show(limit: limit, place: place) { $0.summaryLines() }
        }
    }
}
