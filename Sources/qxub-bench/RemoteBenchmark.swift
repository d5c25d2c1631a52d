import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Remote figures over a real sshd: warm submission against `ssh host true` over the same master,
/// 100 submissions three ways, and streaming throughput with bytes on the wire.
func remoteBenchmark(host: String, sshConfig: String, backend: String) throws {
    let work = "/tmp/qxub-bench-remote-\(getpid())"
    try FileSystem.createDirectories(work + "/config/qxub")
    defer { _ = try? runCollectingOutput(["rm", "-rf", work]) }
    try FileSystem.writeAtomically(
        work + "/config/qxub/config.yaml",
        """
        platforms:
          bench:
            remote:
              host: \(host)
              ssh_config: \(sshConfig)
        """
    )
    var environment = Environment.all().filter { !$0.hasPrefix("QXUB_") && !$0.hasPrefix("XDG_CONFIG_HOME=") }
    environment += [
        "XDG_CONFIG_HOME=" + work + "/config", "QXUB_CONTROL_DIR=" + work + "/cm", "QXUB_AGENT=" + Binaries.agent,
        "QXUB_SHIM=" + FileSystem.directoryName(Binaries.agent) + "/qxub-shim",
    ]
    func run(_ command: [String], stdin: [UInt8]? = nil) throws -> CollectedRun {
        let result = try runCollectingOutput(
            command,
            environment: environment,
            stdinBytes: stdin,
            timeout: 900,
            outputLimit: 1 << 30
        )
        guard result.exit == .exited(0) else {
            throw SystemError("run", command.prefix(6).joined(separator: " ") + ": " + result.stderrText, errno: EIO)
        }
        return result
    }
    let qxub = Binaries.qxub
    _ = try run([qxub, "agent", "install", "--platform", "bench"])
    // Warms the master.
    _ = try run([qxub, "exec", "--terse", "--platform", "bench", "--backend", backend, "--", "true"])
    let ssh = ["ssh", "-F", sshConfig, "-o", "ControlPath=" + work + "/cm/bench", host]

    print("qxub-bench remote: \(host) via \(sshConfig), backend \(backend), master warm")
    print("")
    print("## One submission over a warm ControlMaster (median of 30, the three interleaved)")
    print("")
    // Interleaved, so that the three see the same load (jobs submitted earlier start and end meanwhile).
    let commands = [
        ssh + ["true"], backend == "slurm" ? ssh + ["sbatch --parsable -o /dev/null --wrap true"] : ssh + ["true"],
        [qxub, "exec", "--terse", "--platform", "bench", "--backend", backend, "--", "true"],
    ]
    var samples: [[Double]] = [[], [], []]
    for _ in 0..<30 {
        for (index, command) in commands.enumerated() {
            let start = MonotonicClock.now()
            _ = try run(command)
            samples[index].append(MonotonicClock.now() - start)
        }
    }
    let floor = statistics(samples[0]).median
    let scheduler = statistics(samples[1]).median
    let submit = statistics(samples[2]).median
    print("| what | median | x floor |")
    print("|---|---:|---:|")
    print("| floor: `ssh host true` over the master | \(milliseconds(floor)) | 1.00 |")
    if backend == "slurm" {
        print(
            "| `ssh host sbatch --wrap true` (the scheduler's own submit) | \(milliseconds(scheduler)) | \(format(scheduler / floor, 2)) |"
        )
    }
    print("| `qxub exec --terse` (remote, \(backend)) | \(milliseconds(submit)) | \(format(submit / floor, 2)) |")
    print("")
    print(
        "qxub over the floor plus the scheduler's own submit time: \(format(submit / scheduler, 2))x (target: within 1.3x)"
    )

    print("")
    print("## 100 submissions")
    print("")
    let lines = (1...100).map { _ in "true" }.joined(separator: "\n") + "\n"
    try FileSystem.writeAtomically(work + "/jobs.txt", lines)
    var start = MonotonicClock.now()
    _ = try run([qxub, "batch", "--terse", "--platform", "bench", "--backend", backend, work + "/jobs.txt"])
    let batch = MonotonicClock.now() - start
    start = MonotonicClock.now()
    for _ in 0..<100 {
        _ = try run([qxub, "exec", "--terse", "--platform", "bench", "--backend", backend, "--", "true"])
    }
    let separate = MonotonicClock.now() - start
    start = MonotonicClock.now()
    let direct = backend == "slurm" ? "sbatch --parsable -o /dev/null --wrap true" : "true"
    for _ in 0..<100 { _ = try run(ssh + [direct]) }
    let sshEach = MonotonicClock.now() - start
    print("| how | total | per job | x one session |")
    print("|---|---:|---:|---:|")
    print(
        "| `qxub batch --terse`: 100 jobs over one session | \(format(batch, 2)) s | \(milliseconds(batch / 100)) | 1.00 |"
    )
    print(
        "| 100 separate `qxub exec --terse` | \(format(separate, 2)) s | \(milliseconds(separate / 100)) | \(format(separate / batch, 2)) |"
    )
    print(
        "| 100 `ssh host \(direct)` | \(format(sshEach, 2)) s | \(milliseconds(sshEach / 100)) | \(format(sshEach / batch, 2)) |"
    )

    print("")
    // The submissions above fill the scheduler's queue: stream from a job on the cluster's local backend
    // so the figures measure the transport, not the queue.
    print("## Streaming a job's output to the laptop (the job runs on the cluster's local backend)")
    print("")
    print("| output | bytes | wall time | MB/s | bytes on the wire | wire/raw |")
    print("|---|---:|---:|---:|---:|---:|")
    let jobs = [
        (
            "a training log (400,000 lines)",
            "awk 'BEGIN { srand(1); for (i = 0; i < 400000; i++) printf \"2026-11-25 10:%02d:%02d INFO epoch %d step %d/1000 loss=%.4f acc=%.2f%% lr=0.0003\\n\", int(i/6000)%60, int(i/100)%60, int(i/1000), i%1000, rand(), 50+49*rand() }'"
        ),
        ("incompressible bytes (50 MB)", "head -c 50000000 /dev/urandom"),
    ]
    for (label, job) in jobs {
        start = MonotonicClock.now()
        let result = try runCollectingOutput(
            [qxub, "exec", "--platform", "bench", "--backend", "local", "--", job],
            environment: environment + ["QXUB_STATS=1"],
            timeout: 900,
            outputLimit: 1 << 30
        )
        let elapsed = MonotonicClock.now() - start
        let stats = result.stderrText.split(separator: "\n").last { $0.contains("stats:") } ?? ""
        let words = stats.split(separator: " ")
        let wire = words.firstIndex(of: "in").flatMap { Int(words[$0 + 1]) } ?? 0
        let raw = result.stdout.count
        print(
            "| \(label) | \(raw) | \(format(elapsed, 2)) s | \(format(Double(raw) / 1e6 / elapsed, 1)) | \(wire) | \(format(100 * Double(wire) / Double(max(raw, 1)), 1))% |"
        )
    }
    _ = try? run([qxub, "agent", "uninstall", "--platform", "bench"])
}
