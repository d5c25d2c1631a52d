import QxubProtocol

/// How qxub's progress line on stderr reads: a spinner, colour, the elapsed time and the scheduler's reason
/// for a waiting job on a terminal; the same words without escapes elsewhere. Pure: the caller says when.
package struct StatusLine: Hashable, Sendable {
    /// What a line says about the job, which picks its colour.
    package enum Tone: Hashable, Sendable {
        case plain
        case queued
        case done
        case failed
    }

    /// Colour (SGR escapes) is written; off on a pipe or file and when `NO_COLOR` is set (no-color.org).
    package var colour: Bool

    /// Braille dots: one cell wide on every terminal font that draws Unicode, and quiet to look at.
    package static let spinnerFrames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
    /// Seconds between two frames of the spinner (the line is redrawn at each).
    package static let tick = 0.125

    package init(colour: Bool) {
        self.colour = colour
    }

    /// Colour is for a terminal whose user did not opt out: `NO_COLOR` set to anything but "" turns it off.
    package static func usesColour(terminal: Bool, noColor: String?) -> Bool {
        terminal && (noColor ?? "").isEmpty
    }

    /// `text` in the tone's colour (green done, red failed, yellow queued), reset after it.
    package func paint(_ text: String, _ tone: Tone) -> String {
        guard colour else { return text }
        switch tone {
        case .plain: return text
        case .queued: return "\u{1B}[33m" + text + "\u{1B}[0m"
        case .done: return "\u{1B}[32m" + text + "\u{1B}[0m"
        case .failed: return "\u{1B}[31m" + text + "\u{1B}[0m"
        }
    }

    /// The live line of a job that waits: spinner frame `frame`, how long it has waited and, when the
    /// scheduler says, why ("qxub: job 12 queued (1m5s): Insufficient ncpus").
    package func waiting(jobID: String, held: Bool, elapsed: Double, reason: String, frame: Int) -> String {
        let spinner = Self.spinnerFrames[frame % Self.spinnerFrames.count]
        let why = reason.trimmingSpaces.escapingControlCharacters
        let text =
            "qxub: job \(jobID) \(held ? "held" : "queued") (\(Self.duration(elapsed)))"
            + (why.isEmpty ? "" : ": \(why)")
        return spinner + " " + paint(text, .queued)
    }

    /// The line that says how the job ended: green for exit status 0, red otherwise.
    package func finished(jobID: String, code: Int32, elapsed: Double) -> String {
        paint(
            "qxub: job \(jobID) finished with exit status \(code) after \(Self.duration(elapsed))",
            code == 0 ? .done : .failed
        )
    }

    /// A followed array's counts (``ArrayProgress/line``) as a live line: spinner frame `frame`, each count in
    /// its state's colour, the time since the array was submitted ("⠋ qxub: array 12[]: 1 queued, 2 done (4.2s)").
    package func arrayProgress(_ line: String, elapsed: Double, frame: Int) -> String {
        let spinner = Self.spinnerFrames[frame % Self.spinnerFrames.count]
        return spinner + " " + arrayCounts(line) + " (\(Self.duration(elapsed)))"
    }

    /// `qxub: ` and the array's counts, each in its state's colour (green done, red failed, yellow queued or
    /// held, running plain): the line that stays once the array has ended.
    package func arrayCounts(_ line: String) -> String {
        guard colour, let colon = line.firstRange(of: ": ") else { return "qxub: " + line }
        let parts = line[colon.upperBound...].split(separator: ",").map { part -> String in
            let text = String(part.drop { $0 == " " })
            let word = text.split(separator: " ").last.map(String.init) ?? ""
            let tone: Tone =
                switch word {
                case "done": .done
                case "failed": .failed
                case "queued", "held": .queued
                default: .plain
                }
            return paint(text, tone)
        }
        return "qxub: " + line[..<colon.upperBound] + parts.joined(separator: ", ")
    }

    /// How `qxub monitor` names a job's state: a finished job is `done` (green) when it exited 0 and
    /// `FAILED` (red) otherwise, so that a failure stands out in a table of many jobs.
    package static func monitorState(_ phase: JobState.Phase, exitCode: Int32?) -> (word: String, tone: Tone) {
        switch phase {
        case .finished: exitCode == 0 ? ("done", .done) : ("FAILED", .failed)
        case .queued, .held: ("\(phase)", .queued)
        case .running, .unknown: ("\(phase)", .plain)
        }
    }

    /// A duration as people read it: tenths under a minute ("4.2s"), then "3m5s", then "2h10m".
    package static func duration(_ seconds: Double) -> String {
        let whole = Int(max(0, seconds))
        if whole < 60 { return "\(whole).\(Int(max(0, seconds) * 10) % 10)s" }
        if whole < 3600 { return "\(whole / 60)m\(whole % 60)s" }
        return "\(whole / 3600)h\(whole / 60 % 60)m"
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
