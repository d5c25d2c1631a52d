import QxubClient
import QxubProtocol
import Testing

/// An interactive job's spec: the command runs on a 24x80 terminal.
private let interactiveSpec: JobSpec = {
    var spec = Fixture.spec
    spec.terminal = JobSpec.Terminal(rows: 24, columns: 80, type: "xterm", graceSeconds: 600)
    return spec
}()

private func interactiveSession() -> JobSessionStateMachine.Configuration {
    var configuration = Fixture.exec()
    configuration.jobs = [.submit(interactiveSpec, token: Fixture.token)]
    return configuration
}

private let capabilities = [ProtocolConstants.capabilitySubmitToken, ProtocolConstants.capabilityInteractive]
private let submitInteractive: A = .send(.submit(job: 0, spec: interactiveSpec, token: Fixture.token, dryRun: false))

private func typed(_ text: String) -> A { .send(.terminalInput(job: 0, data: Array(text.utf8))) }
private func resize(_ rows: UInt16, _ columns: UInt16) -> A {
    .send(.terminalResize(job: 0, rows: rows, columns: columns))
}

let interactiveScenarios: [Scenario] = [
    Scenario(
        name:
            "interactive: the terminal is the job's once it runs; keys and sizes go to its channel, are kept while "
            + "the session is down and sent after the watch; the terminal is released before the end is printed",
        configuration: interactiveSession(),
        steps: [
            Step(.readyWith(capabilities), [submitInteractive], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            // Queued: the terminal stays ours (Ctrl-C is still a cancel), keys typed now are not the job's.
            Step(
                .jobState(job: 0, JobState(phase: .queued, terminal: true)),
                [.status(.state(JobState(phase: .queued, terminal: true)))],
                .open
            ),
            Step(.typed("early"), [], .open),
            Step(
                .jobState(job: 0, JobState(phase: .running, host: "n1", terminal: true)),
                [.status(.state(JobState(phase: .running, host: "n1", terminal: true))), .terminal(.take)],
                .open
            ),
            Step(.typed("ls\r"), [typed("ls\r")], .open),
            Step(.resized(rows: 30, columns: 100), [resize(30, 100)], .open),
            Step(.output(job: 0, .stdout, offset: 0, "a\r\n"), [Expect.write("a\r\n")], .open),
            Step(.closed(endReason: "gone"), Expect.lostReconnect(1, 1), .waitingToReconnect),
            // While the session is down: kept, in order; the newest size wins.
            Step(.typed("echo "), [], .waitingToReconnect),
            Step(.typed("x\r"), [], .waitingToReconnect),
            Step(.resized(rows: 40, columns: 120), [], .waitingToReconnect),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .readyWith(capabilities),
                [.status(.reconnected), Expect.watch(out: 3), resize(40, 120), typed("echo x\r")],
                .open
            ),
            Step(
                .jobEnd(job: 0, .exited(3)),
                [.terminal(.release)] + Expect.ended(3, .exited(3)) + [.finish(3)],
                .finished(3)
            ),
        ]
    ),
    Scenario(
        name: "interactive: an agent without the capability is an error that says to install this version's agent",
        configuration: interactiveSession(),
        steps: [
            Step(
                .readyWith([ProtocolConstants.capabilitySubmitToken]),
                [
                    .fail(
                        ClientError(
                            "the qxub-agent on the local agent does not run interactive jobs (it is older than this qxub)",
                            hint: "install this version's agent: `qxub agent install`",
                            exitCode: ExitCodes.unavailable
                        )
                    ), .finish(ExitCodes.unavailable),
                ],
                .finished(ExitCodes.unavailable)
            )
        ]
    ),
    Scenario(
        name: "attach to an interactive job: the agent says so in its state, and the terminal becomes the job's",
        configuration: Fixture.exec(attach: "7"),
        steps: [
            Step(.ready(tokens: true), [Expect.watch(0, "7", tail: 65536)], .open),
            Step(
                .jobState(job: 0, JobState(phase: .running, terminal: true)),
                [.status(.state(JobState(phase: .running, terminal: true))), .terminal(.take)],
                .open
            ),
            Step(.typed("q"), [.send(.terminalInput(job: 0, data: Array("q".utf8)))], .open),
        ]
    ),
    Scenario(
        name: "a batch job's state never takes the terminal, and typed keys go nowhere",
        configuration: Fixture.exec(),
        steps: [
            Step(.ready(tokens: true), [Expect.submit()], .open),
            Step(.submitted(job: 0, jobID: "42"), Expect.followed() + [Expect.watch()], .open),
            Step(
                .jobState(job: 0, JobState(phase: .running, host: "n1")),
                [.status(.state(JobState(phase: .running, host: "n1")))],
                .open
            ),
            Step(.typed("x"), [], .open),
        ]
    ),
]
