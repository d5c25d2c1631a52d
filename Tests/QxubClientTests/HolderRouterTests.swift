import QxubClient
import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("The session holder's router: many clients over one agent session, each with its own numbers")
struct HolderRouterTests {
    typealias Action = HolderRouter.Action

    /// Two clients that both number their first request 1 and watch on their channel 1.
    func twoClients() -> HolderRouter {
        var router = HolderRouter()
        router.clientJoined(1)
        router.clientJoined(2)
        return router
    }

    @Test("two clients' submits with the same request id get different ids on the agent, and each gets its own reply")
    func submitsApart() {
        var router = twoClients()
        let spec = JobSpec(name: "a", command: .shell("true"), workingDirectory: "/")
        let first = router.fromClient(1, .submit(Submit(requestID: 1, spec: spec)), channel: 0)
        let second = router.fromClient(2, .submit(Submit(requestID: 1, spec: spec)), channel: 0)
        #expect(first == [.toAgent(.submit(Submit(requestID: 1, spec: spec)), channel: 0)])
        #expect(second == [.toAgent(.submit(Submit(requestID: 2, spec: spec)), channel: 0)])
        // Answered in the other order: each goes to its asker, under the asker's own id.
        #expect(
            router.fromAgent(.submitted(Submitted(requestID: 2, jobID: "J2", backend: "local")), channel: 0)
                == [.toClient(2, .submitted(Submitted(requestID: 1, jobID: "J2", backend: "local")), channel: 0)]
        )
        #expect(
            router.fromAgent(.submitted(Submitted(requestID: 1, jobID: "J1", backend: "local")), channel: 0)
                == [.toClient(1, .submitted(Submitted(requestID: 1, jobID: "J1", backend: "local")), channel: 0)]
        )
        #expect(router.outstandingRequests == 0)
    }

    @Test("job output comes to the client that watches the job, on that client's channel, never to the other")
    func outputApart() {
        var router = twoClients()
        #expect(
            router.fromClient(1, .watch(Watch(requestID: 1, jobID: "J1")), channel: 1)
                == [.toAgent(.watch(Watch(requestID: 1, jobID: "J1")), channel: 1)]
        )
        #expect(
            router.fromClient(2, .watch(Watch(requestID: 1, jobID: "J2", stdoutOffset: 5)), channel: 1)
                == [.toAgent(.watch(Watch(requestID: 2, jobID: "J2", stdoutOffset: 5)), channel: 2)]
        )
        let chunk = Output(stream: .stdout, offset: 5, data: Array("two\n".utf8))
        #expect(router.fromAgent(.output(chunk), channel: 2) == [.toClient(2, .output(chunk), channel: 1)])
        let end = JobTermination.exited(3)
        #expect(router.fromAgent(.jobEnd(end), channel: 1) == [.toClient(1, .jobEnd(end), channel: 1)])
        // A channel nobody watches (a late frame after its client left) goes nowhere.
        #expect(router.fromAgent(.output(chunk), channel: 9) == [])
    }

    /// What the router answers itself and what it forwards, message by message (client 1 connected).
    @Test(
        "answered by the holder itself, or forwarded",
        arguments: [
            (Message.ping(Ping(nonce: 7)), UInt32(0), [Action.toClient(1, .pong(Ping(nonce: 7)), channel: 0)]),
            (.pong(Ping(nonce: 7)), 0, []),
            (.goodbye(Goodbye()), 0, []),
            (.unwatch(JobRequest(requestID: 4, jobID: "J")), 3, []),
            (
                .unknown(FrameType(rawValue: 0x70), requestID: 9), 0,
                [
                    .toClient(
                        1,
                        .error(
                            ErrorMessage(
                                requestID: 9,
                                code: .unknownRequest,
                                message: "the session holder does not know type-0x70 requests"
                            )
                        ),
                        channel: 0
                    )
                ]
            ),
            (
                .cancel(JobRequest(requestID: 4, jobID: "J")), 0,
                [.toAgent(.cancel(JobRequest(requestID: 1, jobID: "J")), channel: 0)]
            ),
            (
                .statusQuery(StatusQuery(requestID: 4, jobIDs: ["J"])), 0,
                [.toAgent(.statusQuery(StatusQuery(requestID: 1, jobIDs: ["J"])), channel: 0)]
            ),
            (
                .historyQuery(HistoryQuery(requestID: 4, limit: 3)), 0,
                [.toAgent(.historyQuery(HistoryQuery(requestID: 1, limit: 3)), channel: 0)]
            ),
        ]
    )
    func fromClient(message: Message, channel: UInt32, expected: [Action]) {
        var router = HolderRouter()
        router.clientJoined(1)
        #expect(router.fromClient(1, message, channel: channel) == expected)
    }

    @Test("a split status reply reaches its asker report by report; the request ends with the last one")
    func splitReply() {
        var router = twoClients()
        _ = router.fromClient(2, .statusQuery(StatusQuery(requestID: 8, jobIDs: ["A", "B"])), channel: 0)
        let a = JobStatus(jobID: "A", state: JobState(phase: .running))
        let b = JobStatus(jobID: "B", state: JobState(phase: .queued))
        #expect(
            router.fromAgent(.statusReport(StatusReport(requestID: 1, jobs: [a], more: true)), channel: 0)
                == [.toClient(2, .statusReport(StatusReport(requestID: 8, jobs: [a], more: true)), channel: 0)]
        )
        #expect(router.outstandingRequests == 1)
        #expect(
            router.fromAgent(.statusReport(StatusReport(requestID: 1, jobs: [b])), channel: 0)
                == [.toClient(2, .statusReport(StatusReport(requestID: 8, jobs: [b])), channel: 0)]
        )
        #expect(router.outstandingRequests == 0)
    }

    @Test("a client that leaves: its jobs are unwatched on the agent, replies to it are dropped, the other goes on")
    func clientLeaves() {
        var router = twoClients()
        _ = router.fromClient(1, .watch(Watch(requestID: 1, jobID: "J1")), channel: 1)
        _ = router.fromClient(2, .watch(Watch(requestID: 1, jobID: "J2")), channel: 1)
        _ = router.fromClient(1, .cancel(JobRequest(requestID: 2, jobID: "J1")), channel: 0)
        #expect(router.clientLeft(1) == [.toAgent(.unwatch(JobRequest(requestID: 4, jobID: "J1")), channel: 1)])
        #expect(
            router.fromAgent(.cancelResult(CancelResult(requestID: 3, jobID: "J1", wasActive: true)), channel: 0) == []
        )
        #expect(router.fromAgent(.output(Output(stream: .stdout, offset: 0, data: [1])), channel: 1) == [])
        #expect(
            router.fromAgent(.output(Output(stream: .stdout, offset: 0, data: [2])), channel: 2)
                == [.toClient(2, .output(Output(stream: .stdout, offset: 0, data: [2])), channel: 1)]
        )
        #expect(!router.isIdle)
        _ = router.clientLeft(2)
        #expect(router.isIdle)
        #expect(router.followedJobs == 0)
    }

    @Test("an error about the agent's whole session reaches every client; one about a request only its asker")
    func errors() {
        var router = twoClients()
        let session = ErrorMessage(requestID: 0, code: .internalError, message: "bad")
        #expect(
            router.fromAgent(.error(session), channel: 0)
                == [.toClient(1, .error(session), channel: 0), .toClient(2, .error(session), channel: 0)]
        )
        _ = router.fromClient(2, .watch(Watch(requestID: 5, jobID: "nope")), channel: 1)
        #expect(
            router.fromAgent(.error(ErrorMessage(requestID: 1, code: .unknownJob, message: "no job nope")), channel: 0)
                == [
                    .toClient(
                        2,
                        .error(ErrorMessage(requestID: 5, code: .unknownJob, message: "no job nope")),
                        channel: 0
                    )
                ]
        )
    }

    @Test("a request a client sent that does not decode is answered malformed-request by the holder")
    func malformed() {
        let router = twoClients()
        let error = ProtocolError.malformedPayload(type: .submit, reason: "no job spec")
        #expect(
            router.malformed(1, type: .submit, requestID: 3, error: error)
                == [
                    .toClient(
                        1,
                        .error(ErrorMessage(requestID: 3, code: .malformedRequest, message: "\(error)")),
                        channel: 0
                    )
                ]
        )
        #expect(router.malformed(1, type: .output, requestID: 3, error: error) == [])
    }
}

@Suite("Session holder settings and checks")
struct SessionHolderSettingsTests {
    @Test(
        "session_persist durations, as ssh's ControlPersist writes them",
        arguments: [
            ("10m", 600.0), ("90s", 90), ("1h", 3600), ("0", 0), ("45", 45), ("0.5", 0.5), (" 2m ", 120),
        ] as [(String, Double)]
    )
    func durations(text: String, seconds: Double) {
        #expect(Platform.duration(text) == seconds)
    }

    @Test("not durations", arguments: ["", "ten", "-1", "5d", "m"])
    func notDurations(text: String) {
        #expect(Platform.duration(text) == nil)
    }

    @Test(
        "only the user's own processes may use a holder",
        arguments: [
            (PeerCredentials(pid: 10, userID: 1000), uid_t(1000), true),
            (PeerCredentials(pid: 10, userID: 1001), 1000, false),
            (PeerCredentials(pid: 10, userID: 0), 1000, false),
            (nil, 1000, false),
        ] as [(PeerCredentials?, uid_t, Bool)]
    )
    func admits(peer: PeerCredentials?, own: uid_t, admitted: Bool) {
        #expect(PeerCredentials.admits(peer, ownUserID: own) == admitted)
    }

    @Test("the holder's socket name carries the protocol versions, so other builds never share it")
    func socketName() {
        let versions = ProtocolConstants.versions
        #expect(
            HolderClient.socketName(platform: "gadi") == "holder-p\(versions.lowerBound)-\(versions.upperBound)-gadi"
        )
    }
}
