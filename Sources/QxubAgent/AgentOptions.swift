import QxubProtocol
import QxubScheduler
import QxubSystem

/// Everything the agent takes from its environment, read once where it starts (``fromEnvironment(_:)`` in
/// `qxub-agent serve`): nothing deeper reads the environment, and tests build the value they need.
package struct AgentOptions {
    package var store: JobStore
    /// The backend for jobs that do not name one.
    package var defaultKind: SchedulerKind
    /// Seconds between scheduler queries for jobs without an exit record.
    package var pollInterval: Double
    /// The longest wait between checks of a job whose end is being decided (seconds).
    package var maxTickInterval: Double
    /// The longest wait between checks of an idle job where changes may raise no event (seconds): inotify
    /// off or on a network filesystem, or a local job without a pidfd.
    package var maxIdleInterval: Double
    /// Job output queued for the client above which reading pauses (the files are the buffer).
    package var outputHighWater: Int
    /// Seconds between SIGTERM and SIGKILL to a cancelled local job's process group.
    package var cancelGrace: Double
    /// `{user}` and `{project}` in a job's working directory, and `~` in its output paths.
    package var user: String
    package var project: String
    package var home: String?
    /// The environment local jobs start in (the agent's own, as a login shell would pass it on).
    package var jobEnvironment: [String]
    /// inotify wakes the follow loop early; off (`QXUB_NO_INOTIFY`), the loop polls alone, as it must on
    /// Lustre and NFS for writes from compute nodes.
    package var watchFiles: Bool
    /// `QXUB_AGENT_DEBUG`: the log is mirrored on stderr from the start.
    package var debug: Bool
    /// This agent's own executable, which runs an interactive job's keeper (`qxub-agent keeper`); empty: no
    /// interactive jobs.
    package var keeperExecutable = ""

    package init(
        store: JobStore,
        defaultKind: SchedulerKind,
        pollInterval: Double = 5,
        maxTickInterval: Double = 0.5,
        maxIdleInterval: Double = 10,
        outputHighWater: Int = 1 << 20,
        cancelGrace: Double = 10,
        user: String = "",
        project: String = "",
        home: String? = nil,
        jobEnvironment: [String] = [],
        watchFiles: Bool = true,
        debug: Bool = false
    ) {
        self.store = store
        self.defaultKind = defaultKind
        self.pollInterval = pollInterval
        self.maxTickInterval = maxTickInterval
        self.maxIdleInterval = maxIdleInterval
        self.outputHighWater = outputHighWater
        self.cancelGrace = cancelGrace
        self.user = user
        self.project = project
        self.home = home
        self.jobEnvironment = jobEnvironment
        self.watchFiles = watchFiles
        self.debug = debug
    }

    /// From `NAME=value` entries (the process environment in `qxub-agent serve`): `QXUB_STATE_DIR` (else
    /// `$HOME/.qxub`), `QXUB_SCHEDULER` (else what `PATH` offers), `QXUB_POLL_INTERVAL`, `QXUB_NO_INOTIFY`,
    /// `QXUB_AGENT_DEBUG`, `USER` (else `LOGNAME`), `PROJECT`, `HOME`.
    package static func fromEnvironment(_ entries: [String]) -> AgentOptions {
        var values: [String: String] = [:]
        for entry in entries {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            let name = String(entry[..<equals])
            if values[name] == nil { values[name] = String(entry[entry.index(after: equals)...]) }
        }
        let home = values["HOME"]
        let root = values["QXUB_STATE_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? ((home ?? "/tmp") + "/.qxub")
        var options = AgentOptions(
            store: JobStore(root: root),
            defaultKind: SchedulerKind.detect(environment: { values[$0] }),
            user: values["USER"] ?? values["LOGNAME"] ?? "",
            project: values["PROJECT"] ?? "",
            home: home,
            jobEnvironment: entries,
            watchFiles: values["QXUB_NO_INOTIFY"] == nil,
            debug: values["QXUB_AGENT_DEBUG"] != nil
        )
        options.keeperExecutable = FileSystem.readLink("/proc/self/exe") ?? ""
        if let text = values["QXUB_POLL_INTERVAL"], let value = Double(text), value > 0 {
            options.pollInterval = value
        }
        return options
    }
}
