import QxubAgent
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// One ``AgentSession`` with a ``JobService``, in this process, on two real pipes, driven on the test's thread.
///
/// The test plays the client: it writes frames into the agent's input and reads the agent's output through a
/// client-side ``ProtocolEndpoint``, while the agent's ``EventLoop`` runs until a condition on what arrived holds.
final class InProcessAgent {
    let loop = EventLoop()
    let session: AgentSession
    let stateRoot: String
    private let toAgent: (read: Int32, write: Int32)
    private let fromAgent: (read: Int32, write: Int32)
    private var client: ProtocolEndpoint
    private var clientInputClosed = false
    /// Every event the agent sent, in order.
    private(set) var events: [ProtocolEndpoint.Event] = []
    private(set) var clientError: ProtocolError?

    init(stateRoot: String, pollInterval: Double = 5, clientHello: Hello = Hello(software: "qxub-agent-tests")) throws {
        ignoreBrokenPipes()
        self.stateRoot = stateRoot
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
        session.register(
            JobService(
                options: .init(store: JobStore(root: stateRoot), defaultKind: .local, pollInterval: pollInterval)
            )
        )
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
