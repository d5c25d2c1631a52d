import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Replies larger than one frame, and a client that never reads its replies (issue 9, item 5), against
/// the built binaries: the reply comes in several reports, the agent's memory stays bounded.
@Suite("Replies over 1 MiB, and an agent's outbox bound", .serialized)
struct LargeReplyTests {
    /// `count` numeric ids (as PBS users type them: `354` for `354.vm`), none of them a qxub job.
    static func ids(_ count: Int) -> [String] {
        (1...count).map { String(100_000_000 + $0) }
    }

    @Test("`qxub status` of 30,000 unknown ids: every one answered, in order, though the reply is over 1 MiB")
    func status30000() throws {
        let sandbox = try Sandbox("status-30000")
        let ids = Self.ids(30_000)
        let expected = ids.map { JobStatus(jobID: $0, state: JobState(phase: .unknown, detail: "not a qxub job here")) }
        // The test means something only while one report of them all is over the frame limit.
        #expect(StatusReport(requestID: 1, jobs: expected).wireBytes().count > ProtocolConstants.defaultMaxPayload)
        let run = try sandbox.qxub(["status"], stdin: ids.joined(separator: "\n") + "\n", timeout: 120)
        #expect(run.exit == .exited(0), "stderr: \(run.stderrText)")
        // Ids nobody knows are said on stderr (issue 13), every one, in order.
        #expect(run.stdoutText == "")
        let lines = run.stderrText.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == ids.count)
        #expect(
            Array(lines)
                == ids.map {
                    "qxub: \($0): unknown job: not in this machine's history, and the agent on local does not know it (a job submitted from elsewhere needs --platform)"[
                        ...
                    ]
                }
        )
    }

    @Test("`qxub status` time grows linearly with the ids (on stdin): 30,000 take less than 20× the time of 3,000")
    func statusTimeIsLinear() throws {
        let sandbox = try Sandbox("status-linear")
        // A store with an index, so each short id is looked up in it (as after any submission).
        try FileSystem.createDirectories(sandbox.directory + "/state/by-id")
        for index in 0..<50 {
            try FileSystem.symlink("../jobs/none", at: sandbox.directory + "/state/by-id/\(900 + index).server")
        }
        func seconds(_ count: Int) throws -> Double {
            let started = MonotonicClock.now()
            let input = Self.ids(count).joined(separator: "\n") + "\n"
            let run = try sandbox.qxub(["status", "--format", "exitcode"], stdin: input, timeout: 300)
            // Ids nobody knows will never finish: 1, as for failed ones (issue 13).
            #expect(run.exit == .exited(1), "stderr: \(run.stderrText)")
            return MonotonicClock.now() - started
        }
        _ = try seconds(10)  // warm the caches (the binaries, the history database)
        let small = try seconds(3_000)
        let large = try seconds(30_000)
        // Linear: about 10× (less, with the fixed start-up cost); quadratic: about 100×.
        #expect(large < 20 * small, "3,000 ids: \(small) s, 30,000 ids: \(large) s")
    }

    @Test("`qxub history --remote -n 10000` over a history.tsv of 1.5 MB: the 10,000 newest entries")
    func history10000() throws {
        let sandbox = try Sandbox("history-10000")
        try FileSystem.createDirectories(sandbox.directory + "/state")
        let count = 12_000
        var text = ""
        for index in 1...count {
            text +=
                "\(1_700_000_000 + index)\t\(5_000_000 + index).server\tlocal\tjob-name-\(index)-with-some-length"
                + "\t/nonexistent/state/jobs/20261125-103000-\(index)\tlogin-node-\(index)\n"
        }
        try FileSystem.writeAtomically(sandbox.directory + "/state/history.tsv", text)
        #expect(text.utf8.count > 1_400_000)
        let run = try sandbox.qxub(["history", "list", "--remote", "-n", "10000"], timeout: 120)
        #expect(run.exit == .exited(0), "stderr: \(run.stderrText)")
        let lines = run.stdoutText.split(separator: "\n")
        #expect(lines.count == 1 + 10_000)
        #expect(lines.first?.hasPrefix("SUBMITTED") == true, "a header: \(lines.first ?? "")")
        // Newest first (issue 13), after the header: entries 12,000 down to 2,001.
        #expect(
            lines.dropFirst().first?.hasSuffix("job-name-12000-with-some-length  (from login-node-12000)") == true,
            "\(lines.dropFirst().first ?? "")"
        )
        #expect(
            lines.last?.hasSuffix("job-name-2001-with-some-length  (from login-node-2001)") == true,
            "\(lines.last ?? "")"
        )
    }

    /// A field of /proc/PID/status in kB (`VmHWM`: the peak resident set).
    static func procStatus(_ pid: pid_t, _ field: String) -> Int? {
        let text = FileSystem.readText("/proc/\(pid)/status") ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    @Test(
        "a client that sends 48 MiB of pings and reads nothing: the agent stops reading, grows by less than 24 MiB, answers all later"
    )
    func outboxBound() throws {
        let agent = try AgentPipe(hello: Hello(software: "qxub-tests", capabilities: []))
        try agent.write(agent.endpoint.start())
        guard case .ready = try agent.next() else { throw TestFailure("the agent did not say hello") }
        try agent.send(.ping(Ping(nonce: 1)))
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 1)))
        // What the agent holds before the flood (a debug build maps more of its libraries than the static one).
        let baseline = try #require(Self.procStatus(agent.child.pid, "VmHWM"))
        var batch: [UInt8] = []
        var perBatch = 0
        while batch.count < 64 * 1024 {
            batch += try agent.endpoint.encode(.ping(Ping(nonce: 1_000_000 + UInt64(perBatch))))
            perBatch += 1
        }
        let batches = 48 * 1024 * 1024 / batch.count
        let input = agent.child.stdin!
        try FileDescriptor.setNonBlocking(input)
        var sentBatches = 0
        var offset = 0
        var stalled = false
        // Write until every ping is sent, or until the agent takes nothing for 2 s (it stopped reading).
        while sentBatches < batches {
            let written = try batch.withUnsafeBytes {
                try FileDescriptor.writeSome(input, UnsafeRawBufferPointer(rebasing: $0[offset...]))
            }
            offset += written
            if offset == batch.count {
                sentBatches += 1
                offset = 0
            } else if written == 0 {
                var poller = pollfd(fd: input, events: Int16(POLLOUT), revents: 0)
                if poll(&poller, 1, 2000) == 0 {
                    stalled = true
                    break
                }
            }
        }
        #expect(stalled, "the agent read all \(sentBatches) batches without its client reading a byte")
        let stalledPeak = Self.procStatus(agent.child.pid, "VmHWM") ?? .max
        // Now read: the agent goes on reading, and every ping sent gets its pong.
        var pongs = 0
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        let deadline = MonotonicClock.now() + 120
        while (offset > 0 || pongs < sentBatches * perBatch) && MonotonicClock.now() < deadline {
            if offset > 0 {
                // Finish the batch cut short, so the pings in it are whole.
                let written = try batch.withUnsafeBytes {
                    try FileDescriptor.writeSome(input, UnsafeRawBufferPointer(rebasing: $0[offset...]))
                }
                offset = offset + written == batch.count ? 0 : offset + written
                if offset == 0 { sentBatches += 1 }
            }
            var poller = pollfd(fd: agent.child.stdout!, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 1000)
            let outcome = try buffer.withUnsafeMutableBytes { try FileDescriptor.read(agent.child.stdout!, into: $0) }
            guard case .bytes(let count) = outcome else { continue }
            for event in try agent.endpoint.receive(buffer[0..<count]) {
                if case .message(_, .pong) = event { pongs += 1 }
            }
        }
        let total = sentBatches * perBatch
        #expect(pongs == total, "\(pongs) pongs for \(total) pings")
        try FileDescriptor.setNonBlocking(input, false)
        try agent.send(.ping(Ping(nonce: 7)))
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 7)))
        let peak = Self.procStatus(agent.child.pid, "VmHWM") ?? .max
        // The outbox holds back at 4 MiB (its buffer may double past that, old and new copies at once); 48 MiB of pongs do not fit.
        #expect(
            stalledPeak - baseline < 24 * 1024 && peak - baseline < 24 * 1024,
            "the agent's peak RSS: \(baseline) kB before, \(stalledPeak) kB while stalled, \(peak) kB in all"
        )
        let (exit, stderr) = try agent.finish()
        #expect(exit == .exited(0), "stderr: \(stderr)")
    }
}
