import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Signals reach the loop as data: through ``SignalPipe`` for the session's signals, and as a child's exit
/// through ``ChildWatcher`` (SIGCHLD), with no polling.
@Suite("Signals: the self-pipe and the child watcher", .serialized)
struct SignalTests {
    /// Runs `loop` until the signal pipe has delivered `wanted`; returns every number read.
    static func readSignals(on loop: EventLoop, fd: Int32, until wanted: Int32) throws -> [Int32] {
        var seen: [Int32] = []
        loop.setReadable(fd) {
            seen += SignalPipe.drain()
            if seen.contains(wanted) { loop.stop() }
        }
        defer { loop.remove(fd) }
        #expect(try !runLoop(loop), "signal \(wanted) never reached the loop")
        return seen
    }

    @Test("SIGINT sent to the process arrives on the loop as its number")
    func interrupt() throws {
        let loop = EventLoop()
        let fd = try SignalPipe.install([SIGINT])
        defer { SignalPipe.restoreDefault([SIGINT]) }
        // To the process, not this thread: the test's worker thread blocks SIGINT, as dispatch's threads do.
        kill(getpid(), SIGINT)
        #expect(try Self.readSignals(on: loop, fd: fd, until: SIGINT).contains(SIGINT))
    }

    @Test("SIGCHLD routed to the pipe arrives when a child exits")
    func childSignal() throws {
        let loop = EventLoop()
        let fd = try SignalPipe.install([SIGCHLD])
        defer { SignalPipe.restoreDefault([SIGCHLD]) }
        let child = try ChildProcess.spawn(["true"], stdin: .null, stdout: .null, stderr: .null)
        #expect(try Self.readSignals(on: loop, fd: fd, until: SIGCHLD).contains(SIGCHLD))
        #expect(child.wait() == .exited(0))
    }

    @Test("SIGCHLD taken off the pipe no longer reaches it, and still reaches the child watchers")
    func unroutedChildSignal() throws {
        let loop = EventLoop()
        let watcher = try ChildWatcher.of(loop)
        _ = try SignalPipe.install([SIGCHLD])
        SignalPipe.restoreDefault([SIGCHLD])
        _ = SignalPipe.drain()
        let child = try ChildProcess.spawn(["/bin/sh", "-c", "exit 4"], stdin: .null, stdout: .null, stderr: .null)
        var exits: [ProcessExit] = []
        watcher.watchExit(child.pid) {
            exits.append($0)
            loop.stop()
        }
        #expect(try !runLoop(loop))
        #expect(exits == [.exited(4)])
        #expect(SignalPipe.drain() == [])
    }

    @Test("the child watcher calls the handler with the exit and reaps the child")
    func watchExit() throws {
        let loop = EventLoop()
        let watcher = try ChildWatcher.of(loop)
        let child = try ChildProcess.spawn(["/bin/sh", "-c", "exit 7"], stdin: .null, stdout: .null, stderr: .null)
        var exits: [ProcessExit] = []
        watcher.watchExit(child.pid) {
            exits.append($0)
            loop.stop()
        }
        #expect(try !runLoop(loop))
        #expect(exits == [.exited(7)])
        #expect(child.poll() == nil, "the watcher reaps the child")
    }

    @Test("one loop's watcher is shared, and several children are told apart")
    func severalChildren() throws {
        let loop = EventLoop()
        #expect(try ChildWatcher.of(loop) === ChildWatcher.of(loop))
        var exits: [pid_t: ProcessExit] = [:]
        var expected: [pid_t: ProcessExit] = [:]
        for code in Int32(0)..<5 {
            let child = try ChildProcess.spawn(["/bin/sh", "-c", "exit \(code)"], stdin: .null, stdout: .null)
            expected[child.pid] = .exited(code)
            try ChildWatcher.of(loop).watchExit(child.pid) {
                exits[child.pid] = $0
                if exits.count == expected.count { loop.stop() }
            }
        }
        #expect(try !runLoop(loop))
        #expect(exits == expected)
    }

    @Test("waiting for an exit returns it when it comes, or nothing when the bound passes first")
    func waitForExit() throws {
        let loop = EventLoop()
        let watcher = try ChildWatcher.of(loop)
        let sleeper = try ChildProcess.spawn(["sleep", "60"], stdin: .null)
        #expect(watcher.waitForExit(sleeper.pid, timeout: 0.05) == nil)
        sleeper.signal(SIGTERM)
        #expect(watcher.waitForExit(sleeper.pid, timeout: 20) == .signaled(SIGTERM))
    }

    @Test("children on loops of different threads each reach their own loop")
    func loopsOnThreads() async throws {
        let codes = try await withThrowingTaskGroup(of: ProcessExit.self) { group in
            for code in Int32(0)..<4 {
                group.addTask {
                    try ProcessRunner.run(
                        ProcessRunner.Configuration(["/bin/sh", "-c", "exit \(code)"], timeout: 20, outputLimit: 10)
                    ).exit
                }
            }
            return try await group.reduce(into: Set<ProcessExit>()) { $0.insert($1) }
        }
        #expect(codes == [.exited(0), .exited(1), .exited(2), .exited(3)])
    }
}
