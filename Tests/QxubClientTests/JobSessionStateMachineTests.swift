import QxubClient
import QxubProtocol
import Testing

/// An event fed to the machine in a table.
enum SessionEvent: Sendable {
    case ready(tokens: Bool)
    case submitted(job: Int, jobID: String)
    case refused(JobSessionStateMachine.FailedRequest?, ErrorCode, String)
    case cancelResult(job: Int, jobID: String, wasActive: Bool)
    case output(job: Int, Output.Stream, offset: UInt64, String)
    case jobEnd(job: Int, JobTermination)
    case closed(endReason: String, error: ClientError? = nil, stalled: Bool = false)
    case reconnectDue
    case connectFailed(ClientError)
    case signal(JobSessionStateMachine.Interrupt)
    case backlog(Int)
    case stdoutClosed
    /// Hellos exchanged with an agent that lists these capabilities.
    case readyWith([String])
    case jobState(job: Int, JobState)
    /// Keys typed on our terminal.
    case typed(String)
    case resized(rows: UInt16, columns: UInt16)

    func apply(to machine: inout JobSessionStateMachine) -> [JobSessionStateMachine.Action] {
        switch self {
        case .ready(let tokens):
            return machine.ready(capabilities: tokens ? [ProtocolConstants.capabilitySubmitToken] : [])
        case .submitted(let job, let jobID):
            return machine.submitted(job: job, Fixture.submitted(jobID))
        case .refused(let request, let code, let message):
            return machine.requestFailed(request, ErrorMessage(requestID: 9, code: code, message: message))
        case .cancelResult(let job, let jobID, let wasActive):
            return machine.cancelResult(job: job, CancelResult(requestID: 9, jobID: jobID, wasActive: wasActive))
        case .output(let job, let stream, let offset, let text):
            return machine.output(job: job, Output(stream: stream, offset: offset, data: Array(text.utf8)))
        case .jobEnd(let job, let termination):
            return machine.jobEnd(job: job, termination)
        case .closed(let endReason, let error, let stalled):
            return machine.closed(error: error, endReason: endReason, stalled: stalled)
        case .reconnectDue:
            return machine.reconnectDue()
        case .connectFailed(let error):
            return machine.connectFailed(error)
        case .signal(let interrupt):
            return machine.signal(interrupt)
        case .backlog(let bytes):
            return machine.outputBacklog(bytes)
        case .stdoutClosed:
            return machine.stdoutClosed()
        case .readyWith(let capabilities):
            return machine.ready(capabilities: capabilities)
        case .jobState(let job, let state):
            return machine.jobState(job: job, state)
        case .typed(let text):
            return machine.terminalInput(Array(text.utf8))
        case .resized(let rows, let columns):
            return machine.terminalResized(rows: rows, columns: columns)
        }
    }
}

/// One row: an event, the actions it must produce, the state it must leave.
struct Step: Sendable {
    let event: SessionEvent
    let actions: [JobSessionStateMachine.Action]
    let state: JobSessionStateMachine.State

    init(_ event: SessionEvent, _ actions: [JobSessionStateMachine.Action], _ state: JobSessionStateMachine.State) {
        self.event = event
        self.actions = actions
        self.state = state
    }
}

/// A path through the machine, named for the behaviour it pins down.
struct Scenario: Sendable, CustomTestStringConvertible {
    let name: String
    let configuration: JobSessionStateMachine.Configuration
    let steps: [Step]
    var testDescription: String { name }
}

enum Fixture {
    static let spec = JobSpec(name: "j", command: .shell("echo hi"), workingDirectory: "/w")
    static let token = "T0"
    static let peer = "the local agent"

    static func submitted(_ jobID: String) -> Submitted {
        Submitted(requestID: 9, jobID: jobID, backend: "local", stateDirectory: "/s/\(jobID)")
    }

    static func exec(
        _ mode: JobSessionStateMachine.Mode = .follow,
        delays: [Double] = [1, 2, 4, 8, 15],
        attach: String? = nil
    ) -> JobSessionStateMachine.Configuration {
        var configuration = JobSessionStateMachine.Configuration(
            presentation: .exec,
            mode: mode,
            jobs: [attach.map { .attach(jobID: $0) } ?? .submit(spec, token: token)],
            peerName: peer
        )
        configuration.reconnect = ReconnectPolicy(delays: delays)
        configuration.outputBacklogLimit = 100
        return configuration
    }

    static func batch(
        _ count: Int,
        terse: Bool = false,
        delays: [Double] = [1, 2]
    ) -> JobSessionStateMachine.Configuration {
        var configuration = JobSessionStateMachine.Configuration(
            presentation: .batch,
            mode: terse ? .terse : .follow,
            jobs: (0..<count).map { .submit(spec, token: "T\($0)") },
            peerName: peer
        )
        configuration.reconnect = ReconnectPolicy(delays: delays)
        return configuration
    }
}

typealias A = JobSessionStateMachine.Action

/// Shorthands for the actions the tables expect.
enum Expect {
    static func submit(_ job: Int = 0, dryRun: Bool = false, token: String? = nil) -> A {
        .send(.submit(job: job, spec: Fixture.spec, token: token ?? "T\(job)", dryRun: dryRun))
    }
    static func watch(_ job: Int = 0, _ jobID: String = "42", out: UInt64 = 0, err: UInt64 = 0, tail: UInt64 = 0) -> A {
        .send(.watch(job: job, jobID: jobID, stdoutOffset: out, stderrOffset: err, joblog: false, stdoutTail: tail))
    }
    static func cancel(_ job: Int = 0, _ jobID: String = "42") -> A { .send(.cancel(job: job, jobID: jobID)) }
    static func write(_ text: String, _ target: OutputSink.Target = .stdout) -> A { .write(target, Array(text.utf8)) }
    /// What `qxub exec` does when its job is submitted.
    static func followed(_ jobID: String = "42") -> [A] {
        [
            .log("submitted job \(jobID) (local) on the local agent, state in /s/\(jobID)"),
            .recordSubmission(job: 0, Fixture.submitted(jobID)),
            .status(.submitted(jobID: jobID, backend: "local")),
        ]
    }
    static func ended(
        _ code: Int32,
        _ termination: JobTermination,
        message: String? = nil,
        jobID: String = "42"
    ) -> [A] {
        [
            .log("job \(jobID) ended: \(termination) → exit \(code)"),
            .recordEnd(job: 0, jobID: jobID, code: code),
            .status(.finished(code: code, message: message)),
        ]
    }
    static func lostReconnect(_ attempt: Int, _ delay: Double, jobID: String = "42") -> [A] {
        [
            .log("job \(jobID): connection lost (gone); reconnect attempt \(attempt) in \(delay) s"),
            .status(.reconnecting(attempt: attempt, reason: "gone")),
            .reconnect(after: delay),
        ]
    }
}

let lostAnswer =
    "the agent ended the session before answering the submission; the job may have been submitted: "
    + "`qxub history --remote` or qstat/squeue shows it"

let execScenarios: [Scenario] = [
    Scenario(
        name: "exec submits, streams output as it comes and exits with the job's code",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.output(job: 0, .stdout, offset: 0, "hi\n"), [Expect.write("hi\n")], .open),
            Step(.output(job: 0, .stderr, offset: 0, "oops\n"), [Expect.write("oops\n", .stderr)], .open),
            Step(.output(job: 0, .stdout, offset: 0, "hi\nmore\n"), [Expect.write("more\n")], .open),
            Step(.jobEnd(job: 0, .exited(3)), Expect.ended(3, .exited(3)) + [.finish(3)], .finished(3)),
        ]
    ),
    Scenario(
        name: "submission sent, lost before its answer, agent honours tokens: asked again with the same token",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(
                .closed(endReason: "gone"),
                [
                    .log("submission: connection lost before the answer (gone); retry 1 with token T0"),
                    .status(.reconnecting(attempt: 1, reason: "gone")), .reconnect(after: 1),
                ],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.ready(tokens: true), [.status(.reconnectedToResubmit), Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
        ]
    ),
    Scenario(
        name: "submission sent, lost before its answer, agent without tokens: no retry, the job may exist",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: false), [Expect.submit()], .open),
            Step(
                .closed(endReason: "gone"),
                [.fail(ClientError(lostAnswer, exitCode: ExitCodes.unavailable)), .finish(ExitCodes.unavailable)],
                .finished(ExitCodes.unavailable)
            ),
        ]
    ),
    Scenario(
        name: "a session that dies before answering every time is not retried for ever",
        configuration: Fixture.exec(delays: [1]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(
                .closed(endReason: "gone"),
                [
                    .log("submission: connection lost before the answer (gone); retry 1 with token T0"),
                    .status(.reconnecting(attempt: 1, reason: "gone")), .reconnect(after: 1),
                ],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.ready(tokens: true), [.status(.reconnectedToResubmit), Expect.submit()], .open),
            Step(
                .closed(endReason: "gone"),
                [.fail(ClientError(lostAnswer, exitCode: ExitCodes.unavailable)), .finish(ExitCodes.unavailable)],
                .finished(ExitCodes.unavailable)
            ),
        ]
    ),
    Scenario(
        name: "lost while following: watched again from the offsets written, the cancel sent again",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.output(job: 0, .stdout, offset: 0, "abc"), [Expect.write("abc")], .open),
            Step(.output(job: 0, .stderr, offset: 0, "e"), [Expect.write("e", .stderr)], .open),
            Step(.signal(.interrupt), [.status(.cancelling(jobID: "42")), Expect.cancel()], .open),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(1, 1), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.ready(tokens: true), [.status(.reconnected), Expect.watch(out: 3, err: 1), Expect.cancel()], .open),
            Step(.output(job: 0, .stdout, offset: 0, "abcdef"), [Expect.write("def")], .open),
            Step(.cancelResult(job: 0, jobID: "42", wasActive: true), [], .open),
            Step(
                .jobEnd(job: 0, .cancelled(ranFirst: true)),
                Expect.ended(130, .cancelled(ranFirst: true), message: "the job was cancelled") + [.finish(130)],
                .finished(130)
            ),
        ]
    ),
    Scenario(
        name: "Ctrl-C before the submission went out: nothing to cancel, exit 130",
        configuration: Fixture.exec(),
        steps: [
            Step(
                .signal(.interrupt),
                [.status(.warning("interrupted before the job was submitted")), .finish(ExitCodes.interrupted)],
                .finished(ExitCodes.interrupted)
            ),
            Step(.ready(tokens: true), [], .finished(ExitCodes.interrupted)),
        ]
    ),
    Scenario(
        name: "Ctrl-C while submitting: the job is cancelled as soon as it exists",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(
                .signal(.interrupt),
                [
                    .status(
                        .warning(
                            "interrupted while submitting: the job will be cancelled as soon as the scheduler accepts it"
                        )
                    )
                ],
                .open
            ),
            Step(
                .submitted(job: 0, jobID: "42"),
                Expect.followed() + [.status(.cancelling(jobID: "42")), Expect.cancel(), Expect.watch()],
                .open
            ),
        ]
    ),
    Scenario(
        name: "Ctrl-C after submission cancels; a second Ctrl-C leaves the job running",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.signal(.interrupt), [.status(.cancelling(jobID: "42")), Expect.cancel()], .open),
            Step(
                .signal(.interrupt),
                [
                    .status(
                        .detached(
                            jobID: "42",
                            message:
                                "stopped waiting for job 42: its cancel was requested but not yet confirmed, so it may still be running; `qxub status 42` shows where it is, `qxub cancel 42` cancels it"
                        )
                    ), .finish(ExitCodes.interrupted),
                ],
                .finished(ExitCodes.interrupted)
            ),
        ]
    ),
    Scenario(
        name: "Ctrl-C while the session is down: the cancel goes out with the next session",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(1, 1), .waitingToReconnect),
            Step(.signal(.interrupt), [.status(.cancelling(jobID: "42"))], .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.ready(tokens: true), [.status(.reconnected), Expect.watch(), Expect.cancel()], .open),
        ]
    ),
    Scenario(
        name: "SIGTERM leaves the job running",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(
                .signal(.terminate),
                [
                    .status(
                        .detached(
                            jobID: "42",
                            message:
                                "left job 42 running; follow it with `qxub attach 42` or cancel it with `qxub cancel 42`"
                        )
                    ), .finish(ExitCodes.interrupted),
                ],
                .finished(ExitCodes.interrupted)
            ),
        ]
    ),
    Scenario(
        name: "attach: Ctrl-C stops following, never cancels",
        configuration: Fixture.exec(attach: "7"),
        steps: [
            // An attach asks for an interactive job's recent terminal output only (the agent ignores the tail
            // for batch jobs).
            Step(.ready(tokens: true), [Expect.watch(0, "7", tail: 65536)], .open),
            Step(
                .signal(.interrupt),
                [
                    .status(
                        .detached(
                            jobID: "7",
                            message: "stopped following job 7; it keeps running (`qxub cancel 7` cancels it)"
                        )
                    ), .finish(ExitCodes.interrupted),
                ],
                .finished(ExitCodes.interrupted)
            ),
        ]
    ),
    Scenario(
        name: "stdout closed (EPIPE): exit 141, the job left running",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(
                .stdoutClosed,
                [
                    .log("job 42: stdout closed (EPIPE); stopped following, the job keeps running"),
                    .status(
                        .detached(
                            jobID: "42",
                            message:
                                "stdout was closed; stopped following job 42, which keeps running: `qxub attach 42` follows it, `qxub cancel 42` cancels it"
                        )
                    ), .finish(ExitCodes.stdoutClosed),
                ],
                .finished(ExitCodes.stdoutClosed)
            ),
        ]
    ),
    Scenario(
        name: "reconnections back off 1, 2, 4, 8, 15 s, then qxub gives up with 255 and says how to follow",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(1, 1), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(2, 2), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.connectFailed(ClientError("gone")), Expect.lostReconnect(3, 4), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(4, 8), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(5, 15), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .closed(endReason: "gone"),
                [
                    .status(
                        .detached(
                            jobID: "42",
                            message:
                                "lost the connection to the local agent (gone); job 42 is still running: `qxub attach 42` follows it"
                        )
                    ), .finish(ExitCodes.connectionLost),
                ],
                .finished(ExitCodes.connectionLost)
            ),
        ]
    ),
    Scenario(
        name: "a session that reconnected and answered starts the backoff again from 1 s",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(1, 1), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.ready(tokens: true), [.status(.reconnected), Expect.watch()], .open),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(1, 1), .waitingToReconnect),
        ]
    ),
    Scenario(
        name: "a stalled first session is retried once, at once; a second stall fails",
        configuration: Fixture.exec(),
        steps: [
            Step(
                .closed(endReason: "", error: ClientError("no answer", exitCode: 255), stalled: true),
                [.status(.warning("no answer; reconnecting")), .reconnect(after: 0)],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .closed(endReason: "", error: ClientError("no answer", exitCode: 255), stalled: true),
                [.fail(ClientError("no answer", exitCode: 255)), .finish(255)],
                .finished(255)
            ),
        ]
    ),
    Scenario(
        name:
            "a stalled stdout pauses the watch (in-flight output still taken); once written it resumes from the offsets",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.output(job: 0, .stdout, offset: 0, "0123456789"), [Expect.write("0123456789")], .open),
            Step(.backlog(50), [], .open),
            Step(.backlog(101), [.send(.unwatch(job: 0, jobID: "42"))], .open),
            Step(.output(job: 0, .stdout, offset: 10, "ab"), [Expect.write("ab")], .open),
            Step(.backlog(200), [], .open),
            Step(.backlog(3), [], .open),
            Step(.backlog(0), [Expect.watch(out: 12)], .open),
        ]
    ),
    Scenario(
        name: "a session lost while the watch is paused comes back paused, and resumes when stdout drains",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.output(job: 0, .stdout, offset: 0, "0123"), [Expect.write("0123")], .open),
            Step(.backlog(101), [.send(.unwatch(job: 0, jobID: "42"))], .open),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(1, 1), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.ready(tokens: true), [.status(.reconnected)], .open),
            Step(.backlog(0), [Expect.watch(out: 4)], .open),
        ]
    ),
    Scenario(
        name: "the job ends while stdout still holds its output: qxub exits once it is written",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.output(job: 0, .stdout, offset: 0, "x"), [Expect.write("x")], .open),
            Step(.backlog(1), [], .open),
            Step(.jobEnd(job: 0, .exited(0)), Expect.ended(0, .exited(0)), .draining(0)),
            Step(.closed(endReason: "gone"), [], .draining(0)),
            Step(.backlog(0), [.finish(0)], .finished(0)),
        ]
    ),
    Scenario(
        name: "the reader leaves while the ended job's output waits: 141",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.backlog(1), [], .open),
            Step(.jobEnd(job: 0, .exited(0)), Expect.ended(0, .exited(0)), .draining(0)),
            Step(
                .stdoutClosed,
                [
                    .log("job 42: stdout closed (EPIPE); stopped following, the job keeps running"),
                    .status(
                        .detached(
                            jobID: "42",
                            message:
                                "stdout was closed; stopped following job 42, which keeps running: `qxub attach 42` follows it, `qxub cancel 42` cancels it"
                        )
                    ), .finish(ExitCodes.stdoutClosed),
                ],
                .finished(ExitCodes.stdoutClosed)
            ),
        ]
    ),
    Scenario(
        name: "terse: the id on stdout, the session shut down, exit 0",
        configuration: Fixture.exec(.terse),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(
                .submitted(job: 0, jobID: "42"),
                [
                    Expect.write("42\n"), .shutdownConnection, .recordSubmission(job: 0, Fixture.submitted("42")),
                    .finish(0),
                ],
                .finished(0)
            ),
        ]
    ),
    Scenario(
        name: "dry run: no token, the script on stdout",
        configuration: Fixture.exec(.dry),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(dryRun: true, token: "")], .open),
            Step(
                .submitted(job: 0, jobID: ""),
                [
                    Expect.write(
                        "# qxub dry run: nothing was submitted (backend: local)\n"
                            + "# the local backend runs the script with bash as a detached process group\n"
                            + "# job script (/s//job.sh):\n"
                    ), .finish(0),
                ],
                .finished(0)
            ),
        ]
    ),
    Scenario(
        name: "quiet: output is taken (offsets advance) but nothing is written",
        configuration: Fixture.exec(.quiet),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(.output(job: 0, .stdout, offset: 0, "abc"), [], .open),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(1, 1), .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(.ready(tokens: true), [.status(.reconnected), Expect.watch(out: 3)], .open),
        ]
    ),
    Scenario(
        name: "a refused submission fails with the agent's error",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(
                .refused(.submit(job: 0), .submitFailed, "qsub: no queue"),
                [
                    .fail(ClientError("qsub: no queue", exitCode: ExitCodes.submissionRefused)),
                    .finish(ExitCodes.submissionRefused),
                ],
                .finished(ExitCodes.submissionRefused)
            ),
        ]
    ),
    Scenario(
        name: "a failed cancel is a warning; a cancel of an ended job says so",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(
                .refused(.cancel(job: 0), .cancelFailed, "qdel failed"),
                [.status(.warning("cancelling 42 failed: qdel failed"))],
                .open
            ),
            Step(
                .cancelResult(job: 0, jobID: "42", wasActive: false),
                [.status(.warning("job 42 had already finished"))],
                .open
            ),
        ]
    ),
]

let batchScenarios: [Scenario] = [
    Scenario(
        name: "batch: every submission at once; a refused job is counted, the others followed in tagged whole lines",
        configuration: Fixture.batch(3),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0), Expect.submit(1), Expect.submit(2)], .open),
            Step(
                .submitted(job: 0, jobID: "a"),
                [.recordSubmission(job: 0, Fixture.submitted("a")), Expect.watch(0, "a")],
                .open
            ),
            Step(
                .refused(.submit(job: 1), .submitFailed, "no queue"),
                [.status(.note("[2] not submitted: no queue"))],
                .open
            ),
            Step(
                .submitted(job: 2, jobID: "c"),
                [.recordSubmission(job: 2, Fixture.submitted("c")), Expect.watch(2, "c")],
                .open
            ),
            Step(.output(job: 0, .stdout, offset: 0, "one\ntw"), [Expect.write("[1] one\n")], .open),
            Step(.output(job: 2, .stderr, offset: 0, "e\n"), [Expect.write("[3] e\n", .stderr)], .open),
            Step(
                .jobEnd(job: 0, .exited(0)),
                [Expect.write("[1] tw\n"), .recordEnd(job: 0, jobID: "a", code: 0)],
                .open
            ),
            Step(.jobEnd(job: 2, .exited(1)), [.recordEnd(job: 2, jobID: "c", code: 1), .finish(2)], .finished(2)),
        ]
    ),
    Scenario(
        name:
            "batch lost: followed jobs watched again from their offsets, unanswered ones asked again with their tokens",
        configuration: Fixture.batch(2),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0), Expect.submit(1)], .open),
            Step(
                .submitted(job: 0, jobID: "a"),
                [.recordSubmission(job: 0, Fixture.submitted("a")), Expect.watch(0, "a")],
                .open
            ),
            Step(.output(job: 0, .stdout, offset: 0, "x\n"), [Expect.write("[1] x\n")], .open),
            Step(
                .closed(endReason: "gone"),
                [.status(.note("lost the connection (gone); reconnecting in 1 s (attempt 1)")), .reconnect(after: 1)],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .ready(tokens: true),
                [.status(.note("reconnected")), Expect.watch(0, "a", out: 2), Expect.submit(1)],
                .open
            ),
        ]
    ),
    Scenario(
        name: "batch lost with an agent without tokens: the unanswered job is counted lost, never submitted twice",
        configuration: Fixture.batch(2),
        steps: [
            Step(.ready(tokens: false), [Expect.submit(0), Expect.submit(1)], .open),
            Step(
                .submitted(job: 0, jobID: "a"),
                [.recordSubmission(job: 0, Fixture.submitted("a")), Expect.watch(0, "a")],
                .open
            ),
            Step(
                .closed(endReason: "gone"),
                [.status(.note("lost the connection (gone); reconnecting in 1 s (attempt 1)")), .reconnect(after: 1)],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .ready(tokens: false),
                [
                    .status(.note("reconnected")), Expect.watch(0, "a"),
                    .status(
                        .note(
                            "[2] the answer to its submission was lost; it may have been submitted: `qxub history --remote` shows it"
                        )
                    ),
                ],
                .open
            ),
            Step(.jobEnd(job: 0, .exited(0)), [.recordEnd(job: 0, jobID: "a", code: 0), .finish(1)], .finished(1)),
        ]
    ),
    Scenario(
        name: "batch retries exhausted: the jobs still running are named",
        configuration: Fixture.batch(1, delays: [1]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0)], .open),
            Step(
                .submitted(job: 0, jobID: "a"),
                [.recordSubmission(job: 0, Fixture.submitted("a")), Expect.watch(0, "a")],
                .open
            ),
            Step(
                .closed(endReason: "gone"),
                [.status(.note("lost the connection (gone); reconnecting in 1 s (attempt 1)")), .reconnect(after: 1)],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .closed(endReason: "gone"),
                [
                    .status(.note("lost the connection (gone); still running: a (`qxub attach ID` follows one)")),
                    .finish(ExitCodes.connectionLost),
                ],
                .finished(ExitCodes.connectionLost)
            ),
        ]
    ),
    Scenario(
        name: "batch Ctrl-C cancels the jobs that exist and each later one as soon as it does",
        configuration: Fixture.batch(2),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0), Expect.submit(1)], .open),
            Step(
                .submitted(job: 0, jobID: "a"),
                [.recordSubmission(job: 0, Fixture.submitted("a")), Expect.watch(0, "a")],
                .open
            ),
            Step(.signal(.interrupt), [.status(.note("cancelling 1 jobs…")), Expect.cancel(0, "a")], .open),
            Step(
                .submitted(job: 1, jobID: "b"),
                [Expect.cancel(1, "b"), .recordSubmission(job: 1, Fixture.submitted("b")), Expect.watch(1, "b")],
                .open
            ),
        ]
    ),
    Scenario(
        name: "batch terse: the ids on stdout, done when every job has one",
        configuration: Fixture.batch(2, terse: true),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0), Expect.submit(1)], .open),
            Step(
                .submitted(job: 1, jobID: "b"),
                [.recordSubmission(job: 1, Fixture.submitted("b")), Expect.write("b\n")],
                .open
            ),
            Step(
                .submitted(job: 0, jobID: "a"),
                [.recordSubmission(job: 0, Fixture.submitted("a")), Expect.write("a\n"), .finish(0)],
                .finished(0)
            ),
        ]
    ),
    Scenario(
        name: "batch: a stalled first session is retried once; a new session that cannot start ends it",
        configuration: Fixture.batch(1),
        steps: [
            Step(
                .closed(endReason: "", error: ClientError("no answer", exitCode: 255), stalled: true),
                [.status(.note("no answer; reconnecting")), .reconnect(after: 0)],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .connectFailed(ClientError("cannot start ssh", exitCode: 69)),
                [.status(.note("cannot start ssh")), .finish(69)],
                .finished(69)
            ),
        ]
    ),
]

@Suite("The job session state machine: (state, event) → (state, actions)")
struct JobSessionStateMachineTests {
    @Test("exec paths", arguments: execScenarios)
    func exec(_ scenario: Scenario) {
        play(scenario)
    }

    @Test("interactive paths", arguments: interactiveScenarios)
    func interactive(_ scenario: Scenario) {
        play(scenario)
    }

    @Test("batch paths", arguments: batchScenarios)
    func batch(_ scenario: Scenario) {
        play(scenario)
    }

    func play(_ scenario: Scenario) {
        var machine = JobSessionStateMachine(scenario.configuration)
        #expect(machine.state == .connecting)
        for (row, step) in scenario.steps.enumerated() {
            let actions = step.event.apply(to: &machine)
            #expect(actions == step.actions, "row \(row): \(step.event)")
            #expect(machine.state == step.state, "row \(row): \(step.event)")
        }
    }
}
