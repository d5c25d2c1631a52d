/// What `qsub -I` or `srun --pty` has said on the terminal before the job's own output: the job's id, and
/// whether the job is still waiting.
///
/// The messages, as recorded on the real schedulers (Tests/Fixtures/pbs-real and slurm-real, `interactive-*`):
/// PBS `qsub: waiting for job ID to start`, `qsub: job ID ready`; Slurm `srun: job ID queued and waiting for
/// resources`, `srun: job ID has been allocated resources` (only when the job waits: one that starts at once
/// prints nothing before its output). Reading stops where the job starts: what follows is the user's, and a
/// line there that looks like the scheduler's must not change what qxub believes.
package struct InteractiveMessages: Hashable, Sendable {
    package enum State: Hashable, Sendable {
        /// Nothing from the scheduler yet (for Slurm also: a job that started at once, before its first line).
        case submitting
        /// The job is queued.
        case waiting
        /// The job started: from here on the terminal is the job's.
        case started
        /// The job was given up before it started: deleted, cancelled, or its wait interrupted.
        case abandoned
    }

    package var state: State = .submitting
    /// The scheduler's job id, once a message named it (`123.server` for PBS, `123` for Slurm).
    package var jobID: String?
    /// PBS only: qsub, sent SIGINT or SIGTERM while waiting, asks `Do you wish to terminate the job and exit
    /// (y|[n])? ` and reads the answer from the terminal (`y` or end of input deletes the job; no answer for
    /// 60 s deletes it too). The question has no newline: it is the last, unfinished line.
    package var asksToConfirmCancel = false

    package init(state: State = .submitting, jobID: String? = nil, asksToConfirmCancel: Bool = false) {
        self.state = state
        self.jobID = jobID
        self.asksToConfirmCancel = asksToConfirmCancel
    }

    /// Reads the terminal's text from its beginning (as much as has arrived: a last unfinished line counts only
    /// for PBS's question).
    package static func read(_ text: String, kind: SchedulerKind) -> InteractiveMessages {
        var messages = InteractiveMessages()
        guard kind != .local else { return InteractiveMessages(state: .started) }
        // A terminal ends lines with "\r\n", which Swift reads as one Character.
        var lines = text.split(omittingEmptySubsequences: false) { $0 == "\r\n" || $0 == "\n" }
        let unfinished = lines.removeLast()
        for line in lines {
            switch kind {
            case .pbspro: messages.readPBS(line)
            case .slurm: messages.readSlurm(line)
            case .local: break
            }
            if messages.state == .started || messages.state == .abandoned { return messages }
        }
        messages.asksToConfirmCancel =
            kind == .pbspro && messages.state == .waiting
            && unfinished.hasSuffix("Do you wish to terminate the job and exit (y|[n])? ")
        return messages
    }

    private mutating func readPBS(_ line: Substring) {
        // The question's line ends when it is answered ("...? y"); the answer is not a message.
        let line = line.firstRange(ofLiteral: "(y|[n])? ").map { line[$0.upperBound...] } ?? line
        if let id = between(line, "qsub: waiting for job ", " to start") {
            jobID = id
            state = .waiting
        } else if between(line, "qsub: job ", " ready") != nil {
            state = .started
        } else if let id = between(line, "Job ", " is being deleted")
            ?? between(line, "qsub: job ", " apparently deleted")
        {
            jobID = jobID ?? id
            state = .abandoned
        }
    }

    private mutating func readSlurm(_ line: Substring) {
        // A typed ^C is echoed before srun's next message.
        let line = line.hasPrefix("^C") ? line.dropFirst(2) : line
        guard line.hasPrefix("srun: ") else {
            // The job's first line of output: srun prints nothing before a job that starts at once.
            if !line.isEmpty { state = .started }
            return
        }
        if let id = between(line, "srun: job ", " queued and waiting for resources") {
            jobID = id
            state = .waiting
        } else if let id = between(line, "srun: job ", " has been allocated resources") {
            jobID = id
            state = .started
        } else if let id = between(line, "srun: Job allocation ", " has been revoked") {
            jobID = jobID ?? id
            state = .abandoned
        } else if line.hasPrefix("srun: Job has been cancelled")
            || line.hasPrefix("srun: error: Unable to allocate resources")
        {
            state = .abandoned
        }
        // Anything else ("srun: Job is in held state, pending scheduler release", warnings) leaves the state.
    }

    /// The non-empty, space-free word between `prefix` (at the start of `line`) and `suffix` (at its end).
    private func between(_ line: Substring, _ prefix: String, _ suffix: String) -> String? {
        guard line.hasPrefix(prefix), line.hasSuffix(suffix), line.count > prefix.count + suffix.count else {
            return nil
        }
        let word = line.dropFirst(prefix.count).dropLast(suffix.count)
        return word.contains(" ") ? nil : String(word)
    }
}
