import QxubProtocol
import QxubScheduler
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Follows one job for one watch: its records, its output files from byte offsets, and its end.
final class JobFollower {
    let jobID: String
    let channel: UInt32
    let paths: JobPaths
    let kind: SchedulerKind
    /// The walltime asked for (seconds), from the job's meta: a command that ran up to it may have been
    /// killed by the scheduler even where its own record says otherwise.
    var walltime: UInt64?
    var offsets: [Output.Stream: UInt64]
    private var descriptors: [Output.Stream: Int32] = [:]
    var sentState: JobState?
    var records: JobRecords
    /// When the scheduler first said "finished" while no exit record existed (records can arrive late on NFS).
    var finishedWithoutRecordSince: Double?
    /// When an exit record that looks like a signal was first seen (the scheduler may have sent it).
    var awaitingVerdictSince: Double?
    /// How many scheduler answers in a row did not mention the job.
    var missingFromScheduler = 0
    var detailRequested = false
    var detail: SchedulerJobInfo?
    /// The end, decided; it is sent once the output files are drained (within the output budget).
    var pendingEnd: JobTermination?
    var ended = false
    /// When the follow loop checks this job next, and the back-off it is on (seconds).
    var nextCheck: Double = 0
    var interval: Double = 0
    /// The last read stopped at the output budget with room left in the outbox: read on at the next turn.
    var readsOnAtOnce = false
    /// The directories watched for it (inotify), and whether every change of the job raises an event there.
    var watchedDirectories: [String] = []
    var eventsComplete = false
    /// A local job's pidfd while its script runs; `processEnded` once it said the script ended.
    var processDescriptor: Int32?
    var processEnded = false
    /// An interactive job: its stdout is its terminal's output (said in every job state).
    let interactive: Bool
    /// A local array job (`local-…[]`): the indices of its subjobs. It has no process of its own.
    let localArrayIndices: [Int]?

    /// Follows `job` on `channel` from the given offsets, reading `paths` (the job's own, or its log as the
    /// only stream).
    init(_ job: StoredJob, channel: UInt32, paths: JobPaths? = nil, stdoutOffset: UInt64 = 0, stderrOffset: UInt64 = 0)
    {
        self.jobID = job.jobID
        self.channel = channel
        self.paths = paths ?? job.paths
        self.kind = job.kind
        self.walltime = job.walltime
        self.interactive = job.meta["interactive"] == "1"
        self.localArrayIndices =
            job.kind == .local && job.jobID.hasSuffix("[]")
            ? job.meta["array"].flatMap(ArrayRange.init)?.indices : nil
        self.offsets = [.stdout: stdoutOffset, .stderr: stderrOffset]
        self.records = JobRecords(paths: self.paths)
    }

    deinit { closeFiles() }

    func refreshRecords() {
        records = JobRecords(paths: paths)
    }

    /// A local array job's end, once every subjob has ended: the status of the lowest-numbered subjob that
    /// failed (as `qxub exec --array` reports it), else 0. Nil while a subjob's processes are alive (or this is
    /// no local array job). `status` and the follow loop both decide it here.
    func localArrayEnd(isAlive: (pid_t) -> Bool) -> JobTermination? {
        guard let indices = localArrayIndices else { return nil }
        var failure: JobTermination?
        for index in indices {
            let paths = self.paths.subjob(index, ownJobLog: true)
            let records = JobRecords(paths: paths)
            if let status = records.exitStatus {
                if status != 0 && failure == nil { failure = .exited(status) }
                continue
            }
            let pid = FileSystem.readText(paths.pidRecord).flatMap { pid_t($0.trimmingWhitespace()) }
            if let pid, isAlive(pid) { return nil }
            if failure == nil {
                failure =
                    records.cancelled
                    ? .cancelled(ranFirst: records.startedAt != nil)
                    : .killedByScheduler(
                        .other,
                        detail: "subjob \(index)'s processes ended without recording an exit status",
                        ranFirst: records.startedAt != nil
                    )
            }
        }
        return failure ?? .exited(0)
    }

    /// Whether any subjob of a local array job has started.
    var localArrayStarted: Bool {
        (localArrayIndices ?? []).contains { FileSystem.exists(paths.subjob($0, ownJobLog: true).startedRecord) }
    }

    /// A local job's process group (its script's pid, from the `pid` record).
    var localProcessGroup: pid_t? {
        FileSystem.readText(paths.pidRecord).flatMap { pid_t($0.trimmingWhitespace()) }
    }

    /// ``localProcessGroup``, read once it is there (the record never changes).
    var localPID: pid_t? {
        if cachedPID == nil { cachedPID = localProcessGroup }
        return cachedPID
    }
    private var cachedPID: pid_t?

    /// Whether the job's end is being decided: its checks stay on the short back-off (waits of a few seconds
    /// that must end on time).
    var isDeciding: Bool {
        pendingEnd != nil || records.exitStatus != nil || awaitingVerdictSince != nil
            || finishedWithoutRecordSince != nil || missingFromScheduler > 0 || detailRequested
    }

    var hasStarted: Bool { records.startedHost != nil || records.exitStatus != nil }

    /// Reads new output (up to `budget` bytes) and hands it out in chunks; returns bytes read and whether
    /// both streams are at their end for now.
    func pump(budget: Int, send: (Output) -> Void) -> (bytes: Int, atEnd: Bool) {
        var total = 0
        var atEnd = true
        // The same file for both streams (--out X --err X, or ./X, or a link to it) is read once, as stdout.
        let streams: [Output.Stream] = sameFileForBothStreams ? [.stdout] : [.stdout, .stderr]
        for stream in streams {
            guard let fd = descriptor(for: stream) else { continue }
            while total < budget {
                let offset = offsets[stream]!
                guard
                    let chunk = try? FileSystem.read(
                        fd: fd,
                        offset: offset,
                        count: min(ProtocolConstants.outputChunkSize, budget - total)
                    ),
                    !chunk.isEmpty
                else { break }
                send(Output(stream: stream, offset: offset, data: chunk))
                offsets[stream] = offset + UInt64(chunk.count)
                total += chunk.count
            }
            if total >= budget { atEnd = false }
        }
        return (total, atEnd)
    }

    /// Whether stdout and stderr are one file: by path, else by device and inode once both exist.
    private var sameFileForBothStreams: Bool {
        if paths.stdout == paths.stderr { return true }
        guard let out = descriptor(for: .stdout), let err = descriptor(for: .stderr) else { return false }
        var outInfo = stat()
        var errInfo = stat()
        guard fstat(out, &outInfo) == 0, fstat(err, &errInfo) == 0 else { return false }
        return outInfo.st_dev == errInfo.st_dev && outInfo.st_ino == errInfo.st_ino
    }

    private func descriptor(for stream: Output.Stream) -> Int32? {
        if let fd = descriptors[stream] { return fd }
        let path = stream == .stdout ? paths.stdout : paths.stderr
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        descriptors[stream] = fd
        return fd
    }

    func closeFiles() {
        for fd in descriptors.values { FileDescriptor.close(fd) }
        descriptors.removeAll()
    }

    /// How the job ended according to its own exit record (nil without one). A script that was sent TERM
    /// (note `term`) never reports success.
    func terminationFromRecord() -> JobTermination? {
        guard let status = records.exitStatus else { return nil }
        let sentTerm = records.exitNote == "term"
        if records.cancelled && (status > 128 || sentTerm) { return .cancelled(ranFirst: records.startedHost != nil) }
        // An interactive job's keeper records the end of its terminal command (`srun --pty` exits 1 when its
        // request is cancelled, `qsub -I` 0) only where the wrapper wrote none: after a cancel, that is the
        // cancel's doing.
        if records.cancelled && records.exitNote == "keeper" { return .cancelled(ranFirst: records.startedHost != nil) }
        // An interactive job's keeper ended it after its grace time without a qxub: it says why.
        if interactive, let reason = FileSystem.readText(paths.keeperEndedRecord)?.trimmingWhitespace(), !reason.isEmpty
        {
            return .killedByScheduler(.other, detail: reason, ranFirst: records.startedHost != nil)
        }
        if sentTerm && (status == 0 || status == 128 + 15) { return .signaled(15) }
        if status > 128 && status <= 128 + 64 { return .signaled(status - 128) }
        // The job script could not open the job's stdout or stderr: its message went to the job log only.
        if records.exitNote == "output" {
            return .exitUnrecorded(
                status,
                detail: "the job could not write its output files on \(records.startedHost ?? "its node") ("
                    + "\(paths.stdout), \(paths.stderr)): check that their directory exists and is writable there"
            )
        }
        return .exited(status)
    }

    /// Whether the job's own record may hide the scheduler's kill, so the scheduler (or, where it keeps no
    /// history, the job log) is asked first: the script was sent TERM, the command died of a signal, or it
    /// ran up to its walltime (a scheduler may signal only some of the job's processes).
    var recordNeedsVerdict: Bool {
        guard kind != .local, !records.cancelled, let status = records.exitStatus else { return false }
        if records.exitNote == "term" || (status > 128 && status <= 128 + 64) { return true }
        if let walltime, let started = records.startedAt, let ended = records.endedAt, ended >= started,
            ended - started >= (walltime > 2 ? walltime - 2 : 0)
        {
            return true
        }
        return false
    }
}
