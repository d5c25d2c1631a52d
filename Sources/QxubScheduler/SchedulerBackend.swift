import QxubProtocol
import QxubSystem

/// The scheduler-specific commands and how to read their answers. Running them is the agent's job.
package struct SchedulerBackend: Sendable {
    package let kind: SchedulerKind

    package init(kind: SchedulerKind) {
        self.kind = kind
    }

    /// The job script and the command that submits it.
    package func submission(for spec: JobSpec, paths: JobPaths) throws(SchedulerError) -> RenderedSubmission {
        try JobScript(spec: spec, paths: paths, kind: kind).render()
    }

    /// The job id from a successful submission, or the scheduler's refusal as an error with a hint.
    package func submittedJobID(_ run: CollectedRun) throws(SchedulerError) -> String {
        let stdout = run.stdoutText.trimmingWhitespace()
        let stderr = run.stderrText.trimmingWhitespace()
        guard run.exit == .exited(0) else {
            throw SchedulerError(
                .submitFailed,
                stderr.isEmpty ? "the submission failed (\(run.exit)) with no message" : stderr,
                hint: hint(forRejection: stderr)
            )
        }
        switch kind {
        case .pbspro:
            guard let line = stdout.split(separator: "\n").last, !line.isEmpty else {
                throw SchedulerError(.submitFailed, "qsub printed no job id" + (stderr.isEmpty ? "" : ": " + stderr))
            }
            return String(line)
        case .slurm:
            // --parsable prints "id" or "id;cluster"; without it "Submitted batch job id".
            guard let line = stdout.split(separator: "\n").last else {
                throw SchedulerError(.submitFailed, "sbatch printed no job id" + (stderr.isEmpty ? "" : ": " + stderr))
            }
            let id =
                line.hasPrefix("Submitted batch job ")
                ? line.dropFirst("Submitted batch job ".count) : line.prefix { $0 != ";" }
            guard !id.isEmpty, id.allSatisfy({ $0.isNumber || $0 == "_" }) else {
                throw SchedulerError(.submitFailed, "sbatch printed no job id: \(stdout)")
            }
            return String(id)
        case .local:
            return stdout
        }
    }

    /// One command that asks about all `jobIDs` at once (nil for the local backend).
    ///
    /// PBS: `qstat -xf` where the server keeps job history; where it does not (`job_history_enable=False`,
    /// OpenPBS's default), `qstat -xf` prints nothing even for running jobs, so `history: false` asks with
    /// `qstat -f`, which shows the live jobs (finished ones are simply gone).
    package func statusCommand(_ jobIDs: [String], history: Bool = true) -> [String]? {
        guard !jobIDs.isEmpty else { return nil }
        switch kind {
        case .pbspro: return ["qstat", history ? "-xf" : "-f"] + jobIDs
        case .slurm:
            return [
                "squeue", "-h", "-t", "all", "-o", SlurmStatusParser.squeueFormat, "-j", jobIDs.joined(separator: ","),
            ]
        case .local: return nil
        }
    }

    /// What the status command said. Ids it did not mention are absent (the scheduler forgot them).
    package func parseStatus(_ run: CollectedRun) -> [String: SchedulerJobInfo] {
        switch kind {
        case .pbspro: PBSStatusParser.parse(run.stdoutText)
        case .slurm: SlurmStatusParser.parseSqueue(run.stdoutText)
        case .local: [:]
        }
    }

    /// Whether a status answer says that the server keeps no job history: PBS then prints, for each id,
    /// `qstat: PBS is not configured to maintain job history ID` on stderr, nothing on stdout, and exits 0.
    package func saysHistoryDisabled(_ run: CollectedRun) -> Bool {
        kind == .pbspro && run.stderrText.containsText("not configured to maintain job history")
    }

    /// The scheduler's own word on a job it killed, from the end of the job's log: PBS's mom appends
    /// `=>> PBS: job killed: walltime 65 exceeded limit 60` (or `mem …`, `vmem …`, `cput …`, `ncpus …`), Slurm
    /// `*** JOB 7 ON node CANCELLED AT … DUE TO TIME LIMIT ***`. Where the scheduler keeps no history, this
    /// line is all that is left of its verdict once the job is gone.
    package func killVerdict(jobLog: String) -> JobTermination? {
        for line in jobLog.split(separator: "\n").reversed() {
            switch kind {
            case .pbspro:
                guard let start = line.firstRange(ofLiteral: "=>> PBS: job killed: ") else { continue }
                let reason = String(line[start.upperBound...])
                if reason.hasPrefix("walltime ") {
                    return .killedByScheduler(.walltime, detail: reason, ranFirst: true)
                }
                if reason.hasPrefix("mem ") || reason.hasPrefix("vmem ") {
                    return .killedByScheduler(.memory, detail: reason, ranFirst: true)
                }
                return .killedByScheduler(.other, detail: reason, ranFirst: true)
            case .slurm:
                guard line.containsText("*** JOB "), line.containsText("DUE TO TIME LIMIT") else { continue }
                return .killedByScheduler(.walltime, detail: String(line), ranFirst: true)
            case .local:
                return nil
            }
        }
        return nil
    }

    /// ``killVerdict(jobLog:)`` on the last 4 KiB of the job log at `path` (nil where it is not there yet).
    package func killVerdict(jobLogAt path: String) -> JobTermination? {
        guard kind != .local, let tail = FileSystem.readTail(path, limit: 4096) else { return nil }
        return killVerdict(jobLog: tail)
    }

    /// Whether the status command itself failed (as opposed to not knowing some of the jobs).
    package func statusFailed(_ run: CollectedRun) -> Bool {
        switch kind {
        case .pbspro:
            // 153: some id unknown (the others are still printed); 35: finished without -x.
            if case .exited(let code) = run.exit { return ![0, 153, 35].contains(code) }
            return true
        case .slurm:
            // rc 1 with "Invalid job id specified" means none of the ids is known any more.
            if run.exit == .exited(0) { return false }
            return !run.stderrText.containsText("Invalid job id specified")
        case .local:
            return false
        }
    }

    /// A second, per-job question for a finished job whose exit the batch query could not tell.
    package func detailCommand(_ jobID: String) -> [String]? {
        kind == .slurm ? ["scontrol", "show", "job", jobID] : nil
    }

    package func parseDetail(_ run: CollectedRun) -> [String: SchedulerJobInfo] {
        kind == .slurm ? SlurmStatusParser.parseScontrol(run.stdoutText) : [:]
    }

    package func cancelCommand(_ jobID: String) -> [String]? {
        switch kind {
        case .pbspro: ["qdel", jobID]
        case .slurm: ["scancel", jobID]
        case .local: nil
        }
    }

    /// Cancel outcome: nil when accepted, else an error. A job that already finished is not an error.
    package func cancelError(_ run: CollectedRun, jobID: String) -> SchedulerError? {
        if run.exit == .exited(0) { return nil }
        let message = run.stderrText.trimmingWhitespace()
        if message.containsText("Job has finished") || message.containsText("finished") { return nil }
        // PBS, for a job in state E (exiting: its files are being delivered): `qdel: Request invalid for state of
        // job ID`, rc 168. The job has ended; what it ended with is its own end, not a cancel.
        if kind == .pbspro && message.containsText("Request invalid for state of job") { return nil }
        return SchedulerError(
            .cancelFailed,
            message.isEmpty ? "cancelling \(jobID) failed (\(run.exit))" : message,
            hint: kind == .pbspro ? "try `qdel \(jobID)` yourself" : "try `scancel \(jobID)` yourself"
        )
    }

    /// Whether an accepted cancel found the job already finished (PBS: `qdel: Job has finished`, exit 35).
    package func cancelFoundJobFinished(_ run: CollectedRun) -> Bool {
        run.exit != .exited(0) && cancelError(run, jobID: "") == nil
    }

    /// Advice for the common ways a scheduler refuses a job (messages as recorded from PBS and Slurm).
    func hint(forRejection message: String) -> String {
        let lower = message.lowercased()
        if lower.containsText("could not establish a configuration source")
            || lower.containsText("unable to contact slurm controller")
        {
            return
                "sbatch is installed but no Slurm cluster answers here (no slurm.conf, or slurmctld is down): set SLURM_CONF, or run on this machine with --backend local"
        }
        if lower.containsText("unknown queue") { return "check the queue name (-q); `qstat -Q` lists the queues" }
        if lower.containsText("invalid partition") { return "check the partition (-q); `sinfo -s` lists them" }
        if lower.containsText("walltime") || lower.containsText("--time") {
            return "give the time as 2h30m, 90m or HH:MM:SS"
        }
        if lower.containsText("unknown resource") { return "check the -l resource names this cluster accepts" }
        if lower.containsText("--mem") || lower.containsText("memory") { return "give memory as 4GB, 512MB or 16g" }
        if lower.containsText("project") || lower.containsText("account") {
            return "check the project (-P) you can charge"
        }
        return ""
    }
}
