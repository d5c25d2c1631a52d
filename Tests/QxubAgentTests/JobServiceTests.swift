import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The agent's job logic in this process, with the local backend: submit, follow, end, cancel.
extension InProcessAgentTests {
    @Suite("JobService in process (local backend)")
    struct JobServiceTests {
        static func spec(_ command: JobSpec.Command, in directory: String) -> JobSpec {
            JobSpec(
                name: "agent-test",
                command: command,
                workingDirectory: directory,
                context: .init(),
                variables: [],
                resources: .init(),
                backend: "local",
                submitHost: "tests",
                clientVersion: QxubVersion.current
            )
        }

        /// Submits `command` and returns the job id.
        static func submit(_ agent: InProcessAgent, _ command: JobSpec.Command, requestID: UInt32 = 1) throws -> String
        {
            try agent.sayHello()
            try agent.send(.submit(Submit(requestID: requestID, spec: spec(command, in: agent.stateRoot))))
            try agent.run { agent in
                agent.messages().contains {
                    if case .submitted = $0 { true } else if case .error = $0 { true } else { false }
                }
            }
            let submitted = try #require(Self.submitted(agent), "a submitted reply: \(agent.messages())")
            #expect(submitted.requestID == requestID)
            #expect(submitted.backend == "local")
            return submitted.jobID
        }

        static func submitted(_ agent: InProcessAgent) -> Submitted? {
            agent.messages().lazy.compactMap { if case .submitted(let reply) = $0 { reply } else { nil } }.first
        }

        static func jobEnd(_ agent: InProcessAgent, channel: UInt32) -> JobTermination? {
            for message in agent.messages(channel: channel) { if case .jobEnd(let end) = message { return end } }
            return nil
        }

        static func output(_ agent: InProcessAgent, channel: UInt32, _ stream: Output.Stream) -> [UInt8] {
            var bytes: [UInt8] = []
            for message in agent.messages(channel: channel) {
                if case .output(let output) = message, output.stream == stream {
                    #expect(output.offset == UInt64(bytes.count), "output arrives in order, without gaps or repeats")
                    bytes += output.data
                }
            }
            return bytes
        }

        @Test(
            "a job's stdout and stderr arrive separately and whole, the running state comes first, the exit code last"
        )
        func followToTheEnd() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            let jobID = try Self.submit(
                agent,
                .shell("printf 'partial'; printf 'err\\n' >&2; printf ' line\\r\\n'; exit 7")
            )
            #expect(jobID.hasPrefix("local-"))
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 4)
            #expect(try agent.run { Self.jobEnd($0, channel: 4) != nil })
            #expect(Self.jobEnd(agent, channel: 4) == .exited(7))
            #expect(String(decoding: Self.output(agent, channel: 4, .stdout), as: UTF8.self) == "partial line\r\n")
            #expect(String(decoding: Self.output(agent, channel: 4, .stderr), as: UTF8.self) == "err\n")
            let onChannel = agent.messages(channel: 4)
            let running = onChannel.firstIndex {
                if case .jobState(let state) = $0 { state.phase == .running } else { false }
            }
            let firstOutput = onChannel.firstIndex { if case .output = $0 { true } else { false } }
            #expect(running != nil && firstOutput != nil && running! < firstOutput!, "running precedes output")
        }

        @Test("watching from offsets resumes where the client stopped: nothing twice, nothing lost")
        func resumeFromOffsets() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            let jobID = try Self.submit(agent, .argv(["/bin/sh", "-c", "echo 0123456789; echo abcdef >&2"]))
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 1)
            #expect(try agent.run { Self.jobEnd($0, channel: 1) != nil })
            try agent.send(.watch(Watch(requestID: 3, jobID: jobID, stdoutOffset: 4, stderrOffset: 6)), channel: 2)
            #expect(try agent.run { Self.jobEnd($0, channel: 2) != nil })
            var resumed: [UInt8] = []
            var resumedErr: [UInt8] = []
            for message in agent.messages(channel: 2) {
                guard case .output(let output) = message else { continue }
                if output.stream == .stdout {
                    #expect(output.offset == 4 + UInt64(resumed.count))
                    resumed += output.data
                } else {
                    #expect(output.offset == 6 + UInt64(resumedErr.count))
                    resumedErr += output.data
                }
            }
            #expect(String(decoding: resumed, as: UTF8.self) == "456789\n")
            #expect(String(decoding: resumedErr, as: UTF8.self) == "\n")
            #expect(Self.jobEnd(agent, channel: 2) == .exited(0))
        }

        @Test("--out X --err ./X: one file named two ways is streamed once, not twice")
        func sameFileTwoNames() throws {
            let root = try temporaryDirectory()
            let agent = try InProcessAgent(stateRoot: root)
            try agent.sayHello()
            var spec = Self.spec(.shell("echo one; echo two >&2; echo three"), in: root)
            spec.stdoutPath = root + "/both.log"
            spec.stderrPath = root + "/./both.log"
            try agent.send(.submit(Submit(requestID: 1, spec: spec)))
            try agent.run { agent in agent.messages().contains { if case .submitted = $0 { true } else { false } } }
            let submitted = try #require(Self.submitted(agent), "a submitted reply: \(agent.messages())")
            try agent.send(.watch(Watch(requestID: 2, jobID: submitted.jobID)), channel: 1)
            #expect(try agent.run { Self.jobEnd($0, channel: 1) != nil })
            #expect(String(decoding: Self.output(agent, channel: 1, .stdout), as: UTF8.self) == "one\ntwo\nthree\n")
            #expect(
                Self.output(agent, channel: 1, .stderr).isEmpty,
                "the shared file is not sent a second time as stderr"
            )
        }

        @Test("an end decided while the client is slow still delivers every byte before the end, in order")
        func endAfterLargeOutput() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            // 3 MiB, more than the agent queues for a client at once (1 MiB): the end must wait for the rest.
            let jobID = try Self.submit(agent, .shell("head -c 3145728 /dev/zero | tr '\\0' x; exit 5"))
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 1)
            #expect(try agent.run(timeout: 60) { Self.jobEnd($0, channel: 1) != nil })
            let stdout = Self.output(agent, channel: 1, .stdout)
            #expect(stdout.count == 3 << 20)
            #expect(stdout.allSatisfy { $0 == UInt8(ascii: "x") })
            #expect(Self.jobEnd(agent, channel: 1) == .exited(5))
            if case .jobEnd? = agent.messages(channel: 1).last {
            } else {
                Issue.record("job-end is not the last frame of the watch")
            }
        }

        @Test("a submission retried with its token gets the first attempt's job, never a second job")
        func retriedSubmission() throws {
            let root = try temporaryDirectory()
            let token = Submit.newToken()
            var jobIDs: [String] = []
            for attempt in 1...2 {
                // Each attempt is a new session (a new agent after a lost connection) on the same home.
                let agent = try InProcessAgent(stateRoot: root)
                try agent.sayHello()
                try agent.send(
                    .submit(
                        Submit(
                            requestID: UInt32(attempt),
                            spec: Self.spec(.shell("echo once >> \(root)/runs"), in: root),
                            token: token
                        )
                    )
                )
                #expect(
                    try agent.run { agent in
                        agent.messages().contains { if case .submitted = $0 { true } else { false } }
                    }
                )
                for case .submitted(let submitted) in agent.messages() { jobIDs.append(submitted.jobID) }
            }
            #expect(jobIDs.count == 2 && jobIDs[0] == jobIDs[1], "\(jobIDs)")
            #expect(FileSystem.listDirectory(root + "/jobs").count == 1, "one job directory")
            // The job's end, then what it wrote: it ran once.
            let agent = try InProcessAgent(stateRoot: root)
            try agent.sayHello()
            try agent.send(.watch(Watch(requestID: 3, jobID: try #require(jobIDs.first))), channel: 1)
            #expect(try agent.run { Self.jobEnd($0, channel: 1) != nil })
            #expect(FileSystem.readText(root + "/runs") == "once\n", "the job ran once")
        }

        @Test("a retry while the first attempt's scheduler call still runs waits for its job id")
        func retryWaitsForFirstAttempt() throws {
            let root = try temporaryDirectory()
            let token = Submit.newToken()
            // The first attempt's state: its directory and token are recorded, its job id not yet.
            let store = JobStore(root: root)
            let directory = try store.createJobDirectory()
            #expect(try store.link(token: token, to: directory))
            try FileSystem.writeAtomically(directory + "/meta", "backend=slurm\n")
            let agent = try InProcessAgent(stateRoot: root)
            try agent.sayHello()
            try agent.send(.submit(Submit(requestID: 7, spec: Self.spec(.shell("true"), in: root), token: token)))
            agent.loop.schedule(after: 0.4) { try? store.link(jobID: "4242", to: directory) }
            #expect(
                try agent.run { agent in agent.messages().contains { if case .submitted = $0 { true } else { false } } }
            )
            let submitted = try #require(Self.submitted(agent))
            #expect(submitted.requestID == 7 && submitted.jobID == "4242" && submitted.backend == "slurm")
            #expect(FileSystem.listDirectory(root + "/jobs").count == 1, "nothing submitted a second time")
        }

        @Test("a refused submission is refused the same way when retried")
        func retriedRefusal() throws {
            let root = try temporaryDirectory()
            let token = Submit.newToken()
            var errors: [ErrorMessage] = []
            for attempt in 1...2 {
                let agent = try InProcessAgent(stateRoot: root)
                try agent.sayHello()
                var spec = Self.spec(.shell("true"), in: root)
                spec.variables = [KeyValue("qxub_state", "/elsewhere")]
                try agent.send(.submit(Submit(requestID: UInt32(attempt), spec: spec, token: token)))
                #expect(
                    try agent.run { agent in agent.messages().contains { if case .error = $0 { true } else { false } } }
                )
                for case .error(let error) in agent.messages() { errors.append(error) }
            }
            #expect(
                errors.count == 2 && errors[0].message == errors[1].message && errors[0].code == errors[1].code,
                "\(errors)"
            )
            #expect(errors.first?.message.contains("qxub_") == true)
        }

        @Test("an argv is passed exactly: no word splitting, globbing or expansion")
        func argvExactly() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            let jobID = try Self.submit(agent, .argv(["printf", "%s|", "a b", "*", "$(echo no)", "`x`", "'q'"]))
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 1)
            #expect(try agent.run { Self.jobEnd($0, channel: 1) != nil })
            #expect(
                String(decoding: Self.output(agent, channel: 1, .stdout), as: UTF8.self) == "a b|*|$(echo no)|`x`|'q'|"
            )
        }

        @Test("cancel ends a running local job as cancelled, and the job records it")
        func cancelRunning() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            let jobID = try Self.submit(agent, .shell("echo started; sleep 60; echo never"))
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 1)
            #expect(
                try agent.run { String(decoding: Self.output($0, channel: 1, .stdout), as: UTF8.self) == "started\n" }
            )
            try agent.send(.cancel(JobRequest(requestID: 3, jobID: jobID)))
            #expect(try agent.run { Self.jobEnd($0, channel: 1) != nil })
            #expect(Self.jobEnd(agent, channel: 1) == .cancelled(ranFirst: true))
            let results = agent.messages().compactMap { message -> CancelResult? in
                if case .cancelResult(let result) = message { return result }
                return nil
            }
            #expect(results.first?.requestID == 3)
            #expect(!String(decoding: Self.output(agent, channel: 1, .stdout), as: UTF8.self).contains("never"))
        }

        @Test("a status query answers for many jobs at once, known and unknown")
        func statusOfMany() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            let jobID = try Self.submit(agent, .shell("exit 3"))
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 1)
            #expect(try agent.run { Self.jobEnd($0, channel: 1) != nil })
            try agent.send(.statusQuery(StatusQuery(requestID: 9, jobIDs: [jobID, "local-00000000"])))
            #expect(
                try agent.run { agent in
                    agent.messages().contains { if case .statusReport = $0 { true } else { false } }
                }
            )
            let report = try #require(
                agent.messages().lazy.compactMap { if case .statusReport(let report) = $0 { report } else { nil } }
                    .first
            )
            #expect(report.requestID == 9)
            #expect(report.jobs.count == 2)
            #expect(report.jobs.first { $0.jobID == jobID }?.termination == .exited(3))
        }

        @Test("a submitted local job outlives the session that started it")
        func jobOutlivesSession() throws {
            let root = try temporaryDirectory()
            let marker = root + "/done"
            do {
                let agent = try InProcessAgent(stateRoot: root)
                _ = try Self.submit(agent, .argv(["/bin/sh", "-c", "sleep 1; touch \"$0\"", marker]))
                agent.closeClientSide()
                try agent.run()
                #expect(agent.session.ending == .clientClosed)
            }
            let deadline = MonotonicClock.now() + 15
            while !FileSystem.exists(marker) && MonotonicClock.now() < deadline { usleep(50_000) }
            #expect(FileSystem.exists(marker), "the job ran to its end after the client left")
        }
    }
}
