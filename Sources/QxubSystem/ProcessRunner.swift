#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs one command to completion on an ``EventLoop``, never blocking it: stdin is fed while stdout and
/// stderr are drained (so a child that writes much before reading all its input cannot deadlock with us),
/// output is capped, one timeout covers the whole run and ends it with a ``Teardown``, the exit is learnt
/// from SIGCHLD (``ChildWatcher``), and a grandchild that keeps the pipes open cannot hold the run past
/// ``Configuration/pipeGrace``. How the process ended is data (``CollectedRun/exit``), never a thrown error.
package final class ProcessRunner {
    /// What to run and the bounds of the run.
    package struct Configuration: Sendable {
        package var arguments: [String]
        /// `nil` inherits ours.
        package var environment: [String]?
        /// Fed to the child's stdin, then closed; `nil` connects stdin to /dev/null.
        package var stdin: [UInt8]?
        /// Seconds for the whole run, from start to exit; then the teardown begins.
        package var timeout: Double
        /// Bytes kept of stdout and of stderr each; the rest is read and dropped.
        package var outputLimit: Int
        /// What ends a child past its timeout or cancelled (SIGKILL always comes last).
        package var teardown: [TeardownStep] = TeardownStep.gentle
        /// The child leads a process group of its own, and the teardown signals the whole group (a wrapper
        /// script's children too). Without it the child shares our group (a terminal's Ctrl-C reaches it
        /// with us) and the teardown signals the child alone.
        package var ownProcessGroup = true
        /// Seconds to go on reading after the child exited while something it left behind (a backgrounded
        /// grandchild) still holds the output pipes; then our ends are closed and the run completes.
        package var pipeGrace: Double = 1

        package init(
            _ arguments: [String],
            environment: [String]? = nil,
            stdin: [UInt8]? = nil,
            timeout: Double,
            outputLimit: Int
        ) {
            self.arguments = arguments
            self.environment = environment
            self.stdin = stdin
            self.timeout = timeout
            self.outputLimit = outputLimit
        }
    }

    private let loop: EventLoop
    private let configuration: Configuration
    private let child: ChildProcess
    private let watcher: ChildWatcher
    private var completion: ((CollectedRun) -> Void)?
    private var input: OutboxWriter?
    private var openOutputs: Set<Int32> = []
    private var stdout: [UInt8] = []
    private var stderr: [UInt8] = []
    private var exit: ProcessExit?
    private var inputClosed = false
    private var timedOut = false
    private var teardown: Teardown?
    private var timers: [Int] = []
    private var buffer = [UInt8](repeating: 0, count: 65536)

    /// The child's pid (the process group's id too, with ``Configuration/ownProcessGroup``).
    package var pid: pid_t { child.pid }

    /// Starts the command; `completion` runs on the loop once the child has exited and its output is read.
    @discardableResult
    package static func start(
        _ configuration: Configuration,
        on loop: EventLoop,
        completion: @escaping (CollectedRun) -> Void
    ) throws -> ProcessRunner {
        let watcher = try ChildWatcher.of(loop)
        if configuration.stdin != nil {
            // A child that stops reading early makes our write fail with EPIPE instead of killing us.
            ignoreBrokenPipes()
        }
        let child = try ChildProcess.spawn(
            configuration.arguments,
            environment: configuration.environment,
            stdin: configuration.stdin == nil ? .null : .pipe,
            stdout: .pipe,
            stderr: .pipe,
            newProcessGroup: configuration.ownProcessGroup
        )
        let runner = ProcessRunner(
            loop: loop,
            configuration: configuration,
            child: child,
            watcher: watcher,
            completion: completion
        )
        runner.begin()
        return runner
    }

    /// Runs the command to completion on a loop of its own, blocking the caller.
    package static func run(_ configuration: Configuration) throws -> CollectedRun {
        let loop = EventLoop()
        var result: CollectedRun?
        try start(configuration, on: loop) { result = $0 }
        try loop.run()
        guard let result else { throw SystemError("run", configuration.arguments.first ?? "", errno: EIO) }
        return result
    }

    private init(
        loop: EventLoop,
        configuration: Configuration,
        child: ChildProcess,
        watcher: ChildWatcher,
        completion: @escaping (CollectedRun) -> Void
    ) {
        self.loop = loop
        self.configuration = configuration
        self.child = child
        self.watcher = watcher
        self.completion = completion
    }

    /// Ends the run now with the teardown (a cancel); the completion still comes, with the exit it caused.
    package func cancel() {
        beginTeardown()
    }

    // The handlers registered here hold the runner until it completes.
    private func begin() {
        for fd in [child.stdout!, child.stderr!] {
            openOutputs.insert(fd)
            try? FileDescriptor.setNonBlocking(fd)
            loop.setReadable(fd) { [self] in drain(fd) }
        }
        if let fd = child.stdin {
            try? FileDescriptor.setNonBlocking(fd)
            let writer = OutboxWriter(loop: loop, fd: fd)
            input = writer
            // Everything written, or the child closed its stdin (or exited): either way, feeding is over.
            writer.onDrained = { [unowned self] in closeInput() }
            writer.onError = { [unowned self] _ in closeInput() }
            writer.enqueue(configuration.stdin ?? [])
        }
        watcher.watchExit(child.pid) { [self] exit in exited(exit) }
        schedule(after: configuration.timeout) { [self] in
            timedOut = true
            if exit == nil { beginTeardown() } else { complete() }
        }
    }

    private func drain(_ fd: Int32) {
        while openOutputs.contains(fd) {
            let outcome = try? buffer.withUnsafeMutableBytes { try FileDescriptor.read(fd, into: $0) }
            switch outcome {
            case .bytes(let count):
                if fd == child.stdout {
                    keep(count, in: &stdout)
                } else {
                    keep(count, in: &stderr)
                }
            case .wouldBlock:
                return
            case .endOfFile, nil:
                closeOutput(fd)
                completeIfDone()
            }
        }
    }

    /// Keeps what fits under the output limit of the first `count` bytes of the buffer.
    private func keep(_ count: Int, in output: inout [UInt8]) {
        let room = max(0, configuration.outputLimit - output.count)
        output.append(contentsOf: buffer[0..<min(count, room)])
    }

    private func exited(_ exit: ProcessExit) {
        self.exit = exit
        // The child is gone: no later teardown step may signal its pid, which could be reused.
        teardown = nil
        cancelTimers()
        closeInput()
        if !openOutputs.isEmpty {
            schedule(after: configuration.pipeGrace) { [self] in complete() }
        }
        completeIfDone()
    }

    private func beginTeardown() {
        guard exit == nil, teardown == nil else { return }
        teardown = Teardown(configuration.teardown)
        nextTeardownStep()
    }

    private func nextTeardownStep() {
        while exit == nil, let step = teardown?.next() {
            switch step {
            case .signal(let signal):
                kill(configuration.ownProcessGroup ? -child.pid : child.pid, signal)
            case .wait(let seconds):
                return schedule(after: seconds) { [self] in nextTeardownStep() }
            }
        }
    }

    private func completeIfDone() {
        if exit != nil && openOutputs.isEmpty { complete() }
    }

    /// Hands over the result; called once the child has exited (its pipes drained, or their grace over).
    private func complete() {
        guard let completion, let exit else { return }
        self.completion = nil
        cancelTimers()
        closeInput()
        for fd in openOutputs { closeOutput(fd) }
        if timedOut {
            stderr += Array("\n(killed after \(Int(configuration.timeout)) s without finishing)\n".utf8)
        }
        completion(
            CollectedRun(
                exit: exit,
                stdout: stdout,
                stderr: stderr,
                stdinAccepted: input?.bytesWritten ?? 0,
                timedOut: timedOut
            )
        )
    }

    private func closeOutput(_ fd: Int32) {
        guard openOutputs.remove(fd) != nil else { return }
        loop.remove(fd)
        FileDescriptor.close(fd)
    }

    private func closeInput() {
        guard let fd = child.stdin, let input, !inputClosed else { return }
        inputClosed = true
        input.stop()
        loop.remove(fd)
        FileDescriptor.close(fd)
    }

    private func schedule(after seconds: Double, _ handler: @escaping () -> Void) {
        timers.append(loop.schedule(after: seconds, handler))
    }

    private func cancelTimers() {
        for timer in timers { loop.cancelTimer(timer) }
        timers = []
    }
}
