import QxubProtocol
import QxubScheduler
import QxubSystem

/// Follows the watched jobs of a session: their records, their output, and the decision of how each ended.
///
/// Driven by a tick: job records first (written by the job script, so they are exact and cost nothing to
/// read), the scheduler only as a fallback (``SchedulerPoller``). inotify wakes the tick early where it
/// works; elsewhere (Lustre, NFS writes from compute nodes) the tick backs off from 50 ms to
/// ``AgentOptions/maxTickInterval``. Every elapsed time is read on the loop's clock.
final class FollowLoop {
    /// Seconds a job's own record waits for the scheduler's verdict before it is taken as the end.
    static let verdictWait: Double = 30
    /// Seconds a scheduler's "finished" waits for a late exit record (NFS attribute caches) before it is
    /// trusted.
    static let lateRecordGrace: Double = 3
    /// Seconds a local job's processes may be gone before its exit record is missed.
    static let localRecordGrace: Double = 0.5

    private let loop: EventLoop
    private let options: AgentOptions
    private let poller: SchedulerPoller
    private let localJobs: LocalJobs
    private let log: AgentLog
    private weak var sink: JobEventSink?
    private var followers: [UInt32: JobFollower] = [:]
    private var tickTimer: Int?
    private var tickInterval = 0.05
    private var fileWatcher: FileWatcher?

    init(loop: EventLoop, options: AgentOptions, poller: SchedulerPoller, localJobs: LocalJobs, log: AgentLog) {
        self.loop = loop
        self.options = options
        self.poller = poller
        self.localJobs = localJobs
        self.log = log
        poller.onAnswers = { [weak self] asked, answers in
            guard let self else { return }
            // A job the scheduler no longer knows and that left no exit record cannot end by itself: after
            // three answers without it, say so instead of following it forever.
            for follower in self.followers.values where asked.contains(follower.jobID) {
                follower.missingFromScheduler = answers[follower.jobID] == nil ? follower.missingFromScheduler + 1 : 0
            }
            self.tickSoon()
        }
    }

    /// Starts sending to `sink` (the session is ready).
    func start(sink: JobEventSink) {
        self.sink = sink
        if options.watchFiles {
            fileWatcher = FileWatcher(loop: loop) { [weak self] in self?.tickSoon() }
        }
    }

    /// Stops following everything (the session ended).
    func stop() {
        if let tickTimer { loop.cancelTimer(tickTimer) }
        tickTimer = nil
        followers.removeAll()
        sink = nil
    }

    /// Follows `job` on `channel`, from the given offsets; replaces a watch on that channel.
    func follow(_ follower: JobFollower, directory: String) {
        followers[follower.channel] = follower
        let paths = follower.paths
        for path in Set([directory, FileSystem.directoryName(paths.stdout), FileSystem.directoryName(paths.stderr)]) {
            fileWatcher?.watch(path)
        }
        if !follower.hasStarted {
            send(follower, state: JobState(phase: .queued))
        }
        tickSoon()
    }

    /// Stops the watch on `channel`; returns whether there was one.
    func unfollow(channel: UInt32) -> Bool {
        followers.removeValue(forKey: channel) != nil
    }

    /// The client read what was queued: followers held back may send more.
    func outputDrained() {
        if !followers.isEmpty { tickSoon() }
    }

    func tickSoon() {
        guard sink != nil else { return }
        if let tickTimer { loop.cancelTimer(tickTimer) }
        tickInterval = 0.05
        tickTimer = loop.schedule(after: 0.005) { [weak self] in self?.tick() }
    }

    private func scheduleTick() {
        guard sink != nil, !followers.isEmpty || localJobs.hasChildren else {
            tickTimer = nil
            return
        }
        tickTimer = loop.schedule(after: tickInterval) { [weak self] in self?.tick() }
    }

    private func tick() {
        tickTimer = nil
        guard sink != nil else { return }
        localJobs.reap()
        var progressed = false
        let now = loop.now
        for follower in followers.values.sorted(by: { $0.channel < $1.channel }) where !follower.ended {
            if advance(follower, now: now) { progressed = true }
        }
        followers = followers.filter { !$0.value.ended }
        poller.askIfDue(
            followers.values.compactMap { follower in
                let needsVerdict = follower.awaitingVerdictSince != nil
                guard follower.kind != .local, follower.records.exitStatus == nil || needsVerdict else { return nil }
                let urgent =
                    needsVerdict || follower.finishedWithoutRecordSince != nil || follower.records.cancelled
                    || follower.missingFromScheduler > 0
                return SchedulerPoller.Question(kind: follower.kind, jobID: follower.jobID, urgent: urgent)
            }
        )
        tickInterval = progressed ? 0.05 : min(options.maxTickInterval, tickInterval * 2)
        scheduleTick()
    }

    /// One step for one job; returns whether anything was sent.
    private func advance(_ follower: JobFollower, now: Double) -> Bool {
        guard let sink else { return false }
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
            let budget = options.outputHighWater - sink.pendingOutputBytes
            guard budget > 0 else { return progressed }  // the client is slow: the files hold the rest
            let pumped = follower.pump(budget: budget) { output in
                sink.send(.output(output), channel: follower.channel)
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
                let info = poller.answers[follower.jobID]
                if let info, info.phase == .finished, case .killedByScheduler? = info.termination {
                    return finish(follower, info.termination!)
                }
                let released = info?.phase == .finished || (info == nil && follower.missingFromScheduler > 0)
                if released, let verdict = jobLogVerdict(follower) {
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
        guard let info = poller.answers[follower.jobID] else {
            // Without job history the scheduler forgets a job as it ends: twice unknown is gone.
            let keepsHistory = poller.keepsHistory(follower.kind)
            if follower.missingFromScheduler >= (keepsHistory ? 3 : 2) {
                if records.cancelled { return finish(follower, .cancelled(ranFirst: follower.hasStarted)) }
                if let verdict = jobLogVerdict(follower) { return finish(follower, verdict) }
                if let unwritten = JobRecords.unwrittenExit(follower.paths) { return finish(follower, unwritten) }
                let why =
                    keepsHistory
                    ? "the scheduler no longer knows job \(follower.jobID) and it left no exit record (purged from the scheduler's history?)"
                    : "the scheduler keeps no job history, so it forgot job \(follower.jobID) as it ended, and the job left no exit record"
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
            guard now - follower.finishedWithoutRecordSince! >= Self.lateRecordGrace else { return progressed }
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
                poller.detail(
                    jobID: follower.jobID,
                    kind: follower.kind,
                    completion: { [weak follower] detail in
                        follower?.detail = detail
                    }
                )
            {
                follower.detailRequested = true
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
        guard let pid = follower.localProcessGroup else { return false }
        if localJobs.isAlive(pid) { return false }
        if follower.finishedWithoutRecordSince == nil { follower.finishedWithoutRecordSince = now }
        guard now - follower.finishedWithoutRecordSince! >= Self.localRecordGrace else { return false }
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
        sink?.send(.jobState(state), channel: follower.channel)
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
        guard let sink, let termination = follower.pendingEnd else { return false }
        let budget = options.outputHighWater - sink.pendingOutputBytes
        guard budget > 0 else { return false }
        let pumped = follower.pump(budget: budget) { output in sink.send(.output(output), channel: follower.channel) }
        guard pumped.atEnd else { return pumped.bytes > 0 }
        send(follower, state: JobState(phase: .finished))
        options.store.recordEnd(termination, paths: follower.paths)
        sink.send(.jobEnd(termination), channel: follower.channel)
        follower.ended = true
        follower.closeFiles()
        return true
    }

    /// The scheduler's kill verdict from the end of the job log, or nil.
    private func jobLogVerdict(_ follower: JobFollower) -> JobTermination? {
        SchedulerBackend(kind: follower.kind).killVerdict(jobLogAt: follower.paths.joblog)
    }
}
