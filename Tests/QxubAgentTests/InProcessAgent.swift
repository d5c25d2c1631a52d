import QxubAgent
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// One ``AgentSession`` with a ``JobHarness`` and its ``JobService``, in this process, on two real pipes,
/// driven on the test's thread.
///
/// The test plays the client: it writes frames into the agent's input and reads the agent's output through a
/// client-side ``ProtocolEndpoint``, while the agent's ``EventLoop`` runs until a condition on what arrived holds.
final class InProcessAgent {
    let loop: EventLoop
    let session: AgentSession
    let service: JobService
    let log: AgentLog
    let stateRoot: String
    private let toAgent: (read: Int32, write: Int32)
    private let fromAgent: (read: Int32, write: Int32)
    private var client: ProtocolEndpoint
    private var clientInputClosed = false
    /// Every event the agent sent, in order.
    private(set) var events: [ProtocolEndpoint.Event] = []
    private(set) var clientError: ProtocolError?

    /// - Parameters:
    ///   - configure: changes to the agent's options (a local backend on `stateRoot`, polling every 5 s).
    ///   - clock: the loop's clock; a ``ManualClock`` lets the test move time.
    ///   - signal: stands in for `kill(2)` towards local jobs.
    init(
        stateRoot: String,
        clientHello: Hello = Hello(software: "qxub-agent-tests"),
        clock: LoopClock = SystemLoopClock(),
        commands: CommandRunner? = nil,
        signal: @escaping LocalJobs.Signaller = LocalJobs.systemSignal,
        configure: (inout AgentOptions) -> Void = { _ in }
    ) throws {
        ignoreBrokenPipes()
        self.stateRoot = stateRoot
        loop = EventLoop(clock: clock)
        toAgent = try FileDescriptor.pipe()
        fromAgent = try FileDescriptor.pipe()
        try FileDescriptor.setNonBlocking(fromAgent.read)
        client = ProtocolEndpoint(hello: clientHello, preambleLimit: 0)
        session = AgentSession(
            loop: loop,
            input: toAgent.read,
            output: fromAgent.write,
            hello: AgentServer.hello(scheduler: "local")
        )
        var options = AgentOptions(
            store: JobStore(root: stateRoot),
            defaultKind: .local,
            home: stateRoot,
            jobEnvironment: Environment.all()
        )
        configure(&options)
        log = AgentLog(path: stateRoot + "/agent.log")
        service = JobService(options: options, loop: loop, log: log, commands: commands, signal: signal)
        session.register(JobHarness(service: service, log: log))
        try session.start()
    }

    deinit {
        for fd in [toAgent.read, fromAgent.read, fromAgent.write] { FileDescriptor.close(fd) }
        if !clientInputClosed { FileDescriptor.close(toAgent.write) }
    }

    /// The client's magic and hello.
    func sayHello() throws {
        try write(client.start())
    }

    func send(_ message: Message, channel: UInt32 = 0) throws {
        try write(client.encode(message, channel: channel))
    }

    /// Raw bytes, as a broken or hostile client would send them.
    func write(_ bytes: [UInt8]) throws {
        try FileDescriptor.writeAll(toAgent.write, bytes)
    }

    /// End of file on the agent's input: the client went away.
    func closeClientSide() {
        FileDescriptor.close(toAgent.write)
        clientInputClosed = true
    }

    /// Messages the agent sent on `channel` (all channels when nil).
    func messages(channel: UInt32? = nil) -> [Message] {
        events.compactMap { event in
            guard case .message(let on, let message) = event, channel == nil || on == channel else { return nil }
            return message
        }
    }

    /// Runs the agent's loop until `condition` holds for what arrived, the session ends, or `timeout` passes.
    /// Returns whether the condition held.
    @discardableResult
    func run(timeout: Double = 20, until condition: @escaping (InProcessAgent) -> Bool = { _ in false }) throws -> Bool
    {
        var satisfied = false
        let deadline = MonotonicClock.now() + timeout
        func check() {
            drain()
            if condition(self) {
                satisfied = true
                loop.stop()
            } else if MonotonicClock.now() > deadline {
                loop.stop()
            } else {
                loop.schedule(after: 0.01, check)
            }
        }
        loop.schedule(after: 0, check)
        try loop.run()
        drain()
        return satisfied || condition(self)
    }

    /// For a ``ManualClock``: handles what is ready (the client's frames), waiting up to `seconds` of real
    /// time for it, without moving the clock.
    func turn(waitingUpTo seconds: Double = 0.5) throws {
        try loop.runOnce(waitingUpTo: seconds)
        drain()
    }

    /// For a ``ManualClock``: moves it `seconds` forward, running every timer due on the way.
    func advance(by seconds: Double) throws {
        try loop.advanceTime(by: seconds)
        drain()
    }

    /// The replies on channel 0 to request `requestID`.
    func replies(to requestID: UInt32) -> [Message] {
        messages(channel: 0).filter { message in
            switch message {
            case .submitted(let reply): reply.requestID == requestID
            case .cancelResult(let reply): reply.requestID == requestID
            case .statusReport(let reply): reply.requestID == requestID
            case .historyReport(let reply): reply.requestID == requestID
            case .error(let reply): reply.requestID == requestID
            default: false
            }
        }
    }

    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while clientError == nil {
            guard
                let outcome = try? buffer.withUnsafeMutableBytes({ try FileDescriptor.read(fromAgent.read, into: $0) }),
                case .bytes(let count) = outcome
            else { return }
            do {
                try client.receive(buffer[0..<count]) { events.append($0) }
            } catch {
                clientError = error
            }
        }
    }
}

/// A fresh private directory under /tmp.
func temporaryDirectory() throws -> String {
    var template = Array("/tmp/qxub-agent-tests-XXXXXX".utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
        throw SystemError("mkdtemp", "/tmp")
    }
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
