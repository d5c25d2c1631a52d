import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// One agent session driven over its pipes, as qxub drives it: hello, then a watch per job; its output is
/// read (and decoded) as it comes, so the agent never waits for the reader.
final class FollowedAgent {
    let label: String
    let child: ChildProcess
    private var endpoint = ProtocolEndpoint(hello: AgentConnection.hello(heartbeat: false), preambleLimit: 0)
    private(set) var running = 0
    private(set) var errors: [String] = []

    init(label: String, environment: [String], loop: EventLoop) throws {
        self.label = label
        child = try ChildProcess.spawn(
            [Binaries.agent, "serve"],
            environment: environment,
            stdin: .pipe,
            stdout: .pipe,
            stderr: .null
        )
        let output = child.stdout!
        try FileDescriptor.setNonBlocking(output)
        loop.setReadable(output) { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while case .bytes(let count)? = try? buffer.withUnsafeMutableBytes({
                try FileDescriptor.read(output, into: $0)
            }) {
                try? endpoint.receive(buffer[0..<count]) { event in
                    guard case .message(_, let message) = event else { return }
                    switch message {
                    case .jobState(let state) where state.phase == .running: running += 1
                    case .error(let error): errors.append(error.message)
                    default: break
                    }
                }
            }
        }
        try FileDescriptor.writeAll(child.stdin!, endpoint.start())
    }

    func watch(_ jobIDs: [String]) throws {
        var bytes: [UInt8] = []
        for (index, jobID) in jobIDs.enumerated() {
            bytes += try endpoint.encode(
                .watch(Watch(requestID: UInt32(index + 1), jobID: jobID)),
                channel: UInt32(index + 1)
            )
        }
        try FileDescriptor.writeAll(child.stdin!, bytes)
    }

    /// Clock ticks of CPU (user + system) the agent used so far, from /proc/PID/stat (fields 14 and 15).
    var cpuTicks: Int {
        guard let text = FileSystem.readText("/proc/\(child.pid)/stat"),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14, stime 15.
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    /// Resident memory in kB (VmRSS from /proc/PID/status).
    var residentKilobytes: Int {
        let status = FileSystem.readText("/proc/\(child.pid)/status") ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    func stop() {
        FileDescriptor.close(child.stdin!)
        _ = child.wait()
    }
}

/// Agent CPU while following many sleeping jobs: agents with inotify and without (as on Lustre/NFS) follow
/// the same jobs, next to an idle agent session (the floor), all measured over the same windows.
func followBenchmark(jobs count: Int, backend: String, settle: Double, window: Double, rounds: Int) throws {
    let state = "/tmp/qxub-bench-follow-\(getpid())"
    var environment = Environment.all().filter { !$0.hasPrefix("QXUB_") }
    environment += ["QXUB_STATE_DIR=" + state, "QXUB_AGENT=" + Binaries.agent, "QXUB_SCHEDULER=" + backend]
    print("qxub-bench follow: \(count) sleeping jobs (\(backend)), agent \(Binaries.agent)")
    print("")

    // The jobs: `qxub batch --terse` submits them over one session and prints their ids.
    let submit = try ChildProcess.spawn(
        [Binaries.qxub, "batch", "--terse", "--backend", backend, "-"],
        environment: environment,
        stdin: .pipe,
        stdout: .pipe,
        stderr: .inherit
    )
    try FileDescriptor.writeAll(submit.stdin!, Array(String(repeating: "sleep 3600\n", count: count).utf8))
    FileDescriptor.close(submit.stdin!)
    var printed: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while case .bytes(let read)? = try? buffer.withUnsafeMutableBytes({
        try FileDescriptor.read(submit.stdout!, into: $0)
    }) {
        printed += buffer[0..<read]
    }
    _ = submit.wait()
    let jobIDs = String(decoding: printed, as: UTF8.self).split(separator: "\n").map(String.init)
    guard jobIDs.count == count else {
        print("qxub batch gave \(jobIDs.count) job ids, not \(count)")
        return
    }

    let loop = EventLoop()
    let floor = try FollowedAgent(label: "floor: an idle agent session (no job)", environment: environment, loop: loop)
    let inotify = try FollowedAgent(label: "\(count) jobs, inotify", environment: environment, loop: loop)
    let polling = try FollowedAgent(
        label: "\(count) jobs, no inotify (as on Lustre/NFS)",
        environment: environment + ["QXUB_NO_INOTIFY=1"],
        loop: loop
    )
    let agents = [floor, inotify, polling]
    defer {
        for agent in agents { agent.stop() }
        if backend == "local" {
            // The jobs' scripts run in process groups of their own (their pid records).
            for name in FileSystem.listDirectory(state + "/jobs") {
                let record = FileSystem.readText(state + "/jobs/" + name + "/pid")
                if let pid = record.flatMap({ Int32($0.trimmingWhitespace()) }) { kill(-pid, SIGKILL) }
            }
        } else if backend == "slurm" {
            _ = try? ChildProcess.spawn(["scancel"] + jobIDs, stdin: .null).wait()
        }
    }
    try inotify.watch(jobIDs)
    try polling.watch(jobIDs)
    func run(for seconds: Double) throws {
        loop.schedule(after: seconds) { loop.stop() }
        try loop.run()
    }
    // Until every job has been seen started, then the settle time (idle back-offs reach their longest).
    let deadline = MonotonicClock.now() + 120
    while (inotify.running < count || polling.running < count) && MonotonicClock.now() < deadline {
        try run(for: 0.5)
    }
    for agent in [inotify, polling] where agent.running < count || !agent.errors.isEmpty {
        print("\(agent.label): \(agent.running) of \(count) seen running; errors: \(agent.errors.prefix(3))")
    }
    try run(for: settle)

    let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    var shares: [[Double]] = Array(repeating: [], count: agents.count)
    for _ in 0..<rounds {
        let before = agents.map(\.cpuTicks)
        let start = MonotonicClock.now()
        try run(for: window)
        let elapsed = MonotonicClock.now() - start
        for (index, agent) in agents.enumerated() {
            shares[index].append(Double(agent.cpuTicks - before[index]) / ticksPerSecond / elapsed)
        }
    }
    print(
        "## Agent CPU following \(count) sleeping jobs (\(rounds) windows of \(format(window, 0)) s, after \(format(settle, 0)) s to settle)"
    )
    print("")
    print("| agent | CPU, % of a core (median) | min | max | resident memory |")
    print("|---|---:|---:|---:|---:|")
    for (index, agent) in agents.enumerated() {
        let sorted = shares[index].sorted()
        print(
            "| \(agent.label) | \(format(sorted[sorted.count / 2] * 100, 2)) | \(format(sorted.first! * 100, 2)) | "
                + "\(format(sorted.last! * 100, 2)) | \(format(Double(agent.residentKilobytes) / 1024, 1)) MB |"
        )
    }
}
