import QxubProtocol
import QxubScheduler
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The agent's job operations as typed calls: submit, watch, unwatch, cancel, status, history.
///
/// It knows nothing of request ids or error frames: each call returns (or hands to its reply) a typed
/// result, or an ``AgentError``; ``JobHarness`` turns requests into these calls and their outcomes into
/// replies. Watched jobs are followed by the ``FollowLoop``, the schedulers asked by the
/// ``SchedulerPoller``, local jobs' processes handled by ``LocalJobs``.
package final class JobService {
    /// A job the scheduler took (or, for a dry run, would take).
    package struct SubmittedJob: Hashable, Sendable {
        package var jobID: String
        package var backend: String
        package var stateDirectory: String
        /// A dry run's script and scheduler command.
        package var script: String = ""
        package var command: [String] = []
        package var warnings: [String] = []
        /// A dry run's word on the room where job state lives (``StateRoot/room(root:free:)``).
        package var room: String = ""
        /// A dry run's word on the disk quota there (``QuotaReport/summary``); empty when none was read.
        package var quota: String = ""
    }

    package typealias Reply<Value> = AgentReply<Value>

    private var options: AgentOptions
    /// Why the client's state root cannot be used (an unknown placeholder): submissions are refused with it.
    private var stateRootError: AgentError?
    private let loop: EventLoop
    private let log: AgentLog
    private let commands: CommandRunner
    private let localJobs: LocalJobs
    private let poller: SchedulerPoller
    private let followLoop: FollowLoop
    private let quotaCheck: QuotaCheck
    private var stopped = false
    /// The keepers of the interactive jobs watched, by channel: where their terminal input goes.
    private var keepers: [UInt32: KeeperConnection] = [:]
    /// Interactive jobs watched whose keeper is not reachable yet (it is still starting): their channel's
    /// keys and newest window size wait here, for ``keeperStartWait`` at most.
    private var keeperBacklogs: [UInt32: KeeperBacklog] = [:]
    private struct KeeperBacklog {
        var jobID: String
        var directory: String
        var input: [UInt8] = []
        var size: WindowSize?
        var deadline: Double
    }
    /// How long a just-started keeper may take to listen on its socket.
    static let keeperStartWait: Double = 10
    static let keeperRetryInterval: Double = 0.02

    /// - Parameters:
    ///   - commands: runs qsub, qstat, qdel and friends (real commands on `loop` when nil).
    ///   - signal: signals local jobs' processes (`kill(2)`).
    package init(
        options: AgentOptions,
        loop: EventLoop,
        log: AgentLog,
        commands: CommandRunner? = nil,
        signal: @escaping LocalJobs.Signaller = LocalJobs.systemSignal
    ) {
        self.options = options
        self.loop = loop
        self.log = log
        self.commands = commands ?? .onLoop(loop)
        localJobs = LocalJobs(loop: loop, grace: options.cancelGrace, signal: signal)
        poller = SchedulerPoller(loop: loop, pollInterval: options.pollInterval, commands: self.commands, log: log)
        followLoop = FollowLoop(loop: loop, options: options, poller: poller, localJobs: localJobs, log: log)
        quotaCheck = QuotaCheck(commands: self.commands, log: log)
    }

    /// The backend of jobs that do not name one.
    package var defaultKind: SchedulerKind { options.defaultKind }

    /// The client's hello named a state root (``Hello/stateRoot``): this session's jobs live there, not in the
    /// agent's default (`QXUB_STATE_DIR`, else `~/.qxub`). Called before ``start(sink:)``.
    package func useStateRoot(_ template: String) {
        do {
            let user =
                options.user.isEmpty
                ? FileSystem.readText("/etc/passwd").flatMap { StateRoot.userName(uid: getuid(), passwd: $0) } ?? ""
                : options.user
            let root = try StateRoot.expand(
                template,
                user: user,
                project: options.project,
                home: options.home
            )
            options.store = JobStore(root: root)
        } catch {
            stateRootError = error
        }
    }

    /// Where this session's jobs live.
    package var stateRoot: String { options.store.root }

    /// The session is ready: job frames go to `sink` from now on.
    package func start(sink: JobEventSink) {
        try? FileSystem.createDirectories(options.store.root)
        followLoop.start(sink: sink)
    }

    /// The session ended: nothing is followed any more, and submissions still waiting are dropped (nothing
    /// of them exists yet, and a retry submits them).
    package func stop() {
        stopped = true
        waitingSubmissions.removeAll()
        quotaCheck.stop()
        for keeper in keepers.values { keeper.close() }
        keepers.removeAll()
        keeperBacklogs.removeAll()
        followLoop.stop()
        localJobs.stopWatchingChildren()
    }

    /// The client read what was queued for it.
    package func outputDrained() {
        followLoop.outputDrained()
    }

    /// Hands the teardowns of cancelled local jobs that are still on to a process of their own (see
    /// ``LocalJobs/detachTeardowns()``); for an agent whose session is over.
    package func detachTeardowns() {
        localJobs.detachTeardowns()
    }

    /// qsub/sbatch and qdel/scancel the agent has started and not yet recorded, and local jobs being torn
    /// down. When the client goes away meanwhile, the agent stays until they are over (see ``AgentServer``).
    package var workInFlight: Int { runningSubmissions + runningCancels + localJobs.teardowns }
    private var runningCancels = 0

    // MARK: - Submit

    /// Scheduler submissions (qsub, sbatch) running at once; more wait their turn.
    static let maxConcurrentSubmissions = 4
    /// Seconds a retried submission waits for the first attempt's qsub/sbatch to finish (its timeout is 120 s).
    static let retriedSubmissionWait: Double = 130
    private var runningSubmissions = 0
    /// The state root's quota once ``quotaCheck`` has answered (`.some(nil)`: none known).
    private var knownQuota: QuotaReport??
    private var waitingSubmissions: [() -> Void] = []

    /// Submits `spec` (a dry run renders it only); `token` makes a retry of the same submission answer with
    /// the first attempt's job. A login node is shared: a batch of a thousand jobs runs qsub/sbatch a few at
    /// a time.
    package func submit(_ spec: JobSpec, token: String, dryRun: Bool, reply: Reply<SubmittedJob>) {
        guard runningSubmissions < Self.maxConcurrentSubmissions else {
            waitingSubmissions.append { [unowned self] in submit(spec, token: token, dryRun: dryRun, reply: reply) }
            return
        }
        // The quota of the state root's filesystem, read once per session (bounded): until it is known,
        // submissions wait for it.
        guard let quota = knownQuota else {
            quotaCheck.whenKnown(root: options.store.root) { [unowned self] report in
                knownQuota = .some(report)
                submit(spec, token: token, dryRun: dryRun, reply: reply)
            }
            return
        }
        let spec = resolvedOnThisHost(spec)
        var createdDirectory: String?
        do {
            let kind = try kind(for: spec)
            if let stateRootError { return reply(.failure(stateRootError)) }
            if dryRun {
                let directory = options.store.plannedJobDirectory()
                let rendered = try rendering(spec, kind: kind, paths: paths(directory, spec))
                return reply(
                    .success(
                        SubmittedJob(
                            jobID: "",
                            backend: kind.rawValue,
                            stateDirectory: directory,
                            script: rendered.script,
                            command: rendered.command,
                            warnings: rendered.warnings,
                            room: StateRoot.room(
                                root: options.store.root,
                                free: FreeSpace.availableBytes(options.store.root)
                            ),
                            quota: quota?.summary ?? ""
                        )
                    )
                )
            }
            if !token.isEmpty, let earlier = options.store.directory(forToken: token) {
                // A retry (the client lost the connection before our answer): the job of the first attempt.
                return answerRetried(token, directory: earlier, deadline: loop.now + Self.retriedSubmissionWait, reply)
            }
            // Before anything is created: a job submitted into a full filesystem would be lost (no output, no
            // exit record), so a full or nearly full state root refuses it here.
            if let refusal = StateRoot.refusal(
                root: options.store.root,
                free: FreeSpace.availableBytes(options.store.root)
            ) {
                return reply(.failure(refusal))
            }
            if let refusal = quota?.refusal(root: options.store.root) {
                // Read again for the next submission: the user may clean up (the hint says to) in the same
                // session, which the session holder keeps for minutes.
                knownQuota = nil
                quotaCheck.forget()
                return reply(.failure(refusal))
            }
            let directory = try options.store.createJobDirectory()
            createdDirectory = directory
            if !token.isEmpty, try !options.store.link(token: token, to: directory) {
                // The token is taken. Ours (NFS retransmitted the symlink) or another agent's, which got there
                // between our look and our link: never submit a second time; answer with its job.
                if let target = options.store.tokenTarget(token), target != directory {
                    createdDirectory = nil
                    rmdir(directory)
                    return answerRetried(
                        token,
                        directory: target,
                        deadline: loop.now + Self.retriedSubmissionWait,
                        reply
                    )
                }
            }
            let paths = paths(directory, spec)
            if spec.terminal != nil {
                return reply(.success(try startInteractive(spec, kind: kind, paths: paths)))
            }
            let rendered = try SchedulerBackend(kind: kind).submission(for: spec, paths: paths)
            try FileSystem.writeAtomically(paths.script, rendered.script, mode: 0o700)
            var meta = Self.meta(spec, backend: kind, paths: paths, command: rendered.command)
            if let walltime = spec.resources.requestedWalltimeSeconds { meta["walltime"] = String(walltime) }
            try FileSystem.writeAtomically(paths.metaRecord, meta.serialized())
            // PBS copies the job log into place when the job ends: its directory must exist.
            try? FileSystem.createDirectories(FileSystem.directoryName(paths.joblog))
            for path in [paths.stdout, paths.stderr] {
                try? FileSystem.createDirectories(FileSystem.directoryName(path))
            }
            if kind == .local {
                return reply(.success(try submitLocal(spec, paths: paths, warnings: rendered.warnings)))
            }
            try commands.run(rendered.command, 120) { [weak self] run in
                guard let self else { return }
                self.runningSubmissions -= 1
                reply(
                    self.submitted(spec, token: token, kind: kind, paths: paths, run: run, warnings: rendered.warnings)
                )
                self.startWaitingSubmissions()
            }
            runningSubmissions += 1
        } catch let error as SchedulerError {
            reply(.failure(refusal(AgentError(error), token: token, directory: createdDirectory)))
        } catch {
            let failure = AgentError(
                .submitFailed,
                "could not prepare the job: \(error)",
                hint: "check that \(options.store.root) is writable"
            )
            reply(.failure(refusal(failure, token: token, directory: createdDirectory)))
        }
    }

    /// The script and the command of a job: a batch job's submission, or an interactive job's terminal command.
    private func rendering(
        _ spec: JobSpec,
        kind: SchedulerKind,
        paths: JobPaths
    ) throws(SchedulerError)
        -> RenderedSubmission
    {
        let backend = SchedulerBackend(kind: kind)
        guard spec.terminal != nil else { return try backend.submission(for: spec, paths: paths) }
        let launch = try backend.interactiveLaunch(for: spec, paths: paths)
        return RenderedSubmission(script: launch.script, command: launch.command, warnings: launch.warnings)
    }

    /// Starts an interactive job: its wrapper script, and a keeper (`qxub-agent keeper`, in a session of its
    /// own) that runs the scheduler's interactive command (or, locally, the script) on a pseudo-terminal and
    /// appends the terminal's output to the job's stdout file. The job is followed as a local job whose
    /// process is the keeper: its records (`started`, `exit`) are the wrapper's, or the keeper's when the
    /// wrapper could not write one.
    private func startInteractive(_ spec: JobSpec, kind: SchedulerKind, paths: JobPaths) throws -> SubmittedJob {
        guard let terminal = spec.terminal else { throw AgentError(.malformedRequest, "not an interactive job") }
        guard !options.keeperExecutable.isEmpty else {
            throw AgentError(
                .submitFailed,
                "this agent cannot find its own executable (/proc/self/exe) to keep the job's terminal",
                hint: "run interactive jobs where /proc is mounted"
            )
        }
        let launch = try SchedulerBackend(kind: kind).interactiveLaunch(for: spec, paths: paths)
        try FileSystem.writeAtomically(paths.script, launch.script, mode: 0o700)
        let jobID = "interactive-" + JobStore.randomHex(8)
        // Followed as a local process (the keeper), whatever runs the job.
        var meta = Self.meta(spec, backend: .local, paths: paths, command: launch.command)
        meta["scheduler"] = kind.rawValue
        meta["interactive"] = "1"
        // The keeper's socket is reachable from this node only.
        meta["keeper_host"] = Environment.hostname()
        try FileSystem.writeAtomically(paths.metaRecord, meta.serialized())
        for path in [paths.stdout, paths.stderr, paths.joblog] {
            try? FileSystem.createDirectories(FileSystem.directoryName(path))
        }
        var keeper = KeeperOptions(
            directory: paths.stateDirectory,
            windowSize: WindowSize(
                rows: terminal.rows > 0 ? terminal.rows : 24,
                columns: terminal.columns > 0 ? terminal.columns : 80
            ),
            // At least a second: the keeper counts its grace from its start too, until this agent connects.
            grace: Double(max(terminal.graceSeconds, 1)),
            term: terminal.type.isEmpty ? nil : terminal.type,
            command: launch.command
        )
        keeper.scheduler = kind
        let pid = try startLocalProcess(
            jobID: jobID,
            paths: paths,
            arguments: [options.keeperExecutable] + keeper.arguments
        )
        self.log.write("started interactive \(jobID) (\(kind), keeper \(pid)) in \(paths.stateDirectory)")
        options.store.appendHistory(
            jobID: jobID,
            backend: kind.rawValue,
            name: spec.name,
            directory: paths.stateDirectory,
            submitHost: spec.submitHost
        )
        return SubmittedJob(
            jobID: jobID,
            backend: kind.rawValue,
            stateDirectory: paths.stateDirectory,
            warnings: launch.warnings
        )
    }

    /// What every job's `meta` says: how it is followed, its names and files, when and from where it came.
    private static func meta(_ spec: JobSpec, backend: SchedulerKind, paths: JobPaths, command: [String]) -> JobMeta {
        var meta = JobMeta()
        meta["backend"] = backend.rawValue
        meta["name"] = spec.name
        meta["stdout"] = paths.stdout
        meta["stderr"] = paths.stderr
        meta["joblog"] = paths.joblog
        meta["workdir"] = spec.workingDirectory
        meta["submitted"] = String(Int(MonotonicClock.wallNow()))
        meta["submit_host"] = spec.submitHost
        meta["command"] = command.joined(separator: " ")
        meta["array"] = spec.array
        if !spec.tags.isEmpty { meta["tags"] = spec.tags.map { $0.key + "=" + $0.value }.joined(separator: ",") }
        return meta
    }

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

    private func paths(_ directory: String, _ spec: JobSpec) -> JobPaths {
        JobPaths(stateDirectory: directory, stdout: spec.stdoutPath, stderr: spec.stderrPath, joblog: spec.joblogPath)
    }

    /// `{user}` and `{project}` left by the client for this side (`{{user}}` in the Python qxub's
    /// `working_dir`), and output paths relative to the job's working directory.
    func resolvedOnThisHost(_ spec: JobSpec) -> JobSpec {
        var spec = spec
        spec.workingDirectory = spec.workingDirectory.replacingAll("{user}", with: options.user).replacingAll(
            "{project}",
            with: options.project
        )
        let home = options.home
        let base = spec.workingDirectory.isEmpty ? (home ?? "/") : spec.workingDirectory
        func absolute(_ path: String?) -> String? {
            guard let path, !path.isEmpty else { return nil }
            if path.hasPrefix("/") { return path }
            if path.hasPrefix("~/") { return (home ?? "") + path.dropFirst() }
            return base + "/" + path
        }
        spec.stdoutPath = absolute(spec.stdoutPath)
        spec.stderrPath = absolute(spec.stderrPath)
        spec.joblogPath = absolute(spec.joblogPath)
        return spec
    }

    /// A refused submission's error, recorded in the job's directory first, so a retry of the same
    /// submission (its token) gets the same answer.
    private func refusal(_ error: AgentError, token: String, directory: String?) -> AgentError {
        if let directory, !token.isEmpty {
            try? FileSystem.writeAtomically(
                directory + "/submit-error",
                "\(error.code.rawValue)\n\(error.message)\n\(error.hint)\n"
            )
        }
        return error
    }

    /// Answers a retried submission with the first attempt's outcome: its job, its refusal, or, while
    /// that attempt's qsub/sbatch still runs (in the agent of the lost connection), a look every 100 ms.
    private func answerRetried(
        _ token: String,
        directory: String,
        deadline: Double,
        _ reply: Reply<SubmittedJob>
    ) {
        guard !stopped else { return }
        let meta = JobMeta(parsing: FileSystem.readText(directory + "/meta") ?? "")
        if let jobID = FileSystem.readText(directory + "/jobid")?.trimmingWhitespace(), !jobID.isEmpty {
            log.write("retried submission \(token): job \(jobID) of the first attempt")
            let backend = meta["backend"] ?? options.defaultKind.rawValue
            return reply(.success(SubmittedJob(jobID: jobID, backend: backend, stateDirectory: directory)))
        }
        if let refusal = FileSystem.readText(directory + "/submit-error") {
            let lines = refusal.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let code = lines.first.flatMap(UInt32.init).map(ErrorCode.init(rawValue:)) ?? .submitFailed
            return reply(
                .failure(
                    AgentError(
                        code,
                        lines.count > 1 ? lines[1] : "the submission failed",
                        hint: lines.count > 2 ? lines[2] : ""
                    )
                )
            )
        }
        guard loop.now < deadline else {
            return reply(
                .failure(
                    AgentError(
                        .submitFailed,
                        "an earlier attempt of this submission (\(directory)) never recorded a job id: its agent may have been killed while the scheduler took the job",
                        hint: "look for the job with qstat/squeue before submitting it again"
                    )
                )
            )
        }
        loop.schedule(after: 0.1) { [weak self] in
            self?.answerRetried(token, directory: directory, deadline: deadline, reply)
        }
    }

    private func startWaitingSubmissions() {
        while runningSubmissions < Self.maxConcurrentSubmissions, !waitingSubmissions.isEmpty {
            waitingSubmissions.removeFirst()()
        }
    }

    /// Records the scheduler's answer. It runs even after the client has gone (the reply then goes nowhere):
    /// the job must be on record for a retry of the submission, `qxub attach` and the history.
    private func submitted(
        _ spec: JobSpec,
        token: String,
        kind: SchedulerKind,
        paths: JobPaths,
        run: CollectedRun,
        warnings: [String]
    ) -> Result<SubmittedJob, AgentError> {
        let backend = SchedulerBackend(kind: kind)
        do {
            let jobID = try backend.submittedJobID(run)
            try options.store.link(jobID: jobID, to: paths.stateDirectory)
            log.write("submitted \(jobID) (\(kind)) in \(paths.stateDirectory)")
            options.store.appendHistory(
                jobID: jobID,
                backend: kind.rawValue,
                name: spec.name,
                directory: paths.stateDirectory,
                submitHost: spec.submitHost
            )
            return .success(
                SubmittedJob(
                    jobID: jobID,
                    backend: kind.rawValue,
                    stateDirectory: paths.stateDirectory,
                    warnings: warnings
                )
            )
        } catch let error as SchedulerError {
            return .failure(refusal(AgentError(error), token: token, directory: paths.stateDirectory))
        } catch {
            // The scheduler has the job but the index could not be written: still report the job, never lose it.
            return .success(
                SubmittedJob(
                    jobID: (try? backend.submittedJobID(run)) ?? "?",
                    backend: kind.rawValue,
                    stateDirectory: paths.stateDirectory,
                    warnings: ["could not index the job under \(options.store.root): \(error)"]
                )
            )
        }
    }

    /// Starts a job's process on this host (the job script, or `arguments`: an interactive job's keeper) with
    /// `QXUB_JOB_ID`, its output on the job log, indexed under `jobID`, its process group in the `pid` record.
    /// A subjob of an array (`arrayIndex`) sees its index as both PBS and Slurm name it, so that a script
    /// written for either cluster runs locally; it is found through its array's index entry.
    private func startLocalProcess(
        jobID: String,
        paths: JobPaths,
        arguments: [String]? = nil,
        array: (id: String, index: Int)? = nil
    ) throws -> pid_t {
        let log = open(paths.joblog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw SystemError("open", paths.joblog) }
        defer { FileDescriptor.close(log) }
        let arrayVariables = ["PBS_ARRAY_INDEX", "PBS_ARRAY_ID", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_JOB_ID"]
        var environment = options.jobEnvironment.filter { variable in
            !variable.hasPrefix("QXUB_JOB_ID=") && !arrayVariables.contains { variable.hasPrefix($0 + "=") }
        }
        environment.append("QXUB_JOB_ID=" + jobID)
        if let array {
            environment += [
                "PBS_ARRAY_INDEX=\(array.index)", "PBS_ARRAY_ID=" + array.id,
                "SLURM_ARRAY_TASK_ID=\(array.index)", "SLURM_ARRAY_JOB_ID=" + array.id,
            ]
        } else {
            try options.store.link(jobID: jobID, to: paths.stateDirectory)
        }
        let pid = try localJobs.start(script: paths.script, arguments: arguments, environment: environment, log: log)
        try FileSystem.writeAtomically(paths.pidRecord, "\(pid)\n")
        return pid
    }

    private func submitLocal(_ spec: JobSpec, paths: JobPaths, warnings: [String]) throws -> SubmittedJob {
        var jobID = "local-" + JobStore.randomHex(8)
        if let range = spec.array.flatMap(ArrayRange.init) {
            // One process per index, all at once, named as PBS names subjobs: local-…[] and local-…[3].
            jobID += "[]"
            try options.store.link(jobID: jobID, to: paths.stateDirectory)
            var started: [pid_t] = []
            for index in range.indices {
                let subjobID = ArrayRange.subjobID(of: jobID, index: index)
                do {
                    let pid = try startLocalProcess(
                        jobID: subjobID,
                        paths: paths.subjob(index, ownJobLog: true),
                        array: (jobID, index)
                    )
                    started.append(pid)
                    self.log.write("started \(subjobID) (local, process group \(pid)) in \(paths.stateDirectory)")
                } catch {
                    // The submission fails as a whole: subjobs already started would run with nobody to follow
                    // or cancel them.
                    self.log.write("could not start \(subjobID): \(error); ending the \(started.count) started")
                    for pid in started { _ = localJobs.terminate(group: pid) }
                    throw error
                }
            }
        } else {
            let pid = try startLocalProcess(jobID: jobID, paths: paths)
            self.log.write("started \(jobID) (local, process group \(pid)) in \(paths.stateDirectory)")
        }
        options.store.appendHistory(
            jobID: jobID,
            backend: SchedulerKind.local.rawValue,
            name: spec.name,
            directory: paths.stateDirectory,
            submitHost: spec.submitHost
        )
        return SubmittedJob(
            jobID: jobID,
            backend: SchedulerKind.local.rawValue,
            stateDirectory: paths.stateDirectory,
            warnings: warnings
        )
    }

    // MARK: - Watch

    /// Follows a job on `channel` (≠ 0): its `job-state`, `output` and `job-end` frames go there. With
    /// `joblog`, the job log is the only stream (PBS copies it into place when the job ends).
    package func watch(
        jobID: String,
        channel: UInt32,
        stdoutOffset: UInt64 = 0,
        stderrOffset: UInt64 = 0,
        joblog: Bool = false,
        stdoutTail: UInt64 = 0
    ) throws(AgentError) {
        guard channel != 0 else { throw AgentError(.malformedRequest, "watch needs a channel other than 0") }
        guard let job = options.store.job(id: jobID, defaultKind: options.defaultKind) else {
            throw AgentError(
                .unknownJob,
                "no job \(jobID) submitted through qxub is known on \(Environment.hostname()) (looked in \(options.store.root))",
                hint: "check the id with `qxub history`"
            )
        }
        var paths = job.paths
        if joblog {
            paths.stdout = paths.joblog
            paths.stderr = paths.joblog
        }
        let interactive = job.meta["interactive"] == "1"
        var stdoutOffset = stdoutOffset
        if interactive, stdoutTail > 0, let size = FileSystem.size(paths.stdout), size > stdoutTail {
            // Taken back by `qxub attach`: the terminal's recent output, not the whole session.
            stdoutOffset = max(stdoutOffset, size - stdoutTail)
        }
        let follower = JobFollower(
            job,
            channel: channel,
            paths: paths,
            stdoutOffset: stdoutOffset,
            stderrOffset: stderrOffset
        )
        followLoop.follow(follower, directory: job.directory)
        keepers.removeValue(forKey: channel)?.close()
        keeperBacklogs[channel] = nil
        if interactive && !joblog {
            keeperBacklogs[channel] = KeeperBacklog(
                jobID: job.jobID,
                directory: job.directory,
                deadline: loop.now + Self.keeperStartWait
            )
            connectKeeper(channel: channel)
        }
    }

    /// Stops the watch on `channel`; returns whether one was on.
    package func unwatch(channel: UInt32) -> Bool {
        keepers.removeValue(forKey: channel)?.close()
        keeperBacklogs[channel] = nil
        return followLoop.unfollow(channel: channel)
    }

    // MARK: - Interactive jobs' terminals

    /// Reaches the keeper of the interactive job watched on `channel`: while connected, the keeper keeps the
    /// job (its grace time runs only while no agent is connected), and says when it wrote output, which
    /// wakes the job's follower at once (no wait for inotify or a poll).
    ///
    /// A keeper started a moment ago may not listen yet: tried again every ``keeperRetryInterval`` until
    /// ``keeperStartWait`` has passed, while the job has no exit record (an ended job's keeper is gone: its
    /// records and output are all there is).
    private func connectKeeper(channel: UInt32) {
        guard !stopped, let backlog = keeperBacklogs[channel] else { return }
        let paths = JobPaths(stateDirectory: backlog.directory)
        guard case .success(let keeper) = KeeperConnection.connect(to: paths.keeperSocket, on: loop) else {
            if loop.now < backlog.deadline && JobRecords(paths: paths).exitStatus == nil {
                loop.schedule(after: Self.keeperRetryInterval) { [weak self] in self?.connectKeeper(channel: channel) }
            } else {
                keeperBacklogs[channel] = nil
            }
            return
        }
        keeperBacklogs[channel] = nil
        let jobID = backlog.jobID
        if let size = backlog.size { keeper.resize(rows: size.rows, cols: size.columns) }
        if !backlog.input.isEmpty { keeper.sendInput(backlog.input) }
        keeper.onOutput = { [weak self] in self?.followLoop.wake(jobID: jobID) }
        keeper.onClose = { [weak self, weak keeper] in
            guard let self, let keeper, self.keepers[channel] === keeper else { return }
            self.keepers[channel] = nil
            self.followLoop.wake(jobID: jobID)
        }
        keepers[channel] = keeper
    }

    /// Keys typed on the client's terminal, for the interactive job watched on `channel` (dropped when it has
    /// none: a job that is not interactive, or whose terminal has ended).
    package func terminalInput(channel: UInt32, _ data: [UInt8]) {
        if let keeper = keepers[channel] {
            keeper.sendInput(data)
        } else if keeperBacklogs[channel] != nil, keeperBacklogs[channel]!.input.count < Self.keeperBacklogLimit {
            keeperBacklogs[channel]!.input += data
        }
    }

    /// Keys kept for a keeper that does not listen yet, at most.
    static let keeperBacklogLimit = 64 * 1024

    /// The client's terminal's new size, for the interactive job watched on `channel`.
    package func terminalResize(channel: UInt32, rows: UInt16, columns: UInt16) {
        if let keeper = keepers[channel] {
            keeper.resize(rows: rows, cols: columns)
        } else if keeperBacklogs[channel] != nil {
            keeperBacklogs[channel]!.size = WindowSize(rows: rows, columns: columns)
        }
    }

    // MARK: - Cancel

    /// Cancels a job; the reply says whether it was still active (false: it had already ended, nothing was
    /// cancelled). Its end reaches its watchers later, as they follow it.
    package func cancel(jobID requested: String, reply: Reply<Bool>) {
        guard let job = options.store.job(id: requested, defaultKind: options.defaultKind) else {
            return reply(
                .failure(
                    AgentError(
                        .unknownJob,
                        "no job \(requested) submitted through qxub is known here",
                        hint: "check the id with `qxub history`"
                    )
                )
            )
        }
        let paths = job.paths
        if JobRecords(paths: paths).exitStatus != nil { return reply(.success(false)) }
        try? FileSystem.writeAtomically(paths.cancelRecord, "\(Int(MonotonicClock.wallNow()))\n")
        // The array itself (not one subjob): its subjobs, whose records and processes are their own.
        let subjobs: [(id: String, paths: JobPaths)] =
            paths.recordSuffix.isEmpty
            ? (job.meta["array"].flatMap(ArrayRange.init)?.indices ?? []).map {
                (ArrayRange.subjobID(of: job.jobID, index: $0), paths.subjob($0, ownJobLog: job.kind == .local))
            } : []
        if job.kind == .local {
            // This agent ends the job's process group itself; an array's, every subjob's.
            let groups = subjobs.isEmpty ? [paths.pidRecord] : subjobs.map(\.paths.pidRecord)
            var active = false
            for record in groups {
                guard let group = FileSystem.readText(record).flatMap({ pid_t($0.trimmingWhitespace()) }) else {
                    continue
                }
                if localJobs.terminate(group: group) { active = true }
            }
            reply(.success(active))
            for subjob in subjobs { followLoop.wake(jobID: subjob.id) }
            return followLoop.wake(jobID: job.jobID)
        }
        let backend = SchedulerBackend(kind: job.kind)
        guard let command = backend.cancelCommand(job.jobID) else {
            unlink(paths.cancelRecord)
            return reply(.failure(AgentError(.cancelFailed, "the \(job.kind) backend has no cancel command")))
        }
        do {
            try commands.run(command, 60) { [weak self] run in
                guard let self else { return }
                self.runningCancels -= 1
                if let error = backend.cancelError(run, jobID: requested) {
                    // The scheduler refused: the job goes on, and a later end of it is not our cancel.
                    unlink(paths.cancelRecord)
                    reply(.failure(AgentError(error)))
                } else {
                    let finished = backend.cancelFoundJobFinished(run)
                    // The job had ended by itself (walltime, a signal, its exit): that end is what happened.
                    if finished { unlink(paths.cancelRecord) }
                    reply(.success(!finished))
                }
                // Learn the end soon rather than at the next regular query.
                self.poller.askSoon(job.kind)
                for subjob in subjobs { self.followLoop.wake(jobID: subjob.id) }
                self.followLoop.wake(jobID: job.jobID)
            }
            runningCancels += 1
        } catch {
            unlink(paths.cancelRecord)  // nothing was cancelled
            reply(.failure(AgentError(.cancelFailed, "cannot run \(command[0]): \(error)")))
        }
    }

    // MARK: - Status of many jobs

    /// The status of each job asked for, in the order asked (ids nobody submitted through qxub included, as
    /// unknown). Jobs without a record of their end are asked about in one scheduler query per backend.
    /// With `usage`, finished scheduler jobs also get the scheduler's record of what they used
    /// (``usageOfFinished(_:kinds:reply:)``).
    package func status(jobIDs: [String], usage: Bool = false, reply: Reply<[JobStatus]>) {
        var answers: [String: JobStatus] = [:]
        var askScheduler: [SchedulerKind: [String]] = [:]
        /// Each asked id's job (`354` asked, `354.vm` found) and its records.
        var jobs: [String: JobFollower] = [:]
        var resolver = JobStore.JobIDResolver(store: options.store)
        for id in jobIDs where jobs[id] == nil && answers[id] == nil {
            guard let job = resolver.job(id: id, defaultKind: options.defaultKind) else {
                answers[id] = JobStatus(jobID: id, state: JobState(phase: .unknown, detail: JobState.notAQxubJob))
                continue
            }
            let follower = JobFollower(job, channel: 0)
            jobs[id] = follower
            if let termination = follower.terminationFromRecord() {
                // The scheduler's kill, where the job log holds it, wins over a record that may hide it.
                let decided = follower.recordNeedsVerdict ? jobLogVerdict(follower) ?? termination : termination
                answers[id] = finished(decided, follower)
            } else if job.kind == .local {
                answers[id] = localStatus(follower)
            } else {
                askScheduler[job.kind, default: []].append(job.jobID)
            }
        }
        let complete = { [jobs, weak self] in
            let statuses = jobIDs.map { id in
                var status =
                    answers[id]
                    ?? JobStatus(
                        jobID: id,
                        state: JobState(phase: .unknown, detail: "the scheduler does not know it")
                    )
                status.jobID = id
                status.startedAt = jobs[id]?.records.startedAt ?? 0
                status.endedAt = jobs[id]?.records.endedAt ?? 0
                return status
            }
            guard usage, let self else { return reply(.success(statuses)) }
            self.usageOfFinished(statuses, kinds: jobs.mapValues { ($0.jobID, $0.kind) }, reply: reply)
        }
        var pending = askScheduler.count
        guard pending > 0 else { return complete() }
        for (kind, ids) in askScheduler {
            let asked = Set(ids)
            poller.query(kind: kind, jobIDs: ids) { [weak self] infos in
                guard let self else { return }
                for (id, follower) in jobs where asked.contains(follower.jobID) && answers[id] == nil {
                    answers[id] = self.schedulerStatus(follower, infos)
                }
                pending -= 1
                if pending == 0 { complete() }
            }
        }
    }

    /// `statuses` with each finished scheduler job's ``JobStatus/schedulerUsage``: one ``UsageQuery`` per
    /// scheduler (bounded in time), whose failure becomes each job's note, never the reply's.
    private func usageOfFinished(
        _ statuses: [JobStatus],
        kinds: [String: (jobID: String, kind: SchedulerKind)],
        reply: Reply<[JobStatus]>
    ) {
        var idsByKind: [SchedulerKind: [String]] = [:]
        for status in statuses where status.state.phase == .finished {
            guard let job = kinds[status.jobID], job.kind != .local else { continue }
            idsByKind[job.kind, default: []].append(job.jobID)
        }
        var usages: [String: SchedulerUsage] = [:]
        let complete = {
            reply(
                .success(
                    statuses.map { status in
                        var status = status
                        if let job = kinds[status.jobID] { status.schedulerUsage = usages[job.jobID] }
                        return status
                    }
                )
            )
        }
        var pending = idsByKind.count
        guard pending > 0 else { return complete() }
        for (kind, ids) in idsByKind {
            let query = UsageQuery(kind: kind)
            let unique = Array(Set(ids)).sorted()
            let finish = { (answers: [String: SchedulerUsage]) in
                usages.merge(answers) { first, _ in first }
                pending -= 1
                if pending == 0 { complete() }
            }
            guard let command = query.command(unique) else {
                finish([:])
                continue
            }
            do {
                try commands.run(command, 30) { run in finish(query.answer(unique, run)) }
            } catch {
                log.write("cannot run \(command[0]): \(error)")
                let note = SchedulerUsage(note: "cannot run \(command[0]): \(error)")
                finish(Dictionary(uniqueKeysWithValues: unique.map { ($0, note) }))
            }
        }
    }

    /// A local job without an exit record: its processes decide.
    private func localStatus(_ follower: JobFollower) -> JobStatus {
        if follower.localArrayIndices != nil {
            guard let end = follower.localArrayEnd(isAlive: localJobs.isAlive) else {
                return JobStatus(
                    jobID: follower.jobID,
                    state: JobState(phase: follower.localArrayStarted ? .running : .queued)
                )
            }
            return JobStatus(jobID: follower.jobID, state: JobState(phase: .finished), termination: end)
        }
        if let pid = follower.localProcessGroup, localJobs.isAlive(pid) {
            let phase: JobState.Phase = follower.hasStarted ? .running : .queued
            return JobStatus(
                jobID: follower.jobID,
                state: JobState(phase: phase, host: follower.records.startedHost ?? "")
            )
        }
        return JobStatus(
            jobID: follower.jobID,
            state: JobState(phase: .finished),
            termination: follower.records.cancelled
                ? .cancelled(ranFirst: follower.hasStarted)
                : .unknown("the job's processes ended without an exit record")
        )
    }

    /// A scheduler job without an exit record, from the scheduler's answers (nil: the query failed); nil
    /// when nothing can be said (the caller reports it unknown to the scheduler).
    private func schedulerStatus(_ follower: JobFollower, _ infos: [String: SchedulerJobInfo]?) -> JobStatus? {
        guard let infos else {
            return JobStatus(
                jobID: follower.jobID,
                state: JobState(phase: .unknown, detail: "the scheduler query failed")
            )
        }
        if let info = infos[follower.jobID] {
            if info.phase == .finished, let termination = info.termination { return finished(termination, follower) }
            return JobStatus(
                jobID: follower.jobID,
                state: JobState(phase: info.phase, host: info.host, detail: info.rawState, reason: info.reason)
            )
        }
        if follower.records.cancelled { return finished(.cancelled(ranFirst: follower.hasStarted), follower) }
        // Gone from a scheduler without history, killed by it: the job log says why.
        return jobLogVerdict(follower).map { finished($0, follower) }
    }

    /// A finished job's status; its end is kept with the job (``JobStore/recordEnd(_:paths:)``).
    private func finished(_ termination: JobTermination, _ follower: JobFollower) -> JobStatus {
        options.store.recordEnd(termination, paths: follower.paths)
        return JobStatus(
            jobID: follower.jobID,
            state: JobState(phase: .finished, host: follower.records.startedHost ?? ""),
            termination: termination
        )
    }

    private func jobLogVerdict(_ follower: JobFollower) -> JobTermination? {
        SchedulerBackend(kind: follower.kind).killVerdict(jobLogAt: follower.paths.joblog)
    }

    // MARK: - History

    /// The newest `limit` submissions (1 to 10,000), newest first.
    package func history(limit: UInt32) -> [HistoryEntry] {
        options.store.history(limit: Int(min(max(limit, 1), 10_000)))
    }
}
