import QxubClient
import QxubProtocol

/// Job ids with the platform to ask about each: what `status`, `monitor`, `cancel` and `attach` use when
/// they are given ids.
struct RoutedJobs {
    /// One entry per platform, each with its ids in the order given (one agent session each).
    var groups: [(platform: Platform, jobIDs: [String])]
    /// The platform the history recorded for each id it has (empty with an explicit `--platform`).
    var recorded: [String: String]
    var explicit: Bool

    /// The stderr line for an id that `platform`'s agent has no record of.
    func unknownLine(_ jobID: String, platform: String) -> String {
        let why =
            explicit
            ? "the agent on \(platform) does not know it"
            : recorded[jobID] != nil
                ? "the history has it on \(platform), but the agent there does not know it"
                : "not in this machine's history, and the agent on \(platform) does not know it"
                    + " (a job submitted from elsewhere needs --platform)"
        return "qxub: \(jobID): unknown job: \(why)\n"
    }
}

extension JobStatus {
    /// The agent asked has no record of this id (nobody submitted it through qxub there).
    var isUnknownJob: Bool { state.phase == .unknown && state.detail == JobState.notAQxubJob }
}

extension PlatformOptions {
    /// The platform of each id: `--platform` when given, else the one the local history recorded, else the
    /// default platform. A remote job's id then needs no `--platform` on the machine that submitted it.
    func route(_ jobIDs: [String]) throws(ClientError) -> RoutedJobs {
        let configuration = try configuration()
        // A history that cannot be read routes nothing: every id goes to the default platform, as before.
        let recorded = platformName == nil ? ((try? HistoryStore().platforms(of: jobIDs)) ?? [:]) : [:]
        var groups: [(platform: Platform, jobIDs: [String])] = []
        for group in JobRouting(jobIDs, explicit: platformName, recorded: recorded).groups {
            let platform = try Platform.resolve(group.platform, configuration: configuration)
            // The default platform may be one the history named too: one session for both.
            if let at = groups.firstIndex(where: { $0.platform.name == platform.name }) {
                groups[at].jobIDs += group.jobIDs
            } else {
                groups.append((platform, group.jobIDs))
            }
        }
        return RoutedJobs(groups: groups, recorded: recorded, explicit: platformName != nil)
    }

    /// The platform to ask about one job (see ``route(_:)``).
    func platform(of jobID: String) throws(ClientError) -> Platform {
        if let routed = try route([jobID]).groups.first?.platform { return routed }
        return try platform()
    }
}
