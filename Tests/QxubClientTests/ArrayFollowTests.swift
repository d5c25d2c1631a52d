import QxubClient
import QxubProtocol
import Testing

extension Fixture {
    /// `qxub exec --array` as the session runs it: one array job submitted, its subjobs followed.
    static func array(_ indices: [Int]) -> JobSessionStateMachine.Configuration {
        var configuration = batch(1)
        configuration.arrayIndices = indices
        return configuration
    }
}

let arrayScenarios: [Scenario] = [
    Scenario(
        name: "subjobs followed: output tagged with the index, a count line per change, the failure's status kept",
        configuration: Fixture.array([1, 2]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0)], .open),
            Step(
                .submitted(job: 0, jobID: "7[].s"),
                [
                    .recordSubmission(job: 0, Fixture.submitted("7[].s")),
                    .status(.note("submitted array job 7[].s: 2 subjobs")),
                    Expect.watch(1, "7[1].s"), Expect.watch(2, "7[2].s"),
                    .status(.progress("array 7[].s: 2 queued")),
                ],
                .open
            ),
            Step(
                .jobState(job: 1, JobState(phase: .running)),
                [.status(.progress("array 7[].s: 1 queued, 1 running"))],
                .open
            ),
            Step(.jobState(job: 1, JobState(phase: .running)), [], .open),
            Step(.output(job: 2, .stdout, offset: 0, "b\n"), [Expect.write("[2] b\n")], .open),
            Step(.output(job: 1, .stderr, offset: 0, "partial"), [], .open),
            Step(
                .jobEnd(job: 1, .exited(0)),
                [
                    Expect.write("[1] partial\n", .stderr), .recordEnd(job: 1, jobID: "7[1].s", code: 0),
                    .status(.progress("array 7[].s: 1 queued, 1 done")),
                ],
                .open
            ),
            Step(
                .jobEnd(job: 2, .exited(3)),
                [
                    .recordEnd(job: 2, jobID: "7[2].s", code: 3), .status(.progress("array 7[].s: 1 done, 1 failed")),
                    .recordEnd(job: 0, jobID: "7[].s", code: 3), .finish(3),
                ],
                .finished(3)
            ),
        ]
    ),
    Scenario(
        name: "two subjobs fail: the status of the lower index, whichever ended first (Slurm ids)",
        configuration: Fixture.array([1, 2]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0)], .open),
            Step(
                .submitted(job: 0, jobID: "7"),
                [
                    .recordSubmission(job: 0, Fixture.submitted("7")),
                    .status(.note("submitted array job 7: 2 subjobs")),
                    Expect.watch(1, "7_1"), Expect.watch(2, "7_2"), .status(.progress("array 7: 2 queued")),
                ],
                .open
            ),
            Step(
                .jobEnd(job: 2, .exited(4)),
                [.recordEnd(job: 2, jobID: "7_2", code: 4), .status(.progress("array 7: 1 queued, 1 failed"))],
                .open
            ),
            Step(
                .jobEnd(job: 1, .exited(9)),
                [
                    .recordEnd(job: 1, jobID: "7_1", code: 9), .status(.progress("array 7: 2 failed")),
                    .recordEnd(job: 0, jobID: "7", code: 9), .finish(9),
                ],
                .finished(9)
            ),
        ]
    ),
    Scenario(
        name: "a refused array submission ends with the refusal's status",
        configuration: Fixture.array([1, 2]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0)], .open),
            Step(
                .refused(.submit(job: 0), .malformedRequest, "bad range"),
                [.status(.note("[1] not submitted: bad range")), .finish(64)],
                .finished(64)
            ),
        ]
    ),
    Scenario(
        name: "after a lost session the subjobs are watched again from their offsets, the array is not",
        configuration: Fixture.array([1, 2]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0)], .open),
            Step(
                .submitted(job: 0, jobID: "7[].s"),
                [
                    .recordSubmission(job: 0, Fixture.submitted("7[].s")),
                    .status(.note("submitted array job 7[].s: 2 subjobs")),
                    Expect.watch(1, "7[1].s"), Expect.watch(2, "7[2].s"),
                    .status(.progress("array 7[].s: 2 queued")),
                ],
                .open
            ),
            Step(.output(job: 1, .stdout, offset: 0, "a\n"), [Expect.write("[1] a\n")], .open),
            Step(
                .closed(endReason: "gone"),
                [.status(.note("lost the connection (gone); reconnecting in 1 s (attempt 1)")), .reconnect(after: 1)],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .ready(tokens: true),
                [.status(.note("reconnected")), Expect.watch(1, "7[1].s", out: 2), Expect.watch(2, "7[2].s")],
                .open
            ),
        ]
    ),
    Scenario(
        name: "Ctrl-C cancels the whole array with one cancel, again after a lost session, and ends 130",
        configuration: Fixture.array([1, 2]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0)], .open),
            Step(
                .submitted(job: 0, jobID: "7[].s"),
                [
                    .recordSubmission(job: 0, Fixture.submitted("7[].s")),
                    .status(.note("submitted array job 7[].s: 2 subjobs")),
                    Expect.watch(1, "7[1].s"), Expect.watch(2, "7[2].s"),
                    .status(.progress("array 7[].s: 2 queued")),
                ],
                .open
            ),
            Step(
                .signal(.interrupt),
                [
                    .status(.note("cancelling array job 7[].s… (press Ctrl-C again to leave it running)")),
                    .send(.cancel(job: 0, jobID: "7[].s")),
                ],
                .open
            ),
            Step(
                .closed(endReason: "gone"),
                [.status(.note("lost the connection (gone); reconnecting in 1 s (attempt 1)")), .reconnect(after: 1)],
                .waitingToReconnect
            ),
            Step(.reconnectDue, [.connect], .connecting),
            Step(
                .ready(tokens: true),
                [
                    .status(.note("reconnected")), Expect.watch(1, "7[1].s"), Expect.watch(2, "7[2].s"),
                    .send(.cancel(job: 0, jobID: "7[].s")),
                ],
                .open
            ),
            Step(
                .jobEnd(job: 1, .cancelled(ranFirst: true)),
                [
                    .recordEnd(job: 1, jobID: "7[1].s", code: 130),
                    .status(.progress("array 7[].s: 1 queued, 1 failed")),
                ],
                .open
            ),
            Step(
                .jobEnd(job: 2, .exited(0)),
                [
                    .recordEnd(job: 2, jobID: "7[2].s", code: 0), .status(.progress("array 7[].s: 1 done, 1 failed")),
                    .recordEnd(job: 0, jobID: "7[].s", code: 130), .finish(130),
                ],
                .finished(130)
            ),
        ]
    ),
    Scenario(
        name: "a second Ctrl-C stops following the array at once",
        configuration: Fixture.array([1]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0)], .open),
            Step(
                .submitted(job: 0, jobID: "7"),
                [
                    .recordSubmission(job: 0, Fixture.submitted("7")),
                    .status(.note("submitted array job 7: 1 subjobs")), Expect.watch(1, "7_1"),
                    .status(.progress("array 7: 1 queued")),
                ],
                .open
            ),
            Step(
                .signal(.interrupt),
                [
                    .status(.note("cancelling array job 7… (press Ctrl-C again to leave it running)")),
                    .send(.cancel(job: 0, jobID: "7")),
                ],
                .open
            ),
            Step(
                .signal(.interrupt),
                [
                    .status(
                        .note(
                            "stopped waiting for array job 7: its cancel was requested but not yet confirmed, so subjobs may still be running; `qxub cancel 7` cancels them"
                        )
                    ),
                    .finish(130),
                ],
                .finished(130)
            ),
        ]
    ),
    Scenario(
        name: "SIGTERM while following an array leaves it running",
        configuration: Fixture.array([1]),
        steps: [
            Step(.ready(tokens: true), [Expect.submit(0)], .open),
            Step(
                .submitted(job: 0, jobID: "7"),
                [
                    .recordSubmission(job: 0, Fixture.submitted("7")),
                    .status(.note("submitted array job 7: 1 subjobs")), Expect.watch(1, "7_1"),
                    .status(.progress("array 7: 1 queued")),
                ],
                .open
            ),
            Step(
                .signal(.terminate),
                [.status(.note("left array job 7 running; cancel it with `qxub cancel 7`")), .finish(130)],
                .finished(130)
            ),
        ]
    ),
]

@Suite("Following an array job: its subjobs as a batch, tagged with their indices")
struct ArrayFollowTests {
    @Test("array paths", arguments: arrayScenarios)
    func paths(_ scenario: Scenario) {
        JobSessionStateMachineTests().play(scenario)
    }

    @Test(
        "the count line: states in the order a subjob goes through them, empty ones left out",
        arguments: [
            ([ArrayProgress.SubjobState.waiting(nil), .waiting(.unknown)], "array 5[]: 2 queued"),
            ([.waiting(.queued), .waiting(.held), .waiting(.running)], "array 5[]: 1 queued, 1 held, 1 running"),
            ([.waiting(.finished), .ended(code: 0), .ended(code: 2)], "array 5[]: 1 running, 1 done, 1 failed"),
        ]
    )
    func line(subjobs: [ArrayProgress.SubjobState], line: String) {
        #expect(ArrayProgress(arrayID: "5[]", subjobs: subjobs).line == line)
    }
}
