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
        var reader = InteractiveMessageReader(kind: kind)
        return reader.take(Array(text.utf8)[...])
    }

    /// Reads one complete line (without its line end).
    mutating func read(line: Substring, kind: SchedulerKind) {
        switch kind {
        case .pbspro: readPBS(line)
        case .slurm: readSlurm(line)
        case .local: state = .started
        }
    }

    /// Whether what follows is the user's, not the scheduler's.
    var isSettled: Bool { state == .started || state == .abandoned }

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

/// Reads the scheduler's messages as the terminal's text arrives, each complete line once (the keeper's text
/// arrives in chunks of any size; a line, or a "\r\n", may be split between two).
package struct InteractiveMessageReader: Sendable {
    package let kind: SchedulerKind
    /// What was read so far.
    package private(set) var messages: InteractiveMessages
    /// The last line, not yet ended.
    private var unfinished: [UInt8] = []

    package init(kind: SchedulerKind) {
        self.kind = kind
        messages = InteractiveMessages(state: kind == .local ? .started : .submitting)
    }

    /// Reads `bytes`, the text that followed what was taken before, and returns what is known now.
    package mutating func take(_ bytes: ArraySlice<UInt8>) -> InteractiveMessages {
        guard !messages.isSettled else { return messages }
        var rest = bytes
        while let end = rest.firstIndex(of: UInt8(ascii: "\n")) {
            unfinished += rest[..<end]
            rest = rest[(end + 1)...]
            // A terminal ends lines with "\r\n".
            if unfinished.last == UInt8(ascii: "\r") { unfinished.removeLast() }
            messages.read(line: Substring(String(decoding: unfinished, as: UTF8.self)), kind: kind)
            unfinished.removeAll(keepingCapacity: true)
            if messages.isSettled {
                messages.asksToConfirmCancel = false
                return messages
            }
        }
        unfinished += rest
        messages.asksToConfirmCancel =
            kind == .pbspro && messages.state == .waiting
            && String(decoding: unfinished, as: UTF8.self).hasSuffix(
                "Do you wish to terminate the job and exit (y|[n])? "
            )
        return messages
    }
}
