#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a command on an ``EventLoop`` without blocking it: both output pipes are drained as data arrives
/// (so neither can fill and stall the child), output is capped, and the child is killed past its timeout.
public final class AsyncCommand {
    private let loop: EventLoop
    private let child: ChildProcess
    private var stdout: [UInt8] = []
    private var stderr: [UInt8] = []
    private var openPipes = 2
    private var timer: Int?
    private var timedOut = false
    private let outputLimit: Int
    private let timeout: Double
    private let completion: (CollectedRun) -> Void
    private var buffer = [UInt8](repeating: 0, count: 65536)

    /// Starts `arguments` and calls `completion` on the loop once it has exited and its pipes are drained.
    @discardableResult
    public static func run(
        _ arguments: [String],
        on loop: EventLoop,
        environment: [String]? = nil,
        stdinBytes: [UInt8]? = nil,
        timeout: Double = 120,
        outputLimit: Int = 16 << 20,
        completion: @escaping (CollectedRun) -> Void
    ) throws -> AsyncCommand {
        let child = try ChildProcess.spawn(
            arguments,
            environment: environment,
            stdin: stdinBytes == nil ? .null : .pipe,
            stdout: .pipe,
            stderr: .pipe
        )
        if let input = child.stdin {
            // Small inputs only (a script path, a few ids): written at once, then closed.
            try? FileDescriptor.writeAll(input, stdinBytes ?? [])
            FileDescriptor.close(input)
        }
        let command = AsyncCommand(
            loop: loop,
            child: child,
            timeout: timeout,
            outputLimit: outputLimit,
            completion: completion
        )
        command.start()
        return command
    }

    private init(
        loop: EventLoop,
        child: ChildProcess,
        timeout: Double,
        outputLimit: Int,
        completion: @escaping (CollectedRun) -> Void
    ) {
        self.loop = loop
        self.child = child
        self.timeout = timeout
        self.outputLimit = outputLimit
        self.completion = completion
    }

    private func start() {
        for fd in [child.stdout!, child.stderr!] {
            try? FileDescriptor.setNonBlocking(fd)
            loop.setReadable(fd) { [self] in drain(fd) }
        }
        timer = loop.schedule(after: timeout) { [self] in
            timedOut = true
            child.signal(SIGKILL)
        }
    }

    private func drain(_ fd: Int32) {
        while true {
            let outcome = try? buffer.withUnsafeMutableBytes { try FileDescriptor.read(fd, into: $0) }
            switch outcome {
            case .bytes(let count):
                if fd == child.stdout {
                    if stdout.count < outputLimit { stdout.append(contentsOf: buffer[0..<count]) }
                } else if stderr.count < outputLimit {
                    stderr.append(contentsOf: buffer[0..<count])
                }
            case .wouldBlock:
                return
            case .endOfFile, nil:
                loop.remove(fd)
                FileDescriptor.close(fd)
                openPipes -= 1
                if openPipes == 0 { finish() }
                return
            }
        }
    }

    private func finish() {
        if let timer { loop.cancelTimer(timer) }
        // Both pipes are closed: the child has exited or is about to; this wait is short.
        let exit = child.wait()
        if timedOut { stderr += Array("\n(killed after \(Int(timeout)) s without finishing)\n".utf8) }
        completion(CollectedRun(exit: exit, stdout: stdout, stderr: stderr))
    }
}
