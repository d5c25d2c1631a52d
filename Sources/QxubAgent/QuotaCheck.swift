import QxubSystem

/// Reads the disk quota of the state root once per agent session: `lquota` where it is on PATH (Gadi), else
/// `quota -w -p`, bounded by ``timeout``. Submissions wait for the answer (see ``JobService``); no command, a
/// failing or slow one, or output qxub cannot read gives no quota (a line in the agent log), never a refusal.
package final class QuotaCheck {
    /// How long the quota command may take: on a busy login node `quota` asks rquotad over NFS.
    package static let timeout: Double = 5

    private enum State {
        case notStarted
        case running(waiters: [(QuotaReport?) -> Void])
        case done(QuotaReport?)
    }

    private var state = State.notStarted
    private let commands: CommandRunner
    private let log: AgentLog
    private let path: String?
    private let mountinfo: () -> String?
    private let wallNow: () -> Double

    /// - Parameters:
    ///   - path: where `lquota` and `quota` are looked up (the agent's `PATH`).
    ///   - mountinfo: `/proc/self/mountinfo`, to find the device `quota` names for the state root.
    package init(
        commands: CommandRunner,
        log: AgentLog,
        path: String? = Environment.get("PATH"),
        mountinfo: @escaping () -> String? = { FileSystem.readText("/proc/self/mountinfo") },
        wallNow: @escaping () -> Double = MonotonicClock.wallNow
    ) {
        self.commands = commands
        self.log = log
        self.path = path
        self.mountinfo = mountinfo
        self.wallNow = wallNow
    }

    /// Calls `then` with the quota of the filesystem holding `root` (nil: none known): at once when it was read
    /// in this session, else when the quota command has answered or timed out.
    package func whenKnown(root: String, _ then: @escaping (QuotaReport?) -> Void) {
        switch state {
        case .done(let report):
            then(report)
        case .running(let waiters):
            state = .running(waiters: waiters + [then])
        case .notStarted:
            state = .running(waiters: [then])
            start(root: root)
        }
    }

    /// Forgets a quota read before: the next ``whenKnown(root:_:)`` runs the command again.
    package func forget() {
        if case .done = state { state = .notStarted }
    }

    /// The session ended: submissions still waiting are dropped (their replies have nowhere to go).
    package func stop() {
        if case .running = state { state = .running(waiters: []) }
    }

    private func start(root: String) {
        let command: [String]
        if let lquota = Environment.which("lquota", path: path) {
            command = [lquota]
        } else if let quota = Environment.which("quota", path: path) {
            command = [quota, "-w", "-p"]
        } else {
            return finish(nil)
        }
        do {
            try commands.run(command, Self.timeout) { [weak self] run in
                guard let self else { return }
                self.finish(self.report(run, command: command, root: root))
            }
        } catch {
            log.write("quota: could not run \(command[0]): \(error); no quota check")
            finish(nil)
        }
    }

    /// The quota in `run`'s output; quota-tools exit 1 when a quota is exceeded, so any exit with readable
    /// output counts, while a timed-out or killed run does not.
    private func report(_ run: CollectedRun, command: [String], root: String) -> QuotaReport? {
        let name = command[0].split(separator: "/").last.map(String.init) ?? command[0]
        guard !run.timedOut, case .exited = run.exit else {
            log.write("quota: \(name) did not finish within \(Int(Self.timeout)) s; no quota check")
            return nil
        }
        let text = String(decoding: run.stdout, as: UTF8.self)
        let report: QuotaReport?
        if name == "lquota" {
            report = QuotaReport.parseLquota(text, root: root)
        } else if let mount = mountinfo().flatMap({ QuotaReport.mountSource(of: root, mountinfo: $0) }) {
            report = QuotaReport.parseQuota(text, device: mount.source, now: Int(wallNow()))
        } else {
            report = nil
        }
        log.write(
            report.map { "quota: \($0.summary)" } ?? "quota: \(name) names no quota for \(root); no quota check"
        )
        return report
    }

    private func finish(_ report: QuotaReport?) {
        guard case .running(let waiters) = state else { return }
        state = .done(report)
        for waiter in waiters { waiter(report) }
    }
}
