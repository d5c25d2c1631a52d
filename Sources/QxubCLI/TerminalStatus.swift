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
    private var lineOpen = false
    private let started: Double
    private weak var loop: EventLoop?
    /// How lines read: colour on a terminal unless `NO_COLOR` says otherwise.
    private let render: StatusLine
    /// The spinner line of a waiting job, ticking on the session's event loop.
    private var waiting: WaitingLine?
    /// With `NO_COLOR`, the last waiting line printed (a new one only when it changes).
    private var lastPlainWait = ""

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
        self.started = loop.now
        self.render = StatusLine(
            colour: StatusLine.usesColour(terminal: isatty(2) == 1, noColor: Environment.get("NO_COLOR"))
        )
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
                guard interactive, let loop else { return }
                guard render.colour else {
                    // NO_COLOR: plain lines, one per change, nothing rewritten in place (as an array's counts).
                    let word = state.phase == .held ? "held" : "queued"
                    let text =
                        "qxub: job \(jobID) \(word)"
                        + (state.reason.isEmpty ? "" : " (\(state.reason.escapingControlCharacters))")
                    if text != lastPlainWait { line(text, always: false) }
                    lastPlainWait = text
                    return
                }
                if waiting == nil {
                    waiting = WaitingLine(loop: loop, line: render) { [weak self] text in self?.redraw(text) }
                }
                waiting?.show(jobID: jobID, held: state.phase == .held, reason: state.reason)
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
            line(render.finished(jobID: jobID, code: code, elapsed: (loop?.now ?? started) - started), always: false)
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
        case .progress(let text):
            line("qxub: \(text)", always: false)
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

    private func redraw(_ text: String) {
        try? FileDescriptor.writeAll(2, "\r\u{1B}[K" + text)
        lineOpen = true
    }

    private func stopTimer() {
        waiting?.stop()
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
}
