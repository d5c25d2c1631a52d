import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The process runner's promises: no deadlock between stdin and output, one timeout that ends the whole
/// process group (TERM, then KILL), completion despite a grandchild that holds the pipes, exits as data,
/// capped output.
@Suite("ProcessRunner: feeding, draining, timeouts, teardown")
struct ProcessRunnerTests {
    /// Starts `configuration` on a fresh loop and runs it until the completion, within `bound` seconds.
    static func run(_ configuration: ProcessRunner.Configuration, bound: Double = 30) throws -> CollectedRun {
        let loop = EventLoop()
        var result: CollectedRun?
        try ProcessRunner.start(configuration, on: loop) {
            result = $0
            loop.stop()
        }
        let boundReached = try runLoop(loop, bound: bound)
        #expect(!boundReached, "the run did not complete within \(bound) s")
        return try #require(result)
    }

    static func shell(_ script: String, stdin: [UInt8]? = nil, timeout: Double = 60) -> ProcessRunner.Configuration {
        ProcessRunner.Configuration(["/bin/sh", "-c", script], stdin: stdin, timeout: timeout, outputLimit: 64 << 20)
    }

    static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 13) }
    }

    @Test("a child that writes a lot before it reads its stdin gets all of it, while both outputs drain")
    func largeInputAndOutputAtOnce() throws {
        let input = Self.pattern(8 << 20)
        // 2 MB to stderr first (far more than a pipe holds), then stdin echoed to stdout as it is read.
        let run = try Self.run(Self.shell("head -c 2000000 /dev/zero >&2; cat", stdin: input))
        #expect(run.exit == .exited(0))
        #expect(run.stdinAccepted == input.count)
        #expect(run.stdout.count == input.count)
        #expect(run.stdout == input)
        #expect(run.stderr == [UInt8](repeating: 0, count: 2_000_000))
        #expect(!run.timedOut)
    }

    @Test("AsyncCommand, the agent's entry, streams stdin too (an 8 MB upload through cat)")
    func asyncCommandStreamsStdin() throws {
        let loop = EventLoop()
        let input = Self.pattern(8 << 20)
        var result: CollectedRun?
        try AsyncCommand.run(["cat"], on: loop, stdinBytes: input, timeout: 60) {
            result = $0
            loop.stop()
        }
        #expect(try !runLoop(loop, bound: 30))
        let run = try #require(result)
        #expect(run.exit == .exited(0))
        #expect(run.stdout == input)
    }

    @Test("the blocking form (runCollectingOutput) feeds and drains the same way")
    func blockingForm() throws {
        let input = Self.pattern(3 << 20)
        let run = try runCollectingOutput(["/bin/sh", "-c", "head -c 1000000 /dev/zero >&2; cat"], stdinBytes: input)
        #expect(run.exit == .exited(0))
        #expect(run.stdout == input)
        #expect(run.stderr.count == 1_000_000)
    }

    @Test("a child that reads only part of its stdin ends normally; the rest is dropped and counted")
    func stdinClosedEarly() throws {
        let input = Self.pattern(4 << 20)
        let run = try Self.run(Self.shell("head -c 10", stdin: input))
        #expect(run.exit == .exited(0))
        #expect(run.stdout == Array(input[0..<10]))
        #expect(run.stdinAccepted >= 10)
        #expect(run.stdinAccepted < input.count)
    }

    @Test(
        "how the child ended is data",
        arguments: [
            ("exit 0", ProcessExit.exited(0)),
            ("exit 3", .exited(3)),
            ("exit 255", .exited(255)),
            ("kill -TERM $$", .signaled(SIGTERM)),
            ("kill -KILL $$", .signaled(SIGKILL)),
            ("kill -SEGV $$", .signaled(SIGSEGV)),
        ]
    )
    func exitAsData(script: String, expected: ProcessExit) throws {
        let run = try Self.run(Self.shell(script))
        #expect(run.exit == expected)
        #expect(!run.timedOut)
    }

    @Test("output past the limit is read and dropped: the child is never stalled by a full pipe")
    func outputLimit() throws {
        var configuration = Self.shell("head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2; echo done >&2")
        configuration.outputLimit = 1000
        let run = try Self.run(configuration)
        #expect(run.exit == .exited(0))
        #expect(run.stdout.count == 1000)
        #expect(run.stderr.count == 1000)
    }

    @Test("past the timeout a child that ignores SIGTERM gets SIGTERM, then SIGKILL after the wait")
    func timeoutTearsDownTermThenKill() throws {
        // The trap says that SIGTERM came and carries on; `sleep` in the same group dies of it each time.
        var configuration = Self.shell(
            "trap 'echo TERM >&2' TERM; echo started; while :; do sleep 1; done",
            timeout: 0.5
        )
        configuration.teardown = [.signal(SIGTERM), .wait(seconds: 0.5)]
        let run = try Self.run(configuration)
        #expect(run.exit == .signaled(SIGKILL))
        #expect(run.timedOut)
        #expect(run.stdoutText == "started\n")
        // The trap ran, so SIGTERM came first (the shell also reports the `sleep` that SIGTERM ended).
        #expect(run.stderrText.split(separator: "\n").contains("TERM"), "no SIGTERM before the SIGKILL")
        #expect(run.stderrText.hasSuffix("(killed after 0 s without finishing)\n"))
    }

    @Test("the timeout and the teardown's wait run on the loop's clock: 90 s and 30 s pass in no time")
    func timeoutOnTheLoopClock() throws {
        let loop = EventLoop(clock: ManualClock())
        let ready = "/tmp/qxub-runner-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        defer { unlink(ready) }
        var configuration = Self.shell(
            "trap '' TERM; echo started; : > \(ready); while :; do sleep 1; done",
            timeout: 90
        )
        configuration.teardown = [.signal(SIGTERM), .wait(seconds: 30)]
        var result: CollectedRun?
        try ProcessRunner.start(configuration, on: loop) { result = $0 }
        // The shell must ignore SIGTERM before it comes: wait (bounded) for the file that says so.
        for _ in 0..<400 where !FileSystem.exists(ready) { try loop.runOnce(waitingUpTo: 0.05) }
        try #require(FileSystem.exists(ready))
        try loop.advanceTime(by: 89)
        #expect(result == nil)
        try loop.advanceTime(by: 1)  // SIGTERM, ignored by all of the group
        try loop.advanceTime(by: 29)
        #expect(result == nil, "SIGKILL came before the teardown's wait was over")
        try loop.advanceTime(by: 1)  // SIGKILL
        // The exit and the pipes' end are real events: wait for them, with a bound (the clock stands still).
        for _ in 0..<400 where result == nil { try loop.runOnce(waitingUpTo: 0.05) }
        let run = try #require(result)
        #expect(run.exit == .signaled(SIGKILL))
        #expect(run.timedOut)
        #expect(run.stdoutText == "started\n")
    }

    @Test("the teardown reaches the whole process group: a grandchild holding the pipes dies with it")
    func teardownReachesTheGroup() throws {
        // Without the group signal the grandchild would hold stdout for 60 s and only the grace would end the
        // run; with a grace longer than the test's bound, completing at all shows the grandchild died.
        var configuration = Self.shell("sleep 60 & echo started; wait", timeout: 0.3)
        configuration.pipeGrace = 120
        let run = try Self.run(configuration, bound: 30)
        #expect(run.exit == .signaled(SIGTERM))
        #expect(run.timedOut)
        #expect(run.stdoutText == "started\n")
    }

    @Test("a grandchild that keeps the pipes open after the child exited cannot hold the run past the grace")
    func grandchildHoldingPipes() throws {
        // A site `qsub` wrapper can background something that inherits its stdout and stderr.
        var configuration = Self.shell("sleep 120 & echo submitted")
        configuration.pipeGrace = 0.2
        let loop = EventLoop()
        var result: CollectedRun?
        let runner = try ProcessRunner.start(configuration, on: loop) {
            result = $0
            loop.stop()
        }
        defer { kill(-runner.pid, SIGKILL) }
        #expect(try !runLoop(loop, bound: 20), "the run waited for the grandchild")
        let run = try #require(result)
        #expect(run.exit == .exited(0))
        #expect(run.stdoutText == "submitted\n")
        #expect(!run.timedOut)
    }

    @Test("a cancel applies the teardown at once; the exit it caused is the result")
    func cancel() throws {
        let loop = EventLoop()
        var result: CollectedRun?
        let runner = try ProcessRunner.start(Self.shell("echo started; exec sleep 60"), on: loop) {
            result = $0
            loop.stop()
        }
        runner.cancel()
        #expect(try !runLoop(loop))
        let run = try #require(result)
        #expect(run.exit == .signaled(SIGTERM))
        #expect(!run.timedOut)
    }

    @Test("a child in our own process group is signalled alone")
    func sharedProcessGroup() throws {
        var configuration = Self.shell("exec sleep 60", timeout: 0.2)
        configuration.ownProcessGroup = false
        configuration.teardown = [.signal(SIGKILL)]
        let run = try Self.run(configuration)
        #expect(run.exit == .signaled(SIGKILL))
        #expect(run.timedOut)
    }

    @Test("a command that cannot start throws; it never reaches the completion")
    func missingProgram() throws {
        let loop = EventLoop()
        var completed = false
        #expect(throws: SystemError("spawn", "/nonexistent/program", errno: ENOENT)) {
            try ProcessRunner.start(
                ProcessRunner.Configuration(["/nonexistent/program"], timeout: 5, outputLimit: 100),
                on: loop
            ) { _ in completed = true }
        }
        #expect(!completed)
    }
}
