#if canImport(Glibc)
import Glibc
#endif

/// How to cancel an interactive job whose terminal command (`qsub -I`, `srun --pty`) still waits for it.
///
/// Recorded on the real schedulers (Tests/Fixtures/pbs-real and slurm-real README, `interactive-*`):
/// - OpenPBS's qsub catches SIGINT and SIGTERM while it waits only to ask on the terminal whether to delete the
///   job; it does not catch SIGHUP, which kills it and leaves the job queued (it is thrown away only when it
///   starts and the mom cannot reach qsub). So: `qdel ID` first (the id from `qsub: waiting for job ID to
///   start`), then SIGHUP ends qsub at once (left alone it would notice the deletion within 30 s).
/// - srun cancels the job itself on SIGINT, SIGTERM or SIGHUP (CANCELLED at once; no scancel needed), but
///   Slurm 22.05's srun sometimes stays blocked after cancelling: the signal again ends it.
package struct InteractiveCancel: Hashable, Sendable {
    /// The scheduler's cancel, run first (nil where the signal alone cancels the job).
    package var command: [String]?
    /// Then sent to the terminal command's process.
    package var signal: Int32
    /// When the command has not ended this long after the signal, send it again (nil: once is enough).
    package var repeatAfterSeconds: Double?

    package init(command: [String]?, signal: Int32, repeatAfterSeconds: Double?) {
        self.command = command
        self.signal = signal
        self.repeatAfterSeconds = repeatAfterSeconds
    }
}

extension SchedulerBackend {
    /// How to cancel an interactive job that has not started, knowing its id (from ``InteractiveMessages``) or
    /// not yet. Without an id, PBS's job (if qsub got as far as submitting it) stays queued until it starts
    /// and is then thrown away: qsub prints the id at once, so that window is short.
    package func interactiveCancel(jobID: String?) -> InteractiveCancel {
        switch kind {
        case .pbspro:
            InteractiveCancel(command: jobID.map { ["qdel", $0] }, signal: SIGHUP, repeatAfterSeconds: nil)
        case .slurm:
            InteractiveCancel(command: nil, signal: SIGINT, repeatAfterSeconds: 2)
        case .local:
            // No queue: the wrapper runs at once; a hang-up ends it as a closed terminal would.
            InteractiveCancel(command: nil, signal: SIGHUP, repeatAfterSeconds: nil)
        }
    }
}
