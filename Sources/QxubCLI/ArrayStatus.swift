import QxubClient
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Renders a followed array's progress on stderr: on a terminal with colour, its counts are one line rewritten
/// in place (spinner, colours, elapsed time) that makes way for the subjobs' output and is drawn again below
/// it; elsewhere (a pipe, a file, `NO_COLOR`), one plain line per change.
final class ArrayStatus {
    private let live: Bool
    private let render: StatusLine
    private weak var loop: EventLoop?
    private let started: Double
    /// The counts last reported, without `qxub: ` (nil before the first).
    private var counts: String?
    private var lineOpen = false
    private var timer: Int?
    private var frame = 0

    init(loop: EventLoop) {
        let terminal = isatty(2) == 1
        render = StatusLine(colour: StatusLine.usesColour(terminal: terminal, noColor: Environment.get("NO_COLOR")))
        live = render.colour
        self.loop = loop
        started = loop.now
    }

    /// A message of the session (submitted, cancelling, warnings): a line of its own above the live line.
    func message(_ text: String) {
        clear()
        try? FileDescriptor.writeAll(2, "qxub: " + text + "\n")
        if live { redraw() }
    }

    /// New counts: the live line says them now; off a terminal, a line of their own.
    func progress(_ text: String) {
        counts = text
        if live {
            redraw()
        } else {
            try? FileDescriptor.writeAll(2, "qxub: " + text + "\n")
        }
    }

    /// Subjob output follows: the live line is cleared so that the output starts at the start of a line; the
    /// next tick draws it again below.
    func makeWayForOutput() {
        clear()
    }

    /// The session is over: the last counts stay as a line of their own (coloured, without the spinner).
    func finish() {
        if let timer { loop?.cancelTimer(timer) }
        timer = nil
        guard live, let counts else { return }
        clear()
        try? FileDescriptor.writeAll(2, render.arrayCounts(counts) + "\n")
    }

    private func clear() {
        guard lineOpen else { return }
        lineOpen = false
        try? FileDescriptor.writeAll(2, "\r\u{1B}[K")
    }

    private func redraw() {
        guard let loop, let counts else { return }
        if let timer { loop.cancelTimer(timer) }
        let text = render.arrayProgress(counts, elapsed: loop.now - started, frame: frame)
        try? FileDescriptor.writeAll(2, "\r\u{1B}[K" + text)
        lineOpen = true
        frame += 1
        timer = loop.schedule(after: StatusLine.tick) { [weak self] in
            self?.timer = nil
            self?.redraw()
        }
    }
}
