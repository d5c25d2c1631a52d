import QxubSystem

/// A waiting job's live line, redrawn at each tick of the event loop's clock so that its spinner turns and
/// its time counts; drawing is the caller's (stderr in qxub, a list in tests).
package final class WaitingLine {
    private weak var loop: EventLoop?
    private let line: StatusLine
    private let draw: (String) -> Void
    private var timer: Int?
    private var since: Double?
    private var frame = 0
    private var jobID = ""
    private var held = false
    private var reason = ""

    package init(loop: EventLoop, line: StatusLine, draw: @escaping (String) -> Void) {
        self.loop = loop
        self.line = line
        self.draw = draw
    }

    /// Draws the line now and keeps it turning; a later call changes what it says, not since when.
    package func show(jobID: String, held: Bool, reason: String) {
        guard let loop else { return }
        self.jobID = jobID
        self.held = held
        self.reason = reason
        since = since ?? loop.now
        redraw()
    }

    /// The job stopped waiting (or the terminal is someone else's): no more redraws.
    package func stop() {
        if let timer { loop?.cancelTimer(timer) }
        timer = nil
        since = nil
        frame = 0
    }

    private func redraw() {
        guard let loop, let since else { return }
        if let timer { loop.cancelTimer(timer) }
        draw(line.waiting(jobID: jobID, held: held, elapsed: loop.now - since, reason: reason, frame: frame))
        frame += 1
        timer = loop.schedule(after: StatusLine.tick) { [weak self] in
            self?.timer = nil
            self?.redraw()
        }
    }
}
