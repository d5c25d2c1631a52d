import QxubProtocol
import QxubScheduler
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Submits, follows, cancels and reports on jobs for one session.
///
/// Following is driven by a tick: job records first (written by the job script, so they are exact and
/// cost nothing to read), the scheduler only as a fallback, asked at most once per ``pollInterval`` for
/// all followed jobs together. inotify wakes the tick early where it works; elsewhere (Lustre, NFS
/// writes from compute nodes) the tick backs off from 50 ms to ``maxTickInterval``.
public final class JobService: AgentRequestHandler {
    public struct Options: Sendable {
        public var store: JobStore
        /// The backend for jobs that do not name one.
        public var defaultKind: SchedulerKind
        /// Seconds between scheduler queries for jobs without an exit record.
        public var pollInterval: Double
        public var maxTickInterval: Double
        /// Job output queued for the client above which reading pauses (the files are the buffer).
        public var outputHighWater: Int

        public init(
            store: JobStore,
            defaultKind: SchedulerKind,
            pollInterval: Double = 5,
            maxTickInterval: Double = 0.5,
            outputHighWater: Int = 1 << 20
        ) {
            self.store = store
            self.defaultKind = defaultKind
            self.pollInterval = pollInterval
            self.maxTickInterval = maxTickInterval
            self.outputHighWater = outputHighWater
        }

        /// From the environment: `QXUB_STATE_DIR`, `QXUB_SCHEDULER`, `QXUB_POLL_INTERVAL`.
        public static func fromEnvironment() -> Options {
            var options = Options(store: JobStore(root: JobStore.defaultRoot()), defaultKind: SchedulerKind.detect())
            if let text = Environment.get("QXUB_POLL_INTERVAL"), let value = Double(text), value > 0 {
                options.pollInterval = value
            }
            return options
        }
    }

    private let options: Options
    private weak var session: AgentSession?
    private var followers: [UInt32: JobFollower] = [:]
    private var localChildren: Set<pid_t> = []
    private var tickTimer: Int?
    private var tickInterval = 0.05
    private var fileWatcher: FileWatcher?
    private var schedulerQueryRunning: Set<SchedulerKind> = []
    private var lastSchedulerQuery: [SchedulerKind: Double] = [:]
    private var schedulerInfo: [String: SchedulerJobInfo] = [:]
    /// Whether each scheduler keeps finished jobs (PBS `job_history_enable`), learned from its first answer.
    private var historyEnabled: [SchedulerKind: Bool] = [:]
    private var schedulerAnswers = 0

    public init(options: Options) {
        self.options = options
    }

    public func sessionReady(_ session: AgentSession) {
        self.session = session
        AgentLog.path = options.store.root + "/agent.log"
        try? FileSystem.createDirectories(options.store.root)
        if session.negotiation?.peer.capabilities.contains(ProtocolConstants.capabilityVerbose) == true {
            AgentLog.mirrorToStderr = true
        }
        AgentLog.write(
            "session from \(session.negotiation?.peer.software ?? "?") on \(session.negotiation?.peer.hostname ?? "?"); scheduler \(options.defaultKind)"
        )
        // QXUB_NO_INOTIFY=1 measures the polling path alone (what Lustre and NFS get for remote writes).
        if Environment.get("QXUB_NO_INOTIFY") == nil {
            fileWatcher = FileWatcher(loop: session.loop) { [weak self] in self?.tickSoon() }
        }
    }

    /// qsub/sbatch runs the agent has started and not yet recorded. When the client goes away meanwhile,
    /// the agent stays until they are recorded (see ``AgentServer``); submissions still waiting are dropped
    /// (nothing of them exists yet, and a retry submits them).
    public var workInFlight: Int { runningSubmissions + runningCancels }
    private var runningCancels = 0

    public func sessionEnded(_ session: AgentSession) {
        waitingSubmissions.removeAll()
        AgentLog.write("session ended: \(session.ending.map { "\($0)" } ?? "?")")
        if let tickTimer { session.loop.cancelTimer(tickTimer) }
        tickTimer = nil
        followers.removeAll()
    }

    public func outputDrained(_ session: AgentSession) {
        if !followers.isEmpty { tickSoon() }
    }

    public func handle(_ message: Message, channel: UInt32, session: AgentSession) -> Bool {
        self.session = session
        switch message {
        case .submit(let submit):
            // A login node is shared: a batch of a thousand jobs runs qsub/sbatch a few at a time.
            if runningSubmissions >= Self.maxConcurrentSubmissions {
                waitingSubmissions.append(submit)
            } else {
                self.submit(submit)
            }
        case .watch(let watch): self.watch(watch, channel: channel)
        case .unwatch(let request):
            followers[channel] = nil
            _ = request
        case .cancel(let request): cancel(request)
        case .statusQuery(let query): status(query)
        case .historyQuery(let query):
            let limit = Int(min(max(query.limit, 1), 10_000))
            let entries = options.store.history(limit: limit)
            for report in HistoryReport.split(
                requestID: query.requestID,
                entries: entries,
                maxPayload: replyBudget(session)
            ) {
                session.send(.historyReport(report))
            }
        default: return false
        }
        return true
    }

    /// The largest payload of one report: the peer's maximum for a client that collects split replies,
    /// unbounded (one report, as before) for one that does not.
    private func replyBudget(_ session: AgentSession) -> Int {
        guard let negotiation = session.negotiation,
            negotiation.peer.capabilities.contains(ProtocolConstants.capabilitySplitReplies)
        else { return .max }
        return negotiation.peerMaxPayload
    }

    // MARK: - Submit

    private func kind(for spec: JobSpec) throws(SchedulerError) -> SchedulerKind {
        guard !spec.backend.isEmpty else { return options.defaultKind }
        guard let kind = SchedulerKind(name: spec.backend) else {
            throw SchedulerError(
                .malformedRequest,
                "unknown backend '\(spec.backend)'",
                hint: "use local, slurm or pbspro"
            )
        }
        return kind
    }

    /// `{user}` and `{project}` left by the client for this side (`{{user}}` in the Python qxub's
    /// `working_dir`), and output paths relative to the job's working directory.
    static func resolvedOnThisHost(_ spec: JobSpec) -> JobSpec {
        var spec = spec
        let user = Environment.get("USER") ?? Environment.get("LOGNAME") ?? ""
        let project = Environment.get("PROJECT") ?? ""
        spec.workingDirectory = spec.workingDirectory.replacingAll("{user}", with: user).replacingAll(
            "{project}",
            with: project
        )
        let base = spec.workingDirectory.isEmpty ? (Environment.get("HOME") ?? "/") : spec.workingDirectory
        func absolute(_ path: String?) -> String? {
            guard let path, !path.isEmpty else { return nil }
            if path.hasPrefix("/") { return path }
            if path.hasPrefix("~/") { return (Environment.get("HOME") ?? "") + path.dropFirst() }
            return base + "/" + path
        }
        spec.stdoutPath = absolute(spec.stdoutPath)
        spec.stderrPath = absolute(spec.stderrPath)
        spec.joblogPath = absolute(spec.joblogPath)
        return spec
    }

    private func submit(_ submit: Submit) {
        guard let session else { return }
        let spec = Self.resolvedOnThisHost(submit.spec)
        var createdDirectory: String?
        do {
            let kind = try kind(for: spec)
            if submit.dryRun {
                let directory = options.store.plannedJobDirectory()
                let paths = JobPaths(
                    stateDirectory: directory,
                    stdout: spec.stdoutPath,
                    stderr: spec.stderrPath,
                    joblog: spec.joblogPath
                )
                let rendered = try SchedulerBackend(kind: kind).submission(for: spec, paths: paths)
                session.send(
                    .submitted(
                        Submitted(
                            requestID: submit.requestID,
                            jobID: "",
                            backend: kind.rawValue,
                            stateDirectory: directory,
                            script: rendered.script,
                            command: rendered.command,
                            warnings: rendered.warnings
                        )
                    )
                )
                return
            }
            if !submit.token.isEmpty, let earlier = options.store.directory(forToken: submit.token) {
                // A retry (the client lost the connection before our answer): the job of the first attempt.
                return answerRetriedSubmission(
                    submit,
                    directory: earlier,
                    deadline: MonotonicClock.now() + Self.retriedSubmissionWait
                )
            }
            let directory = try options.store.createJobDirectory()
            createdDirectory = directory
            if !submit.token.isEmpty, try !options.store.link(token: submit.token, to: directory) {
                // The token is taken. Ours (NFS retransmitted the symlink) or another agent's, which got there
                // between our look and our link: never submit a second time; answer with its job.
                if let target = options.store.tokenTarget(submit.token), target != directory {
                    createdDirectory = nil
                    rmdir(directory)
                    return answerRetriedSubmission(
                        submit,
                        directory: target,
                        deadline: MonotonicClock.now() + Self.retriedSubmissionWait
                    )
                }
            }
            let paths = JobPaths(
                stateDirectory: directory,
                stdout: spec.stdoutPath,
                stderr: spec.stderrPath,
                joblog: spec.joblogPath
            )
            let rendered = try SchedulerBackend(kind: kind).submission(for: spec, paths: paths)
            try FileSystem.writeAtomically(paths.script, rendered.script, mode: 0o700)
            var meta = JobMeta()
            meta["backend"] = kind.rawValue
            meta["name"] = spec.name
            meta["stdout"] = paths.stdout
            meta["stderr"] = paths.stderr
            meta["joblog"] = paths.joblog
            meta["workdir"] = spec.workingDirectory
            meta["submitted"] = String(Int(MonotonicClock.wallNow()))
            meta["submit_host"] = spec.submitHost
            meta["command"] = rendered.command.joined(separator: " ")
            if let walltime = spec.resources.requestedWalltimeSeconds { meta["walltime"] = String(walltime) }
            if !spec.tags.isEmpty { meta["tags"] = spec.tags.map { $0.key + "=" + $0.value }.joined(separator: ",") }
            try FileSystem.writeAtomically(paths.metaRecord, meta.serialized())
            // PBS copies the job log into place when the job ends: its directory must exist.
            try? FileSystem.createDirectories(FileSystem.directoryName(paths.joblog))
            for path in [paths.stdout, paths.stderr] {
                try? FileSystem.createDirectories(FileSystem.directoryName(path))
            }
            if kind == .local {
                try submitLocal(submit, paths: paths, warnings: rendered.warnings)
            } else {
                try AsyncCommand.run(rendered.command, on: session.loop, timeout: 120) { [weak self] run in
                    guard let self else { return }
                    self.runningSubmissions -= 1
                    self.submitted(submit, kind: kind, paths: paths, run: run, warnings: rendered.warnings)
                    self.startWaitingSubmissions()
                }
                runningSubmissions += 1
            }
        } catch let error as SchedulerError {
            refuse(submit, directory: createdDirectory, code: error.code, message: error.message, hint: error.hint)
        } catch {
            refuse(
                submit,
                directory: createdDirectory,
                code: .submitFailed,
                message: "could not prepare the job: \(error)",
                hint: "check that \(options.store.root) is writable"
            )
        }
    }

    /// Answers a refused submission; the refusal is recorded in the job's directory first, so a retry of
    /// the same submission (its token) gets the same answer.
    private func refuse(_ submit: Submit, directory: String?, code: ErrorCode, message: String, hint: String) {
        if let directory, !submit.token.isEmpty {
            try? FileSystem.writeAtomically(directory + "/submit-error", "\(code.rawValue)\n\(message)\n\(hint)\n")
        }
        session?.sendError(requestID: submit.requestID, code: code, message: message, hint: hint)
    }

    /// Seconds a retried submission waits for the first attempt's qsub/sbatch to finish (its timeout is 120 s).
    static let retriedSubmissionWait: Double = 130

    /// Answers a retried submission with the first attempt's outcome: its job, its refusal, or, while
    /// that attempt's qsub/sbatch still runs (in the agent of the lost connection), a look every 100 ms.
    private func answerRetriedSubmission(_ submit: Submit, directory: String, deadline: Double) {
        guard let session, session.ending == nil else { return }
        let meta = JobMeta(parsing: FileSystem.readText(directory + "/meta") ?? "")
        if let jobID = FileSystem.readText(directory + "/jobid")?.trimmingWhitespace(), !jobID.isEmpty {
            AgentLog.write("retried submission \(submit.token): job \(jobID) of the first attempt")
            return session.send(
                .submitted(
                    Submitted(
                        requestID: submit.requestID,
                        jobID: jobID,
                        backend: meta["backend"] ?? options.defaultKind.rawValue,
                        stateDirectory: directory
                    )
                )
            )
        }
        if let refusal = FileSystem.readText(directory + "/submit-error") {
            let lines = refusal.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let code = lines.first.flatMap(UInt32.init).map(ErrorCode.init(rawValue:)) ?? .submitFailed
            return session.sendError(
                requestID: submit.requestID,
                code: code,
                message: lines.count > 1 ? lines[1] : "the submission failed",
                hint: lines.count > 2 ? lines[2] : ""
            )
        }
        guard MonotonicClock.now() < deadline else {
            return session.sendError(
                requestID: submit.requestID,
                code: .submitFailed,
                message:
                    "an earlier attempt of this submission (\(directory)) never recorded a job id: its agent may have been killed while the scheduler took the job",
                hint: "look for the job with qstat/squeue before submitting it again"
            )
        }
        session.loop.schedule(after: 0.1) { [weak self] in
            self?.answerRetriedSubmission(submit, directory: directory, deadline: deadline)
        }
    }

    /// Scheduler submissions (qsub, sbatch) running at once; more wait in ``waitingSubmissions``.
    static let maxConcurrentSubmissions = 4
    private var runningSubmissions = 0
    private var waitingSubmissions: [Submit] = []

    private func startWaitingSubmissions() {
        while runningSubmissions < Self.maxConcurrentSubmissions, !waitingSubmissions.isEmpty {
            submit(waitingSubmissions.removeFirst())
        }
    }

    /// Records the scheduler's answer. It runs even after the client has gone (the session then sends
    /// nothing): the job must be on record for a retry of the submission, `qxub attach` and the history.
    private func submitted(
        _ submit: Submit,
        kind: SchedulerKind,
        paths: JobPaths,
        run: CollectedRun,
        warnings: [String]
    ) {
        guard let session else { return }
        do {
            let jobID = try SchedulerBackend(kind: kind).submittedJobID(run)
            try options.store.link(jobID: jobID, to: paths.stateDirectory)
            AgentLog.write("submitted \(jobID) (\(kind)) in \(paths.stateDirectory)")
            options.store.appendHistory(
                jobID: jobID,
                backend: kind.rawValue,
                name: submit.spec.name,
                directory: paths.stateDirectory,
                submitHost: submit.spec.submitHost
            )
            session.send(
                .submitted(
                    Submitted(
                        requestID: submit.requestID,
                        jobID: jobID,
                        backend: kind.rawValue,
                        stateDirectory: paths.stateDirectory,
                        warnings: warnings
                    )
                )
            )
        } catch let error as SchedulerError {
            refuse(submit, directory: paths.stateDirectory, code: error.code, message: error.message, hint: error.hint)
        } catch {
            // The scheduler has the job but the index could not be written: still report the job, never lose it.
            let jobID = (try? SchedulerBackend(kind: kind).submittedJobID(run)) ?? "?"
            session.send(
                .submitted(
                    Submitted(
                        requestID: submit.requestID,
                        jobID: jobID,
                        backend: kind.rawValue,
                        stateDirectory: paths.stateDirectory,
                        warnings: ["could not index the job under \(options.store.root): \(error)"]
                    )
                )
            )
        }
    }

    private func submitLocal(_ submit: Submit, paths: JobPaths, warnings: [String]) throws {
        guard let session else { return }
        let jobID = "local-" + JobStore.randomHex(8)
        let log = open(paths.joblog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw SystemError("open", paths.joblog) }
        defer { FileDescriptor.close(log) }
        var environment = Environment.all().filter { !$0.hasPrefix("QXUB_JOB_ID=") }
        environment.append("QXUB_JOB_ID=" + jobID)
        try options.store.link(jobID: jobID, to: paths.stateDirectory)
        let child = try ChildProcess.spawn(
            ["/bin/bash", paths.script],
            environment: environment,
            stdin: .null,
            stdout: .fileDescriptor(log),
            stderr: .fileDescriptor(log),
            newSession: true
        )
        localChildren.insert(child.pid)
        try FileSystem.writeAtomically(paths.pidRecord, "\(child.pid)\n")
        AgentLog.write("started \(jobID) (local, process group \(child.pid)) in \(paths.stateDirectory)")
        options.store.appendHistory(
            jobID: jobID,
            backend: SchedulerKind.local.rawValue,
            name: submit.spec.name,
            directory: paths.stateDirectory,
            submitHost: submit.spec.submitHost
        )
        session.send(
            .submitted(
                Submitted(
                    requestID: submit.requestID,
                    jobID: jobID,
                    backend: SchedulerKind.local.rawValue,
                    stateDirectory: paths.stateDirectory,
                    warnings: warnings
                )
            )
        )
        tickSoon()
    }

    // MARK: - Watch

    private func watch(_ watch: Watch, channel: UInt32) {
        guard let session else { return }
        guard channel != 0 else {
            return session.sendError(
                requestID: watch.requestID,
                code: .malformedRequest,
                message: "watch needs a channel other than 0"
            )
        }
        guard let jobID = options.store.canonicalJobID(watch.jobID),
            let directory = options.store.directory(forJobID: jobID)
        else {
            return session.sendError(
                requestID: watch.requestID,
                code: .unknownJob,
                message:
                    "no job \(watch.jobID) submitted through qxub is known on \(Environment.hostname()) (looked in \(options.store.root))",
                hint: "check the id with `qxub history`"
            )
        }
        let (meta, kind, storedPaths) = options.store.job(directory: directory, defaultKind: options.defaultKind)
        var paths = storedPaths
        if watch.joblog {
            // The job log as the only stream (PBS copies it into place when the job ends).
            paths.stdout = paths.joblog
            paths.stderr = paths.joblog
        }
        let follower = JobFollower(
            jobID: jobID,
            channel: channel,
            requestID: watch.requestID,
            paths: paths,
            kind: kind,
            stdoutOffset: watch.stdoutOffset,
            stderrOffset: watch.stderrOffset
        )
        follower.walltime = meta["walltime"].flatMap { UInt64($0) }
        followers[channel] = follower
        for path in Set([directory, FileSystem.directoryName(paths.stdout), FileSystem.directoryName(paths.stderr)]) {
            fileWatcher?.watch(path)
        }
        if !follower.hasStarted {
            send(follower, state: JobState(phase: .queued))
        }
        tickSoon()
    }

    // MARK: - Following

    private func tickSoon() {
        guard let session else { return }
        if let tickTimer { session.loop.cancelTimer(tickTimer) }
        tickInterval = 0.05
        tickTimer = session.loop.schedule(after: 0.005) { [weak self] in self?.tick() }
    }

    private func scheduleTick() {
        guard let session, !followers.isEmpty || !localChildren.isEmpty else {
            tickTimer = nil
            return
        }
        tickTimer = session.loop.schedule(after: tickInterval) { [weak self] in self?.tick() }
    }

    private func tick() {
        tickTimer = nil
        guard let session, session.ending == nil else { return }
        reapLocalChildren()
        var progressed = false
        let now = MonotonicClock.now()
        for follower in followers.values.sorted(by: { $0.channel < $1.channel }) where !follower.ended {
            if advance(follower, now: now) { progressed = true }
        }
        followers = followers.filter { !$0.value.ended }
        querySchedulersIfDue(now: now)
        tickInterval = progressed ? 0.05 : min(options.maxTickInterval, tickInterval * 2)
        scheduleTick()
    }

    /// One step for one job; returns whether anything was sent.
    private func advance(_ follower: JobFollower, now: Double) -> Bool {
        guard let session else { return false }
        if follower.pendingEnd != nil { return drainAndEnd(follower) }
        var progressed = false
        follower.refreshRecords()
        let records = follower.records
        // The running state always comes before the job's first output (even for a job that already ended).
        if let host = records.startedHost, follower.sentState?.phase != .running {
            progressed = send(follower, state: JobState(phase: .running, host: host)) || progressed
        }
        var atEnd = true
        if follower.hasStarted {
            let budget = options.outputHighWater - session.pendingOutputBytes
            guard budget > 0 else { return progressed }  // the client is slow: the files hold the rest
            let pumped = follower.pump(budget: budget) { output in
                session.send(.output(output), channel: follower.channel)
            }
            atEnd = pumped.atEnd
            if pumped.bytes > 0 { progressed = true }
        }
        if let termination = follower.terminationFromRecord() {
            guard atEnd else { return progressed }
            // A TERM, a signal death or a run up to the walltime may be the scheduler's doing (walltime, memory,
            // qdel): its verdict wins over the job's own record. Ask it, and where it keeps no history, read
            // the job log once the scheduler has let the job go.
            if follower.recordNeedsVerdict {
                if follower.awaitingVerdictSince == nil { follower.awaitingVerdictSince = now }
                let info = schedulerInfo[follower.jobID]
                if let info, info.phase == .finished, case .killedByScheduler = info.termination {
                    return finish(follower, info.termination!)
                }
                let released = info?.phase == .finished || (info == nil && follower.missingFromScheduler > 0)
                if released, let verdict = jobLogVerdict(follower.kind, follower.paths) {
                    return finish(follower, verdict)
                }
                let waited = now - follower.awaitingVerdictSince!
                if !released && waited < Self.verdictWait { return progressed }
                // Released: the job log may still be on its way (PBS copies it into place as the job ends).
                if released && !FileSystem.exists(follower.paths.joblog) && waited < Self.verdictWait {
                    return progressed
                }
            }
            return finish(follower, termination)
        }
        // No exit record (yet): the scheduler, or for local jobs the process, decides.
        if follower.kind == .local {
            return advanceLocal(follower, now: now) || progressed
        }
        guard let info = schedulerInfo[follower.jobID] else {
            // Without job history the scheduler forgets a job as it ends: twice unknown is gone.
            if follower.missingFromScheduler >= (historyEnabled[follower.kind] == false ? 2 : 3) {
                if records.cancelled { return finish(follower, .cancelled(ranFirst: follower.hasStarted)) }
                if let verdict = jobLogVerdict(follower.kind, follower.paths) { return finish(follower, verdict) }
                if let unwritten = JobRecords.unwrittenExit(follower.paths) { return finish(follower, unwritten) }
                let why =
                    historyEnabled[follower.kind] == false
                    ? "the scheduler keeps no job history, so it forgot job \(follower.jobID) as it ended, and the job left no exit record"
                    : "the scheduler no longer knows job \(follower.jobID) and it left no exit record (purged from the scheduler's history?)"
                return finish(follower, .unknown(why))
            }
            return progressed
        }
        switch info.phase {
        case .queued, .held:
            if !follower.hasStarted {
                progressed = send(follower, state: JobState(phase: info.phase, detail: info.rawState)) || progressed
            }
        case .running:
            if !follower.hasStarted {
                progressed =
                    send(follower, state: JobState(phase: .running, host: info.host, detail: info.rawState))
                    || progressed
            }
        case .finished:
            // A cancel we asked for needs no confirmation from the records.
            if records.cancelled { return finish(follower, .cancelled(ranFirst: follower.hasStarted)) }
            if follower.finishedWithoutRecordSince == nil { follower.finishedWithoutRecordSince = now }
            // Give a late exit record (NFS attribute caches) a few seconds before trusting the scheduler.
            guard now - follower.finishedWithoutRecordSince! >= 3 else { return progressed }
            // The scheduler's own verdict wins, except a plain exit status: the job's trace also says why it
            // left no record.
            if let unwritten = JobRecords.unwrittenExit(follower.paths),
                info.termination.map({
                    if case .exited = $0 { return true } else { return false }
                }) ?? true
            {
                return finish(follower, unwritten)
            }
            if let termination = info.termination { return finish(follower, termination) }
            if let detail = follower.detail, let termination = detail.termination {
                return finish(follower, termination)
            }
            if !follower.detailRequested,
                let command = SchedulerBackend(kind: follower.kind).detailCommand(follower.jobID)
            {
                follower.detailRequested = true
                do {
                    try AsyncCommand.run(command, on: session.loop, timeout: 60) { [weak follower] run in
                        follower?.detail =
                            SchedulerBackend(kind: .slurm).parseDetail(run)[follower?.jobID ?? ""]
                            ?? SchedulerJobInfo(jobID: "", phase: .unknown)
                    }
                } catch {
                    // Without the detail the end is unknown, which is better than waiting for it forever.
                    AgentLog.write("cannot run \(command.first ?? ""): \(error)")
                    follower.detail = SchedulerJobInfo(jobID: "", phase: .unknown)
                }
                return progressed
            }
            if follower.detailRequested && follower.detail == nil { return progressed }
            return finish(follower, .unknown("the scheduler says \(info.rawState) and the job left no exit record"))
        case .unknown:
            break
        }
        return progressed
    }

    private func advanceLocal(_ follower: JobFollower, now: Double) -> Bool {
        guard let pid = FileSystem.readText(follower.paths.pidRecord).flatMap({ pid_t($0.trimmingWhitespace()) }) else {
            return false
        }
        if kill(pid, 0) == 0 || currentErrno() == EPERM {
            return false  // still running
        }
        if follower.finishedWithoutRecordSince == nil { follower.finishedWithoutRecordSince = now }
        guard now - follower.finishedWithoutRecordSince! >= 0.5 else { return false }
        follower.refreshRecords()
        if follower.records.exitStatus != nil { return false }  // arrived meanwhile; next tick finishes it
        if follower.records.cancelled { return finish(follower, .cancelled(ranFirst: follower.hasStarted)) }
        if let unwritten = JobRecords.unwrittenExit(follower.paths) { return finish(follower, unwritten) }
        return finish(
            follower,
            .killedByScheduler(
                .other,
                detail: "the job's processes ended without recording an exit status (killed from outside qxub?)",
                ranFirst: follower.hasStarted
            )
        )
    }

    @discardableResult
    private func send(_ follower: JobFollower, state: JobState) -> Bool {
        guard follower.sentState != state else { return false }
        follower.sentState = state
        session?.send(.jobState(state), channel: follower.channel)
        return true
    }

    /// Decides the job's end. Whatever the files still hold goes out first, within the output budget (a
    /// slow client gets the rest as it drains), through freshly opened files: on NFS a descriptor opened
    /// while the job ran can miss the last writes (close-to-open consistency).
    private func finish(_ follower: JobFollower, _ termination: JobTermination) -> Bool {
        follower.pendingEnd = termination
        follower.closeFiles()
        return drainAndEnd(follower)
    }

    private func drainAndEnd(_ follower: JobFollower) -> Bool {
        guard let session, let termination = follower.pendingEnd else { return false }
        let budget = options.outputHighWater - session.pendingOutputBytes
        guard budget > 0 else { return false }
        let pumped = follower.pump(budget: budget) { output in session.send(.output(output), channel: follower.channel)
        }
        guard pumped.atEnd else { return pumped.bytes > 0 }
        send(follower, state: JobState(phase: .finished))
        recordEnd(termination, paths: follower.paths)
        session.send(.jobEnd(termination), channel: follower.channel)
        follower.ended = true
        follower.closeFiles()
        return true
    }

    /// Seconds a job's own record waits for the scheduler's verdict before it is taken as the end.
    static let verdictWait: Double = 30

    /// The scheduler's kill verdict from the end of the job log, or nil.
    private func jobLogVerdict(_ kind: SchedulerKind, _ paths: JobPaths) -> JobTermination? {
        SchedulerBackend(kind: kind).killVerdict(jobLogAt: paths.joblog)
    }

    /// Keeps the decided end with the job (for `history --remote` and later status queries); once only.
    private func recordEnd(_ termination: JobTermination, paths: JobPaths) {
        guard !FileSystem.exists(paths.endRecord) else { return }
        let word: String
        switch termination {
        case .exited: word = "exited"
        case .signaled: word = "signaled"
        case .killedByScheduler(let reason, _, _): word = "\(reason)".replacingAll(" ", with: "-")
        case .cancelled: word = "cancelled"
        case .unknown: word = "unknown"
        case .exitUnrecorded: word = "exited-unrecorded"
        }
        try? FileSystem.writeAtomically(
            paths.endRecord,
            "\(termination.exitStatus) \(Int(MonotonicClock.wallNow())) \(word)\n"
        )
    }

    private func reapLocalChildren() {
        for pid in localChildren {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && currentErrno() == ECHILD) { localChildren.remove(pid) }
        }
    }

    // MARK: - Scheduler queries

    private func querySchedulersIfDue(now: Double) {
        var idsByKind: [SchedulerKind: [String]] = [:]
        var urgent: Set<SchedulerKind> = []
        for follower in followers.values where follower.kind != .local {
            let needsVerdict = follower.awaitingVerdictSince != nil
            guard follower.records.exitStatus == nil || needsVerdict else { continue }
            idsByKind[follower.kind, default: []].append(follower.jobID)
            if needsVerdict || follower.finishedWithoutRecordSince != nil || follower.records.cancelled
                || follower.missingFromScheduler > 0
            {
                urgent.insert(follower.kind)
            }
        }
        for (kind, ids) in idsByKind where !schedulerQueryRunning.contains(kind) {
            let interval = urgent.contains(kind) ? min(1, options.pollInterval) : options.pollInterval
            if let last = lastSchedulerQuery[kind], now - last < interval { continue }
            runSchedulerQuery(kind: kind, jobIDs: ids.sorted()) { _ in }
        }
    }

    /// One query for many jobs; updates ``schedulerInfo`` and calls `completion` with the answers.
    private func runSchedulerQuery(
        kind: SchedulerKind,
        jobIDs: [String],
        completion: @escaping ([String: SchedulerJobInfo]?) -> Void
    ) {
        let backend = SchedulerBackend(kind: kind)
        let history = historyEnabled[kind] ?? true
        guard let session, let command = backend.statusCommand(jobIDs, history: history) else { return completion([:]) }
        schedulerQueryRunning.insert(kind)
        lastSchedulerQuery[kind] = MonotonicClock.now()
        do {
            try AsyncCommand.run(command, on: session.loop, timeout: 60) { [weak self] run in
                guard let self else { return }
                self.schedulerQueryRunning.remove(kind)
                if history && backend.saysHistoryDisabled(run) {
                    // Learned once per agent: ask again the way that works without history (live jobs only).
                    AgentLog.write(
                        "the \(kind) server keeps no job history: asking with \(backend.statusCommand(jobIDs, history: false)!.prefix(2).joined(separator: " "))"
                    )
                    self.historyEnabled[kind] = false
                    return self.runSchedulerQuery(kind: kind, jobIDs: jobIDs, completion: completion)
                }
                if self.historyEnabled[kind] == nil { self.historyEnabled[kind] = true }
                guard !backend.statusFailed(run) else {
                    AgentLog.write("scheduler query failed (\(run.exit)): \(run.stderrText)")
                    return completion(nil)
                }
                let answers = backend.parseStatus(run)
                // What the scheduler no longer mentions must not keep its last answer.
                for id in jobIDs { self.schedulerInfo[id] = answers[id] }
                // A job the scheduler no longer knows and that left no exit record cannot end by itself:
                // after three answers without it, say so instead of following it forever.
                let asked = Set(jobIDs)
                for follower in self.followers.values where asked.contains(follower.jobID) {
                    follower.missingFromScheduler =
                        answers[follower.jobID] == nil ? follower.missingFromScheduler + 1 : 0
                }
                self.tickSoon()
                completion(answers)
            }
        } catch {
            schedulerQueryRunning.remove(kind)
            AgentLog.write("cannot run \(command.first ?? ""): \(error)")
            completion(nil)
        }
    }

    // MARK: - Cancel

    private func cancel(_ request: JobRequest) {
        guard let session else { return }
        guard let jobID = options.store.canonicalJobID(request.jobID),
            let directory = options.store.directory(forJobID: jobID)
        else {
            return session.sendError(
                requestID: request.requestID,
                code: .unknownJob,
                message: "no job \(request.jobID) submitted through qxub is known here",
                hint: "check the id with `qxub history`"
            )
        }
        let (_, kind, paths) = options.store.job(directory: directory, defaultKind: options.defaultKind)
        let records = JobRecords(paths: paths)
        if records.exitStatus != nil {
            return session.send(
                .cancelResult(CancelResult(requestID: request.requestID, jobID: request.jobID, wasActive: false))
            )
        }
        try? FileSystem.writeAtomically(paths.cancelRecord, "\(Int(MonotonicClock.wallNow()))\n")
        if kind == .local {
            var active = false
            if let pid = FileSystem.readText(paths.pidRecord).flatMap({ pid_t($0.trimmingWhitespace()) }) {
                active = kill(-pid, SIGTERM) == 0
                // Processes that ignore SIGTERM get SIGKILL after a grace period, from a detached helper:
                // the agent itself may be gone by then (the client left).
                if active {
                    _ = try? ChildProcess.spawn(
                        ["/bin/sh", "-c", "sleep 10; kill -9 -\(pid) 2>/dev/null"],
                        stdin: .null,
                        stdout: .null,
                        stderr: .null,
                        newSession: true
                    )
                }
            }
            session.send(
                .cancelResult(CancelResult(requestID: request.requestID, jobID: request.jobID, wasActive: active))
            )
            tickSoon()
            return
        }
        guard let command = SchedulerBackend(kind: kind).cancelCommand(jobID) else { return }
        do {
            try AsyncCommand.run(command, on: session.loop, timeout: 60) { [weak self] run in
                guard let self, let session = self.session else { return }
                self.runningCancels -= 1
                let backend = SchedulerBackend(kind: kind)
                if let error = backend.cancelError(run, jobID: request.jobID) {
                    // The scheduler refused: the job goes on, and a later end of it is not our cancel.
                    unlink(paths.cancelRecord)
                    session.sendError(
                        requestID: request.requestID,
                        code: error.code,
                        message: error.message,
                        hint: error.hint
                    )
                } else {
                    let finished = backend.cancelFoundJobFinished(run)
                    // The job had ended by itself (walltime, a signal, its exit): that end is what happened.
                    if finished { unlink(paths.cancelRecord) }
                    session.send(
                        .cancelResult(
                            CancelResult(requestID: request.requestID, jobID: request.jobID, wasActive: !finished)
                        )
                    )
                }
                // Learn the end soon rather than at the next regular query.
                self.lastSchedulerQuery[kind] = nil
                self.tickSoon()
            }
            runningCancels += 1
        } catch {
            unlink(paths.cancelRecord)  // nothing was cancelled
            session.sendError(
                requestID: request.requestID,
                code: .cancelFailed,
                message: "cannot run \(command[0]): \(error)"
            )
        }
    }

    // MARK: - Status of many jobs

    private func status(_ query: StatusQuery) {
        guard let session else { return }
        var answers: [String: JobStatus] = [:]
        var askScheduler: [SchedulerKind: [String]] = [:]
        var times: [String: (started: UInt64?, ended: UInt64?)] = [:]
        /// What each asked id (`354`) is in the index (`354.vm`), and each asked job's files.
        var canonical: [String: String] = [:]
        var jobs: [String: (kind: SchedulerKind, follower: JobFollower)] = [:]
        var resolver = JobStore.JobIDResolver(store: options.store)
        for id in query.jobIDs {
            guard let jobID = resolver.canonical(id), let directory = options.store.directory(forJobID: jobID) else {
                answers[id] = JobStatus(jobID: id, state: JobState(phase: .unknown, detail: "not a qxub job here"))
                continue
            }
            canonical[id] = jobID
            let (meta, kind, paths) = options.store.job(directory: directory, defaultKind: options.defaultKind)
            let follower = JobFollower(
                jobID: jobID,
                channel: 0,
                requestID: 0,
                paths: paths,
                kind: kind,
                stdoutOffset: 0,
                stderrOffset: 0
            )
            follower.walltime = meta["walltime"].flatMap { UInt64($0) }
            jobs[id] = (kind, follower)
            times[id] = (follower.records.startedAt, follower.records.endedAt)
            if let termination = follower.terminationFromRecord() {
                // The scheduler's kill, where the job log holds it, wins over a record that may hide it.
                let decided = follower.recordNeedsVerdict ? jobLogVerdict(kind, paths) ?? termination : termination
                answers[id] = finished(decided, follower)
            } else if kind == .local {
                let pid = FileSystem.readText(paths.pidRecord).flatMap { pid_t($0.trimmingWhitespace()) }
                let alive = pid.map { kill($0, 0) == 0 } ?? false
                answers[id] =
                    alive
                    ? JobStatus(
                        jobID: id,
                        state: JobState(
                            phase: follower.hasStarted ? .running : .queued,
                            host: follower.records.startedHost ?? ""
                        )
                    )
                    : JobStatus(
                        jobID: id,
                        state: JobState(phase: .finished),
                        termination: follower.records.cancelled
                            ? .cancelled(ranFirst: follower.hasStarted)
                            : .unknown("the job's processes ended without an exit record")
                    )
            } else {
                askScheduler[kind, default: []].append(jobID)
            }
        }
        var pending = askScheduler.count
        let reply: () -> Void = { [weak session, weak self] in
            guard let session, let self else { return }
            let jobs = query.jobIDs.map { id in
                var status =
                    answers[id]
                    ?? JobStatus(jobID: id, state: JobState(phase: .unknown, detail: "the scheduler does not know it"))
                status.jobID = id
                status.startedAt = times[id]?.started ?? 0
                status.endedAt = times[id]?.ended ?? 0
                return status
            }
            for report in StatusReport.split(
                requestID: query.requestID,
                jobs: jobs,
                maxPayload: self.replyBudget(session)
            ) {
                session.send(.statusReport(report))
            }
        }
        guard pending > 0 else {
            reply()
            return
        }
        for (kind, ids) in askScheduler {
            let asked = Set(ids)
            runSchedulerQuery(kind: kind, jobIDs: ids) { [weak self] infos in
                guard let self else { return }
                for (id, jobID) in canonical where asked.contains(jobID) && answers[id] == nil {
                    guard let job = jobs[id] else { continue }
                    if let info = infos?[jobID] {
                        if info.phase == .finished, let termination = info.termination {
                            answers[id] = self.finished(termination, job.follower)
                        } else {
                            answers[id] = JobStatus(
                                jobID: id,
                                state: JobState(phase: info.phase, host: info.host, detail: info.rawState)
                            )
                        }
                    } else if infos == nil {
                        answers[id] = JobStatus(
                            jobID: id,
                            state: JobState(phase: .unknown, detail: "the scheduler query failed")
                        )
                    } else if job.follower.records.cancelled {
                        answers[id] = self.finished(.cancelled(ranFirst: job.follower.hasStarted), job.follower)
                    } else if let verdict = self.jobLogVerdict(kind, job.follower.paths) {
                        // Gone from a scheduler without history, killed by it: the job log says why.
                        answers[id] = self.finished(verdict, job.follower)
                    }
                }
                pending -= 1
                if pending == 0 { reply() }
            }
        }
    }

    /// A finished job's status; its end is kept with the job (see ``recordEnd(_:paths:)``).
    private func finished(_ termination: JobTermination, _ follower: JobFollower) -> JobStatus {
        recordEnd(termination, paths: follower.paths)
        return JobStatus(
            jobID: follower.jobID,
            state: JobState(phase: .finished, host: follower.records.startedHost ?? ""),
            termination: termination
        )
    }
}

/// The agent's log: `<state root>/agent.log` (rotated at 1 MiB), mirrored on stderr (which reaches the
/// user's terminal through ssh) when the client asked for `-v` or `QXUB_AGENT_DEBUG` is set.
enum AgentLog {
    nonisolated(unsafe) static var mirrorToStderr = Environment.get("QXUB_AGENT_DEBUG") != nil
    nonisolated(unsafe) static var path: String?

    static func write(_ message: @autoclosure () -> String) {
        let text = message()
        if mirrorToStderr { try? FileDescriptor.writeAll(2, "qxub-agent: " + text + "\n") }
        guard let path else { return }
        if let size = FileSystem.size(path), size > 1 << 20 { rename(path, path + ".1") }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { FileDescriptor.close(fd) }
        try? FileDescriptor.writeAll(fd, "\(LocalTime.logStamp()) [\(getpid())] \(text)\n")
    }
}
