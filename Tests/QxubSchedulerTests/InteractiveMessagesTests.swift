import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `qsub -I` and `srun --pty` terminals as recorded (Tests/Fixtures/*-real/interactive-*.tty).
@Suite("Interactive scheduler messages")
struct InteractiveMessagesTests {
    typealias State = InteractiveMessages.State

    static let pbsIDs = Fixtures.ids("pbs-real", file: "interactive-ids.txt")
    static let slurmIDs = Fixtures.ids("slurm-real", file: "interactive-ids.txt")
    /// Files kept from an earlier recording (their ids are not in interactive-ids.txt).
    static let earlierIDs = ["sigint-reentrant": "6025.vm"]

    static func terminal(_ scheduler: String, _ scenario: String) -> String {
        Fixtures.text(scheduler, "interactive-" + scenario + ".tty")
    }

    /// The terminal's text up to the end of the line holding `needle` (or, with `line: false`, up to the end of
    /// `needle` itself: an unfinished line).
    static func prefix(_ text: String, through needle: String, line: Bool = true) -> String {
        guard let range = text.firstRange(ofLiteral: needle) else { return "missing \(needle)" }
        guard line else { return String(text[..<range.upperBound]) }
        let end =
            text[range.upperBound...].firstIndex { $0 == "\r\n" || $0 == "\n" }.map { text.index(after: $0) }
            ?? text.endIndex
        return String(text[..<end])
    }

    /// scenario, how much of its terminal, expected state, whether PBS's question is pending.
    static let pbsCases: [(String, String?, State, Bool)] = [
        ("exit3", nil, .started, false),
        ("exit3", "to start", .waiting, false),
        ("held", nil, .started, false),
        ("sigint-yes", nil, .abandoned, false),
        ("sigint-yes", "(y|[n])? ", .waiting, true),
        ("sigterm-no", nil, .started, false),
        ("sigterm-no", "(y|[n])? n", .waiting, false),
        ("ctrlc-eof", nil, .abandoned, false),
        ("ctrlc-eof", "(y|[n])? ", .waiting, true),
        ("sigint-timeout", nil, .abandoned, false),
        ("sighup", nil, .waiting, false),
        ("qdel-waiting", nil, .abandoned, false),
        ("ctrlc-running", nil, .started, false),
        // SIGINT while qsub still wrote its first line: the line comes twice (qsub's handler reuses stdio).
        ("sigint-reentrant", "(y|[n])? ", .waiting, true),
        ("sigint-reentrant", nil, .abandoned, false),
    ]

    @Test(
        "qsub -I: the job id from the first line; waiting until ready; deleted when qsub says so",
        arguments: pbsCases
    )
    func pbs(scenario: String, through: String?, state: State, asks: Bool) throws {
        let full = Self.terminal("pbs-real", scenario)
        let text = through.map { Self.prefix(full, through: $0, line: !$0.hasSuffix("? ")) } ?? full
        let messages = InteractiveMessages.read(text, kind: .pbspro)
        let id = try #require(Self.pbsIDs["interactive-" + scenario] ?? Self.earlierIDs[scenario])
        #expect(messages == InteractiveMessages(state: state, jobID: id, asksToConfirmCancel: asks), "\(text)")
    }

    static let slurmCases: [(String, String?, State, Bool)] = [
        ("begin", nil, .started, true),
        ("begin", "queued and waiting", .waiting, true),
        ("held", nil, .started, true),
        ("held", "held state", .submitting, false),
        ("held", "queued and waiting", .waiting, true),
        ("sigint", nil, .abandoned, true),
        ("sigterm", nil, .abandoned, true),
        ("sighup", nil, .abandoned, true),
        ("ctrlc", nil, .abandoned, true),
        ("scancel-waiting", nil, .abandoned, true),
        // A job that starts at once: srun names no id before the job's output.
        ("exit3", nil, .started, false),
        ("ctrlc-running", nil, .started, false),
    ]

    @Test(
        "srun --pty: the id from the queued line; started at the allocation or the job's first line",
        arguments: slurmCases
    )
    func slurm(scenario: String, through: String?, state: State, hasID: Bool) throws {
        let full = Self.terminal("slurm-real", scenario)
        let text = through.map { Self.prefix(full, through: $0) } ?? full
        let messages = InteractiveMessages.read(text, kind: .slurm)
        let id = hasID ? try #require(Self.slurmIDs["interactive-" + scenario]) : nil
        #expect(messages == InteractiveMessages(state: state, jobID: id), "\(text)")
    }

    @Test("a line still arriving counts for nothing (PBS's question excepted)")
    func unfinishedLine() {
        #expect(InteractiveMessages.read("qsub: waiting for job 12.vm to st", kind: .pbspro) == InteractiveMessages())
        #expect(
            InteractiveMessages.read("srun: job 7 queued and waiting for res", kind: .slurm) == InteractiveMessages()
        )
        #expect(InteractiveMessages.read("", kind: .slurm) == InteractiveMessages())
    }

    @Test("once the job started, the user's output cannot change what the scheduler said")
    func userOutputIsNotRead() {
        let pbs =
            Self.terminal("pbs-real", "exit3") + "qsub: job 99.vm apparently deleted\r\nJob 98.vm is being deleted\r\n"
        #expect(InteractiveMessages.read(pbs, kind: .pbspro).state == .started)
        #expect(InteractiveMessages.read(pbs, kind: .pbspro).jobID == Self.pbsIDs["interactive-exit3"])
        let slurm = Self.terminal("slurm-real", "begin") + "srun: Job allocation 99 has been revoked\r\n"
        #expect(InteractiveMessages.read(slurm, kind: .slurm).state == .started)
        #expect(InteractiveMessages.read(slurm, kind: .slurm).jobID == Self.slurmIDs["interactive-begin"])
    }

    @Test(
        "read in chunks of any size (a line or its \\r\\n split between two), the messages are those of the whole text",
        arguments: [1, 2, 3, 7, 64]
    )
    func chunked(size: Int) {
        let recordings =
            Self.pbsCases.map { ("pbs-real", $0.0, $0.1, SchedulerKind.pbspro) }
            + Self.slurmCases.map { ("slurm-real", $0.0, $0.1, SchedulerKind.slurm) }
        for (scheduler, scenario, through, kind) in recordings {
            let full = Self.terminal(scheduler, scenario)
            let text = through.map { Self.prefix(full, through: $0, line: !$0.hasSuffix("? ")) } ?? full
            let bytes = Array(text.utf8)
            var reader = InteractiveMessageReader(kind: kind)
            var last = reader.messages
            for start in stride(from: 0, to: bytes.count, by: size) {
                last = reader.take(bytes[start..<min(start + size, bytes.count)])
            }
            #expect(last == InteractiveMessages.read(text, kind: kind), "\(scheduler) \(scenario) \(through ?? "")")
        }
    }

    @Test("the local backend has no queue: its job has started")
    func local() {
        #expect(InteractiveMessages.read("", kind: .local).state == .started)
    }

    @Test("PBS cancel: SIGHUP alone leaves the job queued (recorded), so qdel of the id, then SIGHUP to qsub")
    func pbsCancel() throws {
        let id = try #require(Self.pbsIDs["interactive-sighup"])
        #expect(InteractiveMessages.read(Self.terminal("pbs-real", "sighup"), kind: .pbspro).jobID == id)
        #expect(Fixtures.text("pbs-real", "interactive-sighup.tty.rc") == "129\n")
        #expect(Fixtures.run("pbs-real", "interactive-sighup-qstat").stdoutText.contains("    job_state = H\n"))
        #expect(
            SchedulerBackend(kind: .pbspro).interactiveCancel(jobID: id)
                == InteractiveCancel(command: ["qdel", id], signal: SIGHUP, repeatAfterSeconds: nil)
        )
        #expect(SchedulerBackend(kind: .pbspro).interactiveCancel(jobID: nil).command == nil)
    }

    @Test("Slurm cancel: the signal cancels the job (recorded CANCELLED), sent again when srun hangs")
    func slurmCancel() throws {
        for scenario in ["sigint", "sigterm", "sighup", "ctrlc"] {
            let id = try #require(Self.slurmIDs["interactive-" + scenario])
            let squeue = Fixtures.run("slurm-real", "interactive-\(scenario)-squeue").stdoutText
            #expect(squeue == "\(id)|CANCELLED|JobHeldUser\n")
        }
        // An earlier recording caught srun blocked after its first SIGINT: the second one ended it.
        let stuck = Fixtures.text("slurm-real", "interactive-sigint-stuck.tty.steps")
        #expect(stuck.contains("  3.04 waited: still running\n  3.04 signal SIGINT\n  3.04 exit status 1\n"))
        #expect(InteractiveMessages.read(Self.terminal("slurm-real", "sigint-stuck"), kind: .slurm).state == .abandoned)
        #expect(
            SchedulerBackend(kind: .slurm).interactiveCancel(jobID: "7")
                == InteractiveCancel(command: nil, signal: SIGINT, repeatAfterSeconds: 2)
        )
    }
}
