import QxubClient
import QxubSystem
import Testing

@Suite("The status line: spinner, colour, elapsed time and the scheduler's reason")
struct StatusLineTests {
    @Test(
        "colour only on a terminal whose user did not set NO_COLOR (no-color.org: any non-empty value)",
        arguments: [
            (true, nil as String?, true),
            (true, "", true),
            (true, "1", false),
            (true, "0", false),
            (false, nil, false),
            (false, "", false),
        ]
    )
    func colourDecision(terminal: Bool, noColor: String?, expected: Bool) {
        #expect(StatusLine.usesColour(terminal: terminal, noColor: noColor) == expected)
    }

    @Test(
        "tones: green done, red failed, yellow queued, nothing plain; no escapes without colour",
        arguments: [
            (StatusLine.Tone.done, "\u{1B}[32mx\u{1B}[0m"),
            (.failed, "\u{1B}[31mx\u{1B}[0m"),
            (.queued, "\u{1B}[33mx\u{1B}[0m"),
            (.plain, "x"),
        ]
    )
    func tones(tone: StatusLine.Tone, painted: String) {
        #expect(StatusLine(colour: true).paint("x", tone) == painted)
        #expect(StatusLine(colour: false).paint("x", tone) == "x")
    }

    @Test(
        "a waiting job's line: spinner frame, word, elapsed time, and the reason when the scheduler gives one",
        arguments: [
            (false, 12.34, "", 0, "⠋ qxub: job 7.gadi queued (12.3s)"),
            (false, 65, "Insufficient ncpus", 1, "⠙ qxub: job 7.gadi queued (1m5s): Insufficient ncpus"),
            (true, 7200, "JobHeldUser", 10, "⠋ qxub: job 7.gadi held (2h0m): JobHeldUser"),
            (false, 1, " Priority \u{1B}[2J", 3, "⠸ qxub: job 7.gadi queued (1.0s): Priority \\x1b[2J"),
        ]
    )
    func waiting(held: Bool, elapsed: Double, reason: String, frame: Int, expected: String) {
        let line = StatusLine(colour: false).waiting(
            jobID: "7.gadi",
            held: held,
            elapsed: elapsed,
            reason: reason,
            frame: frame
        )
        #expect(line == expected)
    }

    @Test(
        "an array's live line: spinner frame, each count in its state's colour, elapsed time; no escapes without colour"
    )
    func arrayProgress() {
        let counts = "array 7[].gadi: 1 queued, 1 held, 3 running, 2 done, 1 failed"
        #expect(
            StatusLine(colour: true).arrayProgress(counts, elapsed: 4.2, frame: 11)
                == "⠙ qxub: array 7[].gadi: \u{1B}[33m1 queued\u{1B}[0m, \u{1B}[33m1 held\u{1B}[0m, 3 running, "
                + "\u{1B}[32m2 done\u{1B}[0m, \u{1B}[31m1 failed\u{1B}[0m (4.2s)"
        )
        #expect(StatusLine(colour: false).arrayProgress(counts, elapsed: 65, frame: 0) == "⠋ qxub: \(counts) (1m5s)")
        #expect(StatusLine(colour: false).arrayCounts(counts) == "qxub: " + counts)
    }

    @Test("the end line is green for exit status 0 and red otherwise")
    func finished() {
        let colour = StatusLine(colour: true)
        #expect(
            colour.finished(jobID: "1", code: 0, elapsed: 3)
                == "\u{1B}[32mqxub: job 1 finished with exit status 0 after 3.0s\u{1B}[0m"
        )
        #expect(colour.finished(jobID: "1", code: 2, elapsed: 3).hasPrefix("\u{1B}[31m"))
        #expect(
            StatusLine(colour: false).finished(jobID: "1", code: 2, elapsed: 61)
                == "qxub: job 1 finished with exit status 2 after 1m1s"
        )
    }

    @Test("the waiting line turns and counts at each tick of the loop's clock, and stops when told")
    func ticksOnTheLoopClock() throws {
        let loop = EventLoop(clock: ManualClock())
        var drawn: [String] = []
        let waiting = WaitingLine(loop: loop, line: StatusLine(colour: false)) { drawn.append($0) }
        waiting.show(jobID: "5", held: false, reason: "")
        #expect(drawn == ["⠋ qxub: job 5 queued (0.0s)"])
        try loop.advanceTime(by: StatusLine.tick)
        try loop.advanceTime(by: StatusLine.tick)
        #expect(drawn.count == 3)
        #expect(drawn.last == "⠹ qxub: job 5 queued (0.2s)")
        waiting.show(jobID: "5", held: false, reason: "Priority")
        #expect(drawn.last == "⠸ qxub: job 5 queued (0.2s): Priority", "the reason shows at once; the clock runs on")
        waiting.stop()
        try loop.advanceTime(by: 5)
        #expect(drawn.count == 4, "no redraw after stop")
    }
}
