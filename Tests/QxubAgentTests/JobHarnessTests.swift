import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

/// Every request gets exactly one reply: the harness, request by request.
extension InProcessAgentTests {
    @Suite("JobHarness: one reply per request")
    struct JobHarnessTests {
        /// What a request gets on channel 0.
        enum Reply: Sendable, Equatable, CustomStringConvertible {
            case submitted
            case cancelResult(wasActive: Bool)
            case statusReport
            case historyReport
            /// `{root}` and `{host}` in the message stand for the state root and the host name.
            case error(ErrorCode, String, hint: String)
            /// Nothing on channel 0: the job's frames on its own channel.
            case stream

            var description: String {
                switch self {
                case .submitted: "submitted"
                case .cancelResult(let wasActive): "cancel-result(was active: \(wasActive))"
                case .statusReport: "status-report"
                case .historyReport: "history-report"
                case .error(let code, let message, _): "error \(code): \(message)"
                case .stream: "its stream"
                }
            }
        }

        struct Case: Sendable, CustomTestStringConvertible {
            var request: Message
            var channel: UInt32 = 0
            var reply: Reply
            var testDescription: String { "\(request.frameType) on channel \(channel) → \(reply)" }
        }

        static let id: UInt32 = 42

        static func spec(backend: String = "local") -> JobSpec {
            var spec = JobServiceTests.spec(.shell("true"), in: "")
            spec.backend = backend
            return spec
        }

        static let cases: [Case] = [
            Case(request: .submit(Submit(requestID: id, spec: spec())), reply: .submitted),
            Case(request: .submit(Submit(requestID: id, spec: spec(), dryRun: true)), reply: .submitted),
            Case(
                request: .submit(Submit(requestID: id, spec: spec(backend: "nope"))),
                reply: .error(.malformedRequest, "unknown backend 'nope'", hint: "use local, slurm or pbspro")
            ),
            Case(request: .watch(Watch(requestID: id, jobID: "local-done")), channel: 3, reply: .stream),
            Case(
                request: .watch(Watch(requestID: id, jobID: "local-done")),
                reply: .error(.malformedRequest, "watch needs a channel other than 0", hint: "")
            ),
            Case(
                request: .watch(Watch(requestID: id, jobID: "no-such")),
                channel: 3,
                reply: .error(
                    .unknownJob,
                    "no job no-such submitted through qxub is known on {host} (looked in {root})",
                    hint: "check the id with `qxub history`"
                )
            ),
            Case(
                request: .unwatch(JobRequest(requestID: id, jobID: "local-done")),
                channel: 3,
                reply: .cancelResult(wasActive: false)
            ),
            Case(request: .unwatch(JobRequest(requestID: id, jobID: "")), reply: .cancelResult(wasActive: false)),
            Case(
                request: .cancel(JobRequest(requestID: id, jobID: "local-done")),
                reply: .cancelResult(wasActive: false)
            ),
            Case(
                request: .cancel(JobRequest(requestID: id, jobID: "no-such")),
                reply: .error(
                    .unknownJob,
                    "no job no-such submitted through qxub is known here",
                    hint: "check the id with `qxub history`"
                )
            ),
            Case(
                request: .cancel(JobRequest(requestID: id, jobID: "local-gone")),
                reply: .cancelResult(wasActive: false)
            ),
            Case(
                request: .statusQuery(StatusQuery(requestID: id, jobIDs: ["local-done", "no-such"])),
                reply: .statusReport
            ),
            Case(request: .historyQuery(HistoryQuery(requestID: id, limit: 5)), reply: .historyReport),
        ]

        @Test("each request gets exactly one reply of its kind on channel 0 (a watch: its stream)", arguments: cases)
        func oneReply(_ test: Case) throws {
            let root = try temporaryDirectory()
            try recordJob(
                root: root,
                jobID: "local-done",
                backend: "local",
                records: ["started": "1700000000 node\n", "exit": "0 1700000001\n"]
            )
            // Started, never ended, its processes gone (no pid record): a cancel finds nothing to end.
            try recordJob(root: root, jobID: "local-gone", backend: "local", records: ["started": "1700000000 node\n"])
            let agent = try InProcessAgent(stateRoot: root)
            try agent.sayHello()
            try agent.send(test.request, channel: test.channel)
            // Every reply of these requests is sent before the agent reads the next frame: a ping after the
            // request is answered after them.
            try agent.send(.ping(Ping(nonce: 1)))
            #expect(try agent.run { $0.messages().contains(.pong(Pong(nonce: 1))) })
            let replies = agent.replies(to: Self.id)
            switch test.reply {
            case .stream:
                #expect(replies.isEmpty, "\(replies)")
                #expect(
                    try agent.run { agent in
                        agent.messages(channel: test.channel).contains { if case .jobEnd = $0 { true } else { false } }
                    }
                )
            case .error(let code, let message, let hint):
                let expected = message.replacingAll("{root}", with: root).replacingAll(
                    "{host}",
                    with: Environment.hostname()
                )
                #expect(
                    replies == [.error(ErrorMessage(requestID: Self.id, code: code, message: expected, hint: hint))]
                )
            case .cancelResult(let wasActive):
                let jobID: String
                switch test.request {
                case .cancel(let request), .unwatch(let request): jobID = request.jobID
                default: jobID = ""
                }
                #expect(
                    replies == [.cancelResult(CancelResult(requestID: Self.id, jobID: jobID, wasActive: wasActive))]
                )
            case .submitted:
                #expect(
                    replies.count == 1 && replies.allSatisfy { if case .submitted = $0 { true } else { false } },
                    "\(replies)"
                )
            case .statusReport:
                #expect(
                    replies.count == 1 && replies.allSatisfy { if case .statusReport = $0 { true } else { false } },
                    "\(replies)"
                )
            case .historyReport:
                #expect(
                    replies.count == 1 && replies.allSatisfy { if case .historyReport = $0 { true } else { false } },
                    "\(replies)"
                )
            }
        }

        @Test("unwatch stops a watch and says whether one was on; the watch's channel falls silent")
        func unwatch() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            let jobID = try JobServiceTests.submit(agent, .shell("echo started; sleep 60"))
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 2)
            #expect(
                try agent.run {
                    String(decoding: JobServiceTests.output($0, channel: 2, .stdout), as: UTF8.self) == "started\n"
                }
            )
            try agent.send(.unwatch(JobRequest(requestID: 3, jobID: jobID)), channel: 2)
            try agent.send(.unwatch(JobRequest(requestID: 4, jobID: jobID)), channel: 2)
            try agent.send(.cancel(JobRequest(requestID: 5, jobID: jobID)))
            #expect(try agent.run { !$0.replies(to: 5).isEmpty })
            #expect(agent.replies(to: 3) == [.cancelResult(CancelResult(requestID: 3, jobID: jobID, wasActive: true))])
            #expect(agent.replies(to: 4) == [.cancelResult(CancelResult(requestID: 4, jobID: jobID, wasActive: false))])
            // The cancelled job's end is followed by nobody: a watch on another channel sees it, channel 2 does not.
            try agent.send(.watch(Watch(requestID: 6, jobID: jobID)), channel: 6)
            #expect(try agent.run { JobServiceTests.jobEnd($0, channel: 6) != nil })
            #expect(JobServiceTests.jobEnd(agent, channel: 2) == nil)
        }
    }
}
