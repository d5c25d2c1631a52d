import QxubProtocol
import QxubScheduler
import QxubSystem

/// Follows the watched jobs of a session: their records, their output, and the decision of how each ended.
///
/// Each job is checked on its own schedule, and only when something may have changed: job records first
/// (written by the job script, so they are exact and cost nothing to read), the scheduler only as a fallback
/// (``SchedulerPoller``). Events wake a job at once: inotify on the directories it writes to (a change wakes
/// only the jobs there), a pidfd when a local job's script ends, a scheduler answer that changed. Between
/// events a job is checked on a back-off from 50 ms that doubles while nothing changes: up to
/// ``AgentOptions/maxTickInterval`` while its end is being decided, up to ``AgentOptions/maxIdleInterval``
/// where events may be missed (Lustre, NFS: writes from compute nodes raise no inotify events), and up to
/// ``idleIntervalWithEvents`` where they are not. So 1,000 sleeping jobs cost next to nothing. Every elapsed
/// time is read on the loop's clock.
final class FollowLoop {
    /// Seconds a job's own record waits for the scheduler's verdict before it is taken as the end.
    static let verdictWait: Double = 30
    /// Seconds a scheduler's "finished" waits for a late exit record (NFS attribute caches) before it is
    /// trusted.
    static let lateRecordGrace: Double = 3
    /// Seconds a local job's processes may be gone before its exit record is missed.
    static let localRecordGrace: Double = 0.5
    /// Seconds to the next check after one that found something new (and the first step of every back-off).
    static let busyInterval: Double = 0.05
    /// The longest wait of an idle job whose every change raises an event: a safety net only.
    static let idleIntervalWithEvents: Double = 60
    /// Idle checks of many jobs fall on a grid of this many seconds, so that they share a few wake-ups.
    static let idleGrid: Double = 0.25

    private let loop: EventLoop
    private let options: AgentOptions
    private let poller: SchedulerPoller
    private let localJobs: LocalJobs
    private let log: AgentLog
    private weak var sink: JobEventSink?
    private var followers: [UInt32: JobFollower] = [:]
    /// The followers of each watched directory, by channel.
    private var channelsByDirectory: [String: Set<UInt32>] = [:]
    /// Followers that stopped reading because the client was slow (woken when it drains).
    private var heldBack: Set<UInt32> = []
    private var tickTimer: (id: Int, deadline: Double)?
    private var fileWatcher: FileWatcher?

    init(loop: EventLoop, options: AgentOptions, poller: SchedulerPoller, localJobs: LocalJobs, log: AgentLog) {
        self.loop = loop
        self.options = options
        self.poller = poller
        self.localJobs = localJobs
        self.log = log
        poller.onAnswers = { [weak self] asked, answers, changed in
            guard let self else { return }
            // A job the scheduler no longer knows and that left no exit record cannot end by itself: after
            // three answers without it, say so instead of following it forever.
            for follower in self.followers.values where asked.contains(follower.jobID) {
                follower.missingFromScheduler = answers[follower.jobID] == nil ? follower.missingFromScheduler + 1 : 0
                if changed.contains(follower.jobID) || follower.missingFromScheduler > 0 || follower.isDeciding {
                    self.wake(follower)
                }
            }
            // The next query's time, if nothing else wakes the loop before it.
            self.schedule(at: self.loop.now + 0.005)
        }
    }

    /// Starts sending to `sink` (the session is ready).
    func start(sink: JobEventSink) {
        self.sink = sink
        if options.watchFiles {
            fileWatcher = FileWatcher(loop: loop) { [weak self] changes in self?.filesChanged(changes) }
        }
    }

    /// Stops following everything (the session ended).
    func stop() {
        if let tickTimer { loop.cancelTimer(tickTimer.id) }
        tickTimer = nil
        for follower in followers.values { release(follower) }
        followers.removeAll()
        sink = nil
    }

    /// Follows `job` on `channel`, from the given offsets; replaces a watch on that channel.
    func follow(_ follower: JobFollower, directory: String) {
        if let previous = followers[follower.channel] { release(previous) }
        followers[follower.channel] = follower
        let paths = follower.paths
        var complete = fileWatcher != nil
        let directories = Set([
            directory, FileSystem.directoryName(paths.stdout), FileSystem.directoryName(paths.stderr),
        ])
        for path in directories.sorted() {
            guard fileWatcher?.watch(path) == true else {
                complete = false
                continue
            }
            follower.watchedDirectories.append(path)
            channelsByDirectory[path, default: []].insert(follower.channel)
            if complete && !FileWatcher.eventsAreComplete(path) { complete = false }
        }
        follower.eventsComplete = complete
        if !follower.hasStarted {
            send(follower, state: JobState(phase: .queued))
        }
        wake(follower)
    }

    /// Stops the watch on `channel`; returns whether there was one.
    func unfollow(channel: UInt32) -> Bool {
        guard let follower = followers.removeValue(forKey: channel) else { return false }
        release(follower)
        return true
    }

    /// The client read what was queued: followers held back may send more.
    func outputDrained() {
        for channel in heldBack {
            if let follower = followers[channel] { wake(follower, after: 0) }
        }
        heldBack.removeAll()
    }

    /// Checks every followed job soon.
    func tickSoon() {
        for follower in followers.values { wake(follower) }
    }

    /// Checks the followers of `jobID` soon (a cancel was asked for).
    func wake(jobID: String) {
        for follower in followers.values where follower.jobID == jobID { wake(follower) }
    }

    /// Checks `follower` `after` seconds: file events come in bursts (a few milliseconds gathers one), while
    /// room in the outbox is worth filling at once.
    private func wake(_ follower: JobFollower, after delay: Double = 0.005) {
        guard sink != nil else { return }
        follower.nextCheck = loop.now
        follower.interval = Self.busyInterval
        schedule(at: loop.now + delay)
    }

    /// inotify: wakes the followers of the directories that changed (all of them when events were lost).
    private func filesChanged(_ changes: FileWatcher.Changes) {
        guard let changes else { return tickSoon() }
        for directory in changes {
            let channels = channelsByDirectory[directory] ?? []
            let gone = fileWatcher?.isWatching(directory) != true
            if gone { channelsByDirectory[directory] = nil }
            for channel in channels {
                guard let follower = followers[channel] else { continue }
                if gone {
                    // The directory was removed or replaced: no more events come from it.
                    follower.watchedDirectories.removeAll { $0 == directory }
                    follower.eventsComplete = false
                }
                wake(follower)
            }
        }
    }

    /// What a follower holds on the loop: its watches and its process descriptor.
    private func release(_ follower: JobFollower) {
        for directory in follower.watchedDirectories {
            fileWatcher?.unwatch(directory)
            channelsByDirectory[directory]?.remove(follower.channel)
            if channelsByDirectory[directory]?.isEmpty == true { channelsByDirectory[directory] = nil }
        }
        follower.watchedDirectories.removeAll()
        follower.eventsComplete = false
        if let fd = follower.processDescriptor {
            loop.remove(fd)
            FileDescriptor.close(fd)
            follower.processDescriptor = nil
        }
        heldBack.remove(follower.channel)
    }

    /// Runs a tick at `deadline` unless one comes sooner.
    private func schedule(at deadline: Double) {
        guard sink != nil else { return }
        if let tickTimer {
            if tickTimer.deadline <= deadline { return }
            loop.cancelTimer(tickTimer.id)
        }
        let id = loop.schedule(after: max(0, deadline - loop.now)) { [weak self] in self?.tick() }
        tickTimer = (id, deadline)
    }

    private func tick() {
        tickTimer = nil
        guard sink != nil else { return }
        let now = loop.now
        let due = followers.values.filter { !$0.ended && $0.nextCheck <= now }.sorted { $0.channel < $1.channel }
        for follower in due where !follower.ended {
            let progressed = advance(follower, now: now)
            planNextCheck(follower, progressed: progressed, now: now)
        }
        for (channel, follower) in followers where follower.ended {
            release(follower)
            followers[channel] = nil
        }
        let questions = followers.values.compactMap { follower -> SchedulerPoller.Question? in
            let needsVerdict = follower.awaitingVerdictSince != nil
            guard follower.kind != .local, follower.records.exitStatus == nil || needsVerdict else { return nil }
            let urgent =
                needsVerdict || follower.finishedWithoutRecordSince != nil || follower.records.cancelled
                || follower.missingFromScheduler > 0
            return SchedulerPoller.Question(kind: follower.kind, jobID: follower.jobID, urgent: urgent)
        }
        poller.askIfDue(questions)
        var next = followers.values.lazy.map(\.nextCheck).min()
        if let query = poller.nextQueryTime(questions) { next = min(next ?? query, query) }
        if let next { schedule(at: max(next, now)) }
    }

    /// When `follower` is checked next: soon after progress, on the short back-off while its end is being
    /// decided, on the long one while it sleeps.
    private func planNextCheck(_ follower: JobFollower, progressed: Bool, now: Double) {
        guard !follower.ended else { return }
        if progressed && follower.readsOnAtOnce {
            follower.interval = Self.busyInterval
            follower.nextCheck = now
            return
        } else if progressed {
            follower.interval = Self.busyInterval
        } else if follower.isDeciding || heldBack.contains(follower.channel) {
            follower.interval = min(options.maxTickInterval, follower.interval * 2)
        } else {
            let eventsComplete =
                follower.eventsComplete && (follower.kind != .local || follower.processDescriptor != nil)
            let limit = eventsComplete ? Self.idleIntervalWithEvents : options.maxIdleInterval
            follower.interval = min(max(limit, options.maxTickInterval), follower.interval * 2)
        }
        var next = now + follower.interval
        if follower.interval >= 1 { next = (next / Self.idleGrid).rounded(.up) * Self.idleGrid }
        follower.nextCheck = next
    }

    /// One step for one job; returns whether anything was sent.
    private func advance(_ follower: JobFollower, now: Double) -> Bool {
        guard let sink else { return false }
        if follower.pendingEnd != nil { return drainAndEnd(follower) }
        var progressed = false
        follower.refreshRecords()
        let records = follower.records
        // The running state always comes before the job's first output (even for a job that already ended), but
        // for an interactive job's scheduler messages below.
        if let host = records.startedHost, follower.sentState?.phase != .running {
            progressed = send(follower, state: JobState(phase: .running, host: host)) || progressed
        }
        var atEnd = true
        // An interactive job's terminal has the scheduler's messages before the job starts (`qsub: waiting for
        // job 123.server to start`): the user sees them while waiting. A batch job's files are empty until then.
        if follower.hasStarted || follower.interactive {
            follower.readsOnAtOnce = false
            let budget = options.outputHighWater - sink.pendingOutputBytes
            guard budget > 0 else {
                heldBack.insert(follower.channel)  // the client is slow: the files hold the rest
                return progressed
            }
            let pumped = follower.pump(budget: budget) { output in
                sink.send(.output(output), channel: follower.channel)
            }
            atEnd = pumped.atEnd
            if pumped.bytes > 0 { progressed = true }
            // Stopped by the budget: more is there now. Over the high-water mark the outbox's drain wakes it;
            // below it (the output compressed well) it is read on at once, not after a busy interval.
            follower.readsOnAtOnce = !atEnd && sink.pendingOutputBytes < options.outputHighWater
            if !atEnd && !follower.readsOnAtOnce { heldBack.insert(follower.channel) }
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
                progressed =
                    send(follower, state: JobState(phase: info.phase, detail: info.rawState, reason: info.reason))
                    || progressed
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
        guard let pid = follower.localPID else {
            return follower.localArrayIndices != nil ? advanceLocalArray(follower) : false
        }
        if follower.processDescriptor == nil && !follower.processEnded { watchProcess(follower, pid) }
        if follower.processDescriptor != nil || localJobs.isAlive(pid) { return false }
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

    /// Wakes the follower when the job's script ends (a pidfd); without pidfds, the back-off finds the end.
    /// A local array job has no process of its own (``JobFollower/localArrayEnd(isAlive:)``). Checked on the
    /// follow loop's back-off: nothing raises an event for it.
    private func advanceLocalArray(_ follower: JobFollower) -> Bool {
        guard let end = follower.localArrayEnd(isAlive: localJobs.isAlive) else { return false }
        return finish(follower, end)
    }

    private func watchProcess(_ follower: JobFollower, _ pid: Int32) {
        guard let fd = ProcessDescriptor.open(pid) else { return }
        follower.processDescriptor = fd
        loop.setReadable(fd) { [weak self, weak follower] in
            guard let self else { return }
            // Readable for good once the process has ended: one wake-up, then the descriptor goes.
            self.loop.remove(fd)
            FileDescriptor.close(fd)
            guard let follower else { return }
            follower.processDescriptor = nil
            follower.processEnded = true
            self.wake(follower)
        }
    }

    @discardableResult
    private func send(_ follower: JobFollower, state: JobState) -> Bool {
        var state = state
        state.terminal = follower.interactive
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
        follower.readsOnAtOnce = false
        let budget = options.outputHighWater - sink.pendingOutputBytes
        guard budget > 0 else {
            heldBack.insert(follower.channel)
            return false
        }
        let pumped = follower.pump(budget: budget) { output in sink.send(.output(output), channel: follower.channel) }
        guard pumped.atEnd else {
            follower.readsOnAtOnce = sink.pendingOutputBytes < options.outputHighWater
            if !follower.readsOnAtOnce { heldBack.insert(follower.channel) }
            return pumped.bytes > 0
        }
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
