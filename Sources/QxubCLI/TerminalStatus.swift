import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Renders an exec session's progress on stderr: a live line on a terminal, only the messages that
/// explain qxub's own exit statuses otherwise. Never writes to stdout.
final class TerminalStatus {
    private let interactive: Bool
    private let quiet: Bool
    private var jobID = ""
    private var queuedSince: Double?
    private var lineOpen = false
    private let started = MonotonicClock.now()
    private var timer: Int?
    private weak var loop: EventLoop?

    /// Warnings (things qxub could not do as asked) are shown unless the user asked for silence.
    private let showWarnings: Bool
    /// The terminal is an interactive job's: only what the user must know (a lost connection, a warning) is
    /// printed into it, no progress.
    var terminalTaken = false {
        didSet { if terminalTaken { stopTimer() } }
    }

    init(quiet: Bool, loop: EventLoop, showWarnings: Bool = true) {
        self.quiet = quiet
        self.showWarnings = showWarnings
        self.interactive = !quiet && isatty(2) == 1
        self.loop = loop
    }

    func show(_ status: ExecSession.Status) {
        if case .warning(let message) = status, showWarnings {
            return line("qxub: warning: \(message)", always: true)
        }
        guard !quiet else { return }
        switch status {
        case .submitted(let id, let backend):
            jobID = id
            line("qxub: submitted job \(id) (\(backend))", always: false)
        case .state(let state):
            switch state.phase {
            case .queued, .held:
                guard interactive else { return }
                queuedSince = queuedSince ?? MonotonicClock.now()
                redrawQueued(state.phase == .held ? "held" : "queued")
            case .running:
                stopTimer()
                line(
                    "qxub: job \(jobID) running on \(state.host.isEmpty ? "its node" : state.host.escapingControlCharacters)",
                    always: false
                )
            case .finished, .unknown:
                break
            }
        case .finished(let code, let message):
            stopTimer()
            if let message { line("qxub: \(message) (exit status \(code))", always: true) }
            let elapsed = MonotonicClock.now() - started
            line("qxub: job \(jobID) finished with exit status \(code) after \(format(elapsed))", always: false)
        case .cancelling(let id):
            stopTimer()
            line("qxub: cancelling job \(id)… (press Ctrl-C again to leave it running)", always: true)
        case .detached(_, let message):
            stopTimer()
            line("qxub: \(message)", always: true)
        case .reconnecting(let attempt, let reason):
            stopTimer()
            line("qxub: connection lost (\(reason)); reconnecting (attempt \(attempt))…", always: true)
        case .reconnected:
            line("qxub: reconnected; resuming the output where it stopped", always: true)
        case .reconnectedToResubmit:
            line(
                "qxub: reconnected; sending the submission again (the agent answers with the job of the first "
                    + "attempt, never a second job)",
                always: true
            )
        case .warning(let message):
            line("qxub: warning: \(message)", always: true)
        case .note(let text):
            line("qxub: \(text)", always: true)
        }
    }

    /// Job output follows on the same terminal: the open status line is cleared first, so the output starts
    /// at the start of a line (an interactive job's scheduler says it waits while qxub's line says queued); the
    /// line is drawn again below it at its next tick.
    func makeWayForOutput() {
        guard lineOpen else { return }
        lineOpen = false
        try? FileDescriptor.writeAll(2, "\r\u{1B}[K")
    }

    private func redrawQueued(_ word: String) {
        guard let since = queuedSince else { return }
        let text = "qxub: job \(jobID) \(word) (\(format(MonotonicClock.now() - since)))"
        try? FileDescriptor.writeAll(2, "\r\u{1B}[K" + text)
        lineOpen = true
        timer = loop?.schedule(after: 1) { [weak self] in self?.redrawQueued(word) }
    }

    private func stopTimer() {
        if let timer { loop?.cancelTimer(timer) }
        timer = nil
        queuedSince = nil
    }

    private func line(_ text: String, always: Bool) {
        guard interactive || always, !quiet || text.hasPrefix("qxub: warning:") else { return }
        guard always || !terminalTaken else { return }
        let prefix = lineOpen ? "\r\u{1B}[K" : ""
        lineOpen = false
        // A raw terminal (the job's) does not turn "\n" into "\r\n".
        let end = terminalTaken ? "\r\n" : "\n"
        try? FileDescriptor.writeAll(2, prefix + text.replacingAll("\n", with: end) + end)
    }

    private func format(_ seconds: Double) -> String {
        let whole = Int(seconds)
        if whole < 60 {
            return "\(Int(seconds * 10) / 10 == whole ? "\(whole)" : "\(whole)").\(Int(seconds * 10) % 10)s"
        }
        if whole < 3600 { return "\(whole / 60)m\(whole % 60)s" }
        return "\(whole / 3600)h\(whole / 60 % 60)m"
    }
}
