/// Which platform's agent to ask about each job id: an explicit `--platform` for all of them, else the
/// platform the local history recorded for the id, else the default platform.
///
/// A remote job's id is then enough for `status`, `monitor`, `attach`, `cancel`: the history knows where
/// it was submitted. Ids of several platforms are asked one agent session per platform.
package struct JobRouting: Sendable, Hashable {
    /// The ids to ask one platform about, in the order given.
    package struct Group: Sendable, Hashable {
        /// A platform name; nil: the default one (`defaults.platform`, else this machine).
        package var platform: String?
        package var jobIDs: [String]
        package init(platform: String?, jobIDs: [String]) {
            self.platform = platform
            self.jobIDs = jobIDs
        }
    }

    /// One group per platform, in the order of each platform's first id.
    package var groups: [Group]
    /// The ids the history recorded (with their platform); ids absent here were not looked up or not found.
    package var recorded: [String: String]

    /// - Parameters:
    ///   - explicit: the `--platform` given, which wins over the history.
    ///   - recorded: the platform the history recorded for each id it has (not consulted with `explicit`).
    package init(_ jobIDs: [String], explicit: String?, recorded: [String: String]) {
        guard explicit == nil else {
            groups = jobIDs.isEmpty ? [] : [Group(platform: explicit, jobIDs: jobIDs)]
            self.recorded = [:]
            return
        }
        var groups: [Group] = []
        var index: [String?: Int] = [:]
        for id in jobIDs {
            let platform = recorded[id]
            if let at = index[platform] {
                groups[at].jobIDs.append(id)
            } else {
                index[platform] = groups.count
                groups.append(Group(platform: platform, jobIDs: [id]))
            }
        }
        self.groups = groups
        self.recorded = recorded
    }
}
