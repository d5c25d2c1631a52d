import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Numbers from the wire that would overflow or trap in arithmetic (issue 9, item 4), sent to the built
/// binaries: each gets a clear error and the session goes on; nothing crashes.
@Suite("Hostile numbers on the wire", .serialized)
struct HostileNumberTests {
    /// A built agent with its own state directory, past the hellos.
    static func agent(_ sandbox: Sandbox) throws -> AgentPipe {
        let agent = try AgentPipe(
            hello: Hello(software: "qxub-tests", capabilities: []),
            environment: sandbox.environmentList
        )
        try agent.write(agent.endpoint.start())
        guard case .ready = try agent.next() else { throw TestFailure("the agent did not say hello") }
        return agent
    }

    @Test("a watch with an offset of 2^63 or more gets malformed-request; the session goes on", arguments: [3, 4])
    func watchOffsetPastOffT(field: Int) throws {
        let sandbox = try Sandbox("watch-offset-\(field)")
        let agent = try Self.agent(sandbox)
        var spec = JobSpec(name: "n", command: .shell("echo hi"), workingDirectory: sandbox.directory)
        spec.backend = "local"
        try agent.send(.submit(Submit(requestID: 1, spec: spec)))
        guard case .submitted(let submitted) = try agent.nextMessage() else { throw TestFailure("no submitted") }
        // The job has run (so the agent reads its files at once) before the hostile watch arrives.
        #expect(sandbox.wait { FileSystem.exists(submitted.stateDirectory + "/exit") })
        let huge: UInt64 = 1 << 63
        let watch = Watch(
            requestID: 7,
            jobID: submitted.jobID,
            stdoutOffset: field == 3 ? huge : 0,
            stderrOffset: field == 4 ? huge : 0
        )
        try agent.send(.watch(watch), channel: 1)
        let reply = try agent.nextMessage()
        #expect(
            reply
                == .error(
                    ErrorMessage(
                        requestID: 7,
                        code: .malformedRequest,
                        message: "a watch frame was malformed: field \(field) is out of range",
                        hint: "this is a bug in the client: please report it"
                    )
                )
        )
        try agent.send(.ping(Ping(nonce: 9)))
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 9)))
        let (exit, stderr) = try agent.finish()
        #expect(exit == .exited(0), "stderr: \(stderr)")
    }

    @Test("a Slurm submission asking for 2^64-2 bytes of memory renders instead of trapping")
    func hugeMemoryOnSlurm() throws {
        let sandbox = try Sandbox("huge-memory")
        let agent = try Self.agent(sandbox)
        var spec = JobSpec(name: "n", command: .shell("true"), workingDirectory: sandbox.directory)
        spec.backend = "slurm"
        spec.resources.memoryBytes = .max - 1
        try agent.send(.submit(Submit(requestID: 2, spec: spec, dryRun: true)))
        guard case .submitted(let submitted) = try agent.nextMessage() else {
            throw TestFailure("no answer to the dry run")
        }
        #expect(submitted.script.contains("#SBATCH --mem=17592186044416M"), "\(submitted.script)")
        try agent.send(.ping(Ping(nonce: 3)))
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 3)))
        let (exit, stderr) = try agent.finish()
        #expect(exit == .exited(0), "stderr: \(stderr)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fake agent for the built `qxub`: a script that prints prepared frames (an agent's magic and hello,
/// then whatever a test wants) and reads its stdin until the client closes it.
struct HostileAgent {
    let path: String

    init(in sandbox: Sandbox, frames: [(Message, UInt32)]) throws {
        var agent = ProtocolEndpoint(hello: Hello(software: "hostile-agent", capabilities: []), preambleLimit: 0)
        var bytes = agent.start()
        for (message, channel) in frames {
            // Encoded raw: the endpoint's own checks must not stop a hostile value.
            let payload = message.frame(channel: channel).payload
            FrameHeader(length: UInt32(payload.count), type: message.frameType, flags: [], channel: channel).write(
                into: &bytes
            )
            bytes += payload
        }
        try FileSystem.writeAtomically(sandbox.directory + "/frames", bytes)
        path = sandbox.directory + "/bin/hostile-agent"
        try FileSystem.writeAtomically(
            path,
            "#!/bin/sh\ncat '\(sandbox.directory)/frames'\nexec cat >/dev/null\n",
            mode: 0o755
        )
        sandbox.environment["QXUB_AGENT"] = path
    }
}

@Suite("The built qxub against a hostile agent", .serialized)
struct HostileAgentTests {
    @Test(
        "an output frame whose offset + length overflows is refused with a warning; the job's end still counts",
        arguments: [
            (UInt64.max - 15, "field 2 is out of range"),
            (UInt64(Int64.max) - 15, "offset 9223372036854775792 plus 100 bytes is past 2^63-1"),
        ]
    )
    func outputOffsetOverflow(offset: UInt64, reason: String) throws {
        let sandbox = try Sandbox("hostile-output")
        _ = try HostileAgent(
            in: sandbox,
            frames: [
                (.output(Output(stream: .stdout, offset: offset, data: Array(repeating: 0x41, count: 100))), 1),
                (.output(Output(stream: .stdout, offset: 0, data: Array("fine\n".utf8))), 1),
                (.jobEnd(.exited(0)), 1),
            ]
        )
        let run = try sandbox.qxub(["attach", "local-0123abcd"], timeout: 30)
        #expect(run.exit == .exited(0), "stderr: \(run.stderrText)")
        #expect(run.stdoutText == "fine\n")
        #expect(
            run.stderrText.contains(
                "ignored a malformed output from the agent: a output frame was malformed: \(reason)"
            ),
            "stderr: \(run.stderrText)"
        )
    }

    @Test("a history entry from beyond time_t is a clear error at once, not a crash or a 120 s wait")
    func historyTimeOverflow() throws {
        let sandbox = try Sandbox("hostile-history")
        _ = try HostileAgent(
            in: sandbox,
            frames: [
                (
                    .historyReport(
                        HistoryReport(
                            requestID: 1,
                            entries: [
                                HistoryEntry(
                                    jobID: "1",
                                    name: "n",
                                    backend: "local",
                                    submittedAt: .max,
                                    stateDirectory: "/",
                                    submitHost: "h"
                                )
                            ]
                        )
                    ), 0
                )
            ]
        )
        let started = MonotonicClock.now()
        let run = try sandbox.qxub(["history", "--remote"], timeout: 60)
        #expect(MonotonicClock.now() - started < 10)
        #expect(run.exit == .exited(69), "stderr: \(run.stderrText)")
        #expect(
            run.stderrText.hasPrefix(
                "qxub: error: the local agent sent a history-report that does not decode: a history-report frame was malformed: field 4 is out of range"
            ),
            "stderr: \(run.stderrText)"
        )
    }
}
