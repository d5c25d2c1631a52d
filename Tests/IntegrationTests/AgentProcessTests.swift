import QxubProtocol
import QxubSystem
import QxubTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A built `qxub-agent serve` on real pipes, driven step by step.
final class AgentPipe {
    let child: ChildProcess
    var endpoint: ProtocolEndpoint
    private var pending: [ProtocolEndpoint.Event] = []

    /// - Parameter environment: the agent's whole environment (nil: this process's).
    init(hello: Hello = Hello(software: "qxub-tests"), environment: [String]? = nil) throws {
        ignoreBrokenPipes()  // an agent that ended must fail the test, not kill the test runner
        child = try ChildProcess.spawn(
            [BuiltProducts.agent, "serve"],
            environment: environment,
            stdin: .pipe,
            stdout: .pipe,
            stderr: .pipe
        )
        endpoint = ProtocolEndpoint(hello: hello, preambleLimit: ProtocolConstants.preambleScanLimit)
    }

    func write(_ bytes: [UInt8]) throws {
        try FileDescriptor.writeAll(child.stdin!, bytes)
    }

    func send(_ message: Message, channel: UInt32 = 0) throws {
        try write(endpoint.encode(message, channel: channel))
    }

    /// The next event from the agent, waiting at most `timeout` seconds.
    func next(timeout: Double = 10) throws -> ProtocolEndpoint.Event? {
        let deadline = MonotonicClock.now() + timeout
        var buffer = [UInt8](repeating: 0, count: 65536)
        while pending.isEmpty {
            let remaining = deadline - MonotonicClock.now()
            guard remaining > 0 else { return nil }
            var poller = pollfd(fd: child.stdout!, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, Int32(remaining * 1000))
            let outcome = try buffer.withUnsafeMutableBytes { try FileDescriptor.read(child.stdout!, into: $0) }
            switch outcome {
            case .bytes(let count): pending += try endpoint.receive(buffer[0..<count])
            case .endOfFile: return nil
            case .wouldBlock: continue
            }
        }
        return pending.removeFirst()
    }

    func nextMessage(timeout: Double = 10) throws -> Message? {
        while let event = try next(timeout: timeout) {
            if case .message(_, let message) = event { return message }
        }
        return nil
    }

    /// Closes stdin and collects the exit status and stderr.
    func finish() throws -> (exit: ProcessExit, stderr: String) {
        FileDescriptor.close(child.stdin!)
        let stderr = try FileDescriptor.readAll(child.stderr!)
        let exit = child.wait()
        FileDescriptor.close(child.stdout!)
        FileDescriptor.close(child.stderr!)
        return (exit, String(decoding: stderr, as: UTF8.self))
    }
}

@Suite("qxub-agent serve over real pipes")
struct AgentProcessTests {
    @Test("hello, ping, an unknown request answered with an error, and the session goes on")
    func conversation() throws {
        let agent = try AgentPipe()
        try agent.write(agent.endpoint.start())
        let opening = try agent.next()
        let negotiation = try #require(
            { if case .ready(let negotiation) = opening { negotiation } else { nil } }() as Negotiation?,
            "the agent says hello: \(String(describing: opening))"
        )
        #expect(negotiation.peer.software.hasPrefix("qxub-agent "))
        #expect(negotiation.peer.platform.hasPrefix("linux-"))
        #expect(negotiation.compression)

        try agent.send(.ping(Ping(nonce: 77)))
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 77)))

        try agent.send(.unknown(FrameType(rawValue: 0x6F), requestID: 41))
        #expect(
            try agent.nextMessage()
                == .error(
                    ErrorMessage(
                        requestID: 41,
                        code: .unknownRequest,
                        message:
                            "this agent (\(QxubVersion.current)) does not know the request \(FrameType(rawValue: 0x6F))",
                        hint: "install the agent that matches your qxub: `qxub agent install --platform NAME`"
                    )
                )
        )

        // The session continues after the error, with a compressed frame this time.
        try agent.send(.ping(Ping(nonce: 78)))
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 78)))

        try agent.send(.goodbye(Goodbye(reason: "done")))
        let (exit, stderr) = try agent.finish()
        #expect(exit == .exited(0), "stderr: \(stderr)")
    }

    @Test("a malformed request is answered with its request id and the session goes on")
    func malformedRequest() throws {
        let agent = try AgentPipe(hello: Hello(software: "qxub-tests", capabilities: []))
        try agent.write(agent.endpoint.start())
        _ = try agent.next()
        // submit { 1: 9 } with no job spec, then a ping.
        var frame: [UInt8] = []
        FrameHeader(length: 2, type: .submit, flags: [], channel: 0).write(into: &frame)
        try agent.write(frame + [0x08, 0x09])
        #expect(
            try agent.nextMessage()
                == .error(
                    ErrorMessage(
                        requestID: 9,
                        code: .malformedRequest,
                        message: ProtocolError.malformedPayload(type: .submit, reason: "no job spec").description,
                        hint: "this is a bug in the client: please report it"
                    )
                )
        )
        try agent.send(.ping(Ping(nonce: 5)))
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 5)))
        let (exit, stderr) = try agent.finish()
        #expect(exit == .exited(0), "stderr: \(stderr)")
    }

    @Test("a request just before a fatal frame is still answered")
    func requestBeforeGarbage() throws {
        let agent = try AgentPipe(hello: Hello(software: "qxub-tests", capabilities: []))
        try agent.write(agent.endpoint.start())
        _ = try agent.next()
        var bytes = try agent.endpoint.encode(.ping(Ping(nonce: 8)))
        FrameHeader(length: .max, type: .submit, flags: [], channel: 0).write(into: &bytes)
        try agent.write(bytes)
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 8)))
        let (exit, stderr) = try agent.finish()
        #expect(exit == .exited(2))
        #expect(stderr.contains("declared 4294967295 bytes"))
    }

    @Test("an error frame from the client is not answered (no ping-pong of errors)")
    func errorsAreNotAnswered() throws {
        let agent = try AgentPipe(hello: Hello(software: "qxub-tests", capabilities: []))
        try agent.write(agent.endpoint.start())
        _ = try agent.next()
        try agent.send(.error(ErrorMessage(requestID: 3, code: .internalError, message: "client trouble")))
        try agent.send(.ping(Ping(nonce: 6)))
        #expect(try agent.nextMessage() == .pong(Pong(nonce: 6)))
    }

    @Test("closing stdin ends the agent cleanly: it never outlives its client")
    func exitsWhenStdinCloses() throws {
        let agent = try AgentPipe()
        try agent.write(agent.endpoint.start())
        _ = try agent.next()
        let (exit, stderr) = try agent.finish()
        #expect(exit == .exited(0), "stderr: \(stderr)")
    }

    @Test(
        "an agent whose client is gone before its hello exits at once and never spins",
        arguments: ["/dev/null", "a hung-up pipe"]
    )
    func exitsWhenClientIsGoneBeforeHello(stdin: String) throws {
        // `qxub-agent serve < STDIN | true`: stdout is a pipe whose reader has gone, stdin is at its end.
        let output = try FileDescriptor.pipe()
        FileDescriptor.close(output.read)
        var input: ChildProcess.Stdio = .null
        var inputEnds: (read: Int32, write: Int32)?
        if stdin != "/dev/null" {
            let ends = try FileDescriptor.pipe()
            FileDescriptor.close(ends.write)
            inputEnds = ends
            input = .fileDescriptor(ends.read)
        }
        let child = try ChildProcess.spawn(
            [BuiltProducts.agent, "serve"],
            stdin: input,
            stdout: .fileDescriptor(output.write),
            stderr: .pipe
        )
        FileDescriptor.close(output.write)
        if let inputEnds { FileDescriptor.close(inputEnds.read) }
        let ended = ProcessUsage.wait(for: child.pid, bound: 10)
        let stderr = String(decoding: try FileDescriptor.readAll(child.stderr!), as: UTF8.self)
        FileDescriptor.close(child.stderr!)
        #expect(ended.exit == .exited(0), "stdin \(stdin): stderr: \(stderr)")
        #expect(ended.cpuSeconds < 0.5, "stdin \(stdin): the agent used \(ended.cpuSeconds) s of CPU")
        #expect(stderr.isEmpty)
    }

    @Test("--version prints the version, protocol range and platform, under env -i")
    func version() throws {
        let run = try runCollectingOutput(["/usr/bin/env", "-i", BuiltProducts.agent, "--version"], timeout: 10)
        #expect(run.exit == .exited(0))
        #expect(run.stdoutText.hasPrefix("qxub-agent \(QxubVersion.current) (protocol 1-1, linux-"))
    }

    @Test("an unknown command is a usage error")
    func usage() throws {
        let run = try runCollectingOutput([BuiltProducts.agent, "frobnicate"], timeout: 10)
        #expect(run.exit == .exited(64))
        #expect(run.stderrText.contains("unknown command 'frobnicate'"))
    }

    static func opening(compress: Bool = true) -> [UInt8] {
        var client = ProtocolEndpoint(
            hello: Hello(software: "qxub-tests", capabilities: compress ? ["deflate"] : []),
            preambleLimit: 0
        )
        return client.start()
    }

    static var hostileInputs: [(String, [UInt8], String)] {
        var generator = SeededGenerator(seed: 3)
        let random = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let bomb: [UInt8] = {
            let deflater = try! Deflater()
            let payload = try! deflater.compress(Array(repeating: 0, count: 32 << 20))
            var bytes: [UInt8] = []
            FrameHeader(length: UInt32(payload.count), type: .output, flags: .compressed, channel: 1).write(
                into: &bytes
            )
            return bytes + payload
        }()
        var hugeLength: [UInt8] = []
        FrameHeader(length: .max, type: .submit, flags: [], channel: 0).write(into: &hugeLength)
        var truncated: [UInt8] = []
        FrameHeader(length: 500, type: .submit, flags: [], channel: 0).write(into: &truncated)
        truncated += Array(repeating: 1, count: 100)
        return [
            ("random bytes", random, "magic"),
            ("an HTTP request", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), "magic"),
            ("a huge declared length", opening() + hugeLength, "declared 4294967295 bytes"),
            ("a decompression bomb", opening() + bomb, "decompression bomb"),
            ("a frame cut short", opening() + truncated, "ended in the middle of a frame (400 bytes missing)"),
            ("random bytes after the hello", opening() + random, "session ended"),
            ("nothing at all", [], "ended before the peer said hello"),
        ]
    }

    @Test(
        "hostile input ends the session with a clear message and a non-zero exit, never a crash or a hang",
        arguments: hostileInputs
    )
    func hostileInput(name: String, input: [UInt8], expected: String) throws {
        let run = try runCollectingOutput([BuiltProducts.agent, "serve"], stdinBytes: input, timeout: 20)
        #expect(run.exit == .exited(2), "\(name): \(run.exit), stderr: \(run.stderrText)")
        #expect(run.stderrText.contains(expected), "\(name): stderr was \(run.stderrText)")
        #expect(run.stderrText.hasPrefix("qxub-agent: "))
    }
}

/// A child's end and the CPU time it used (with its own reaped children), from `wait4`.
enum ProcessUsage {
    /// Waits for `pid` at most `bound` seconds; past it, reads the CPU time spent so far from `/proc`, kills
    /// the process and reports it as `nil` exit.
    static func wait(for pid: pid_t, bound: Double) -> (exit: ProcessExit?, cpuSeconds: Double) {
        let deadline = MonotonicClock.now() + bound
        var pause: UInt32 = 1_000
        while MonotonicClock.now() < deadline {
            var status: Int32 = 0
            var usage = rusage()
            let result = wait4(pid, &status, WNOHANG, &usage)
            if result == pid {
                return (ProcessExit(waitStatus: status), seconds(usage.ru_utime) + seconds(usage.ru_stime))
            }
            usleep(pause)
            pause = min(pause * 2, 50_000)
        }
        let spent = cpuSecondsSoFar(pid)
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        return (nil, spent)
    }

    static func seconds(_ time: timeval) -> Double {
        Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000
    }

    /// utime + stime of a running process (fields 14 and 15 of `/proc/PID/stat`, in clock ticks).
    static func cpuSecondsSoFar(_ pid: pid_t) -> Double {
        guard let stat = FileSystem.readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else {
            return -1
        }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so utime (field 14) is fields[11].
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return -1 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
