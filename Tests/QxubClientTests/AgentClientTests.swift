import QxubClient
import QxubProtocol
import Testing

/// Records what the client sends instead of writing it to an agent.
final class RecordingTransport: AgentTransport {
    var sent: [(Message, UInt32)] = []
    func send(_ message: Message, channel: UInt32) { sent.append((message, channel)) }
}

@Suite("The typed agent client: replies matched to requests by id")
struct AgentClientTests {
    @Test("a late reply to an earlier request whose caller stopped waiting is not taken for the next one")
    func lateReply() throws {
        let transport = RecordingTransport()
        let client = AgentClient(transport: transport)
        var first: [CancelResult] = []
        var second: [CancelResult] = []
        let abandoned = client.cancel(jobID: "A") { if case .success(let result) = $0 { first.append(result) } }
        client.abandon(abandoned)
        let asked = client.cancel(jobID: "B") { if case .success(let result) = $0 { second.append(result) } }
        #expect(asked != abandoned)
        client.receive(.cancelResult(CancelResult(requestID: abandoned, jobID: "A", wasActive: true)), channel: 0)
        #expect(first.isEmpty)
        #expect(second.isEmpty)
        client.receive(.cancelResult(CancelResult(requestID: asked, jobID: "B", wasActive: false)), channel: 0)
        #expect(second == [CancelResult(requestID: asked, jobID: "B", wasActive: false)])
        #expect(client.outstanding == 0)
    }

    @Test("an error answers the request its id names, of whatever kind, and no other")
    func errorsByID() throws {
        let client = AgentClient(transport: RecordingTransport())
        var statusOutcome: Result<[JobStatus], ClientError>?
        var submitOutcome: Result<Submitted, ErrorMessage>?
        var unmatched: [Message] = []
        client.onUnmatched = { unmatched.append($0) }
        let status = client.status(["1"]) { statusOutcome = $0 }
        let submit = client.submit(JobSpec(name: "j", command: .shell("true"), workingDirectory: "")) {
            submitOutcome = $0
        }
        let refusal = ErrorMessage(requestID: submit, code: .submitFailed, message: "no queue")
        client.receive(.error(refusal), channel: 0)
        #expect(statusOutcome == nil)
        #expect(submitOutcome == .failure(refusal))
        let stray = ErrorMessage(requestID: 999, code: .internalError, message: "?")
        client.receive(.error(stray), channel: 0)
        #expect(unmatched == [.error(stray)])
        let report = StatusReport(requestID: status, jobs: [JobStatus(jobID: "1", state: JobState(phase: .running))])
        client.receive(.statusReport(report), channel: 0)
        #expect(statusOutcome == .success(report.jobs))
    }

    @Test("a status answer split over reports is collected; more statuses than asked is an error")
    func splitStatus() throws {
        let client = AgentClient(transport: RecordingTransport())
        var outcomes: [Result<[JobStatus], ClientError>] = []
        let id = client.status(["1", "2"]) { outcomes.append($0) }
        let one = JobStatus(jobID: "1", state: JobState(phase: .queued))
        let two = JobStatus(jobID: "2", state: JobState(phase: .running))
        client.receive(.statusReport(StatusReport(requestID: id, jobs: [one], more: true)), channel: 0)
        #expect(outcomes.isEmpty)
        client.receive(.statusReport(StatusReport(requestID: id, jobs: [two])), channel: 0)
        #expect(outcomes == [.success([one, two])])
        let greedy = client.status(["1"]) { outcomes.append($0) }
        client.receive(.statusReport(StatusReport(requestID: greedy, jobs: [one, two])), channel: 0)
        let error = ClientError(
            "the agent sent 2 statuses for a request of 1",
            hint: "the agent does not match this qxub: `qxub agent install` installs the one that does",
            exitCode: ExitCodes.unavailable
        )
        #expect(outcomes.last == .failure(error))
    }

    @Test("job streams go by channel; a watch refused by id reaches its own error handler")
    func streams() throws {
        let transport = RecordingTransport()
        let client = AgentClient(transport: transport)
        var streamed: [(UInt32, Message)] = []
        var refused: [ErrorMessage] = []
        client.onStream = { streamed.append(($0, $1)) }
        let watch = client.watch(jobID: "7", channel: 3, stdoutOffset: 5) { refused.append($0) }
        let sent = try #require(transport.sent.last)
        #expect(sent.0 == .watch(Watch(requestID: watch, jobID: "7", stdoutOffset: 5)))
        #expect(sent.1 == 3)
        let output = Output(stream: .stdout, offset: 5, data: [0x41])
        client.receive(.output(output), channel: 3)
        #expect(streamed.count == 1 && streamed[0].0 == 3 && streamed[0].1 == .output(output))
        let unknown = ErrorMessage(requestID: watch + 1, code: .unknownJob, message: "no job 8")
        let other = client.watch(jobID: "8", channel: 4) { refused.append($0) }
        #expect(other == watch + 1)
        client.receive(.error(unknown), channel: 0)
        #expect(refused == [unknown])
    }

    @Test("an answer to unwatch, if the agent sends one, is dropped quietly; pongs are matched by nonce")
    func unwatchAndPing() throws {
        let client = AgentClient(transport: RecordingTransport())
        var unmatched: [Message] = []
        client.onUnmatched = { unmatched.append($0) }
        let id = client.unwatch(jobID: "7", channel: 2)
        client.receive(.error(ErrorMessage(requestID: id, code: .unknownJob, message: "not watched")), channel: 0)
        #expect(unmatched.isEmpty)
        var pongs = 0
        let nonce = client.ping { pongs += 1 }
        client.receive(.pong(Pong(nonce: 12)), channel: 0)
        #expect(pongs == 0)
        client.receive(.pong(Pong(nonce: nonce)), channel: 0)
        #expect(pongs == 1)
    }
}
