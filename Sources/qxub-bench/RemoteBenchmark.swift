import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// What `qxub-bench remote` measures against, and how.
struct RemoteOptions {
    var host = "qxub-bash"
    var sshConfig = "/tmp/qxub-sshd/ssh_config"
    var backend = "local"
    /// Rounds of each interleaved single-submission comparison.
    var rounds = 30
    /// Rounds of the 100-job comparison.
    var batchRounds = 3
    /// The Slurm partition held DOWN for the run (default: the cluster's default partition).
    var partition: String?
    /// Extra `key: value` lines under the platform's `remote:` (e.g. `session_persist: 0`).
    var remoteSettings: [String] = []
}

/// Remote figures over a real sshd, each against its floor measured in the same run, interleaved:
/// one warm `qxub exec --terse` against `ssh host sbatch` over the same master (with an empty rc file and
/// with one that costs 100 ms), 100 separate submissions against one `qxub batch`, a full round trip
/// against `ssh host` running the same job script, and streaming throughput with bytes on the wire.
///
/// Set-up it checks, and fails loudly on: the floor's ssh goes through qxub's master; the slow rc file
/// really costs 100 ms; on Slurm, every job the run submits stays PENDING behind a DOWN partition
/// (``SlurmHold``), so that none runs and loads the machine while it measures.
func remoteBenchmark(_ options: RemoteOptions) throws {
    let work = "/tmp/qxub-bench-remote-\(getpid())"
    try FileSystem.createDirectories(work + "/config/qxub")
    defer { _ = try? runCollectingOutput(["rm", "-rf", work]) }
    let settings = options.remoteSettings.map { "\n      " + $0 }.joined()
    try FileSystem.writeAtomically(
        work + "/config/qxub/config.yaml",
        """
        platforms:
          bench:
            remote:
              host: \(options.host)
              ssh_config: \(options.sshConfig)\(settings)
          bench-direct:
            remote:
              host: \(options.host)
              ssh_config: \(options.sshConfig)
              session_persist: 0
        """
    )
    var environment = Environment.all().filter {
        !$0.hasPrefix("QXUB_") && !$0.hasPrefix("XDG_CONFIG_HOME=") && !$0.hasPrefix("XDG_DATA_HOME=")
    }
    environment += [
        "XDG_CONFIG_HOME=" + work + "/config", "XDG_DATA_HOME=" + work + "/data", "QXUB_CONTROL_DIR=" + work + "/cm",
        "QXUB_AGENT=" + Binaries.agent, "QXUB_SHIM=" + FileSystem.directoryName(Binaries.agent) + "/qxub-shim",
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
    func time(_ command: [String]) throws -> Double {
        let start = MonotonicClock.now()
        _ = try run(command)
        return MonotonicClock.now() - start
    }
    let qxub = Binaries.qxub
    let backend = options.backend
    let ssh = ["ssh", "-F", options.sshConfig, "-o", "ControlPath=" + work + "/cm/bench", options.host]
    let terse = [qxub, "exec", "--terse", "--platform", "bench", "--backend", backend, "--", "true"]
    let sbatch = "sbatch --parsable -o /dev/null --wrap true"
    let direct = backend == "slurm" ? sbatch : "true"

    // The remote rc file and the hold come first: nothing may be submitted before the partition is down.
    let login = try runCollectingOutput(
        ["ssh", "-F", options.sshConfig, options.host, "id -un"],
        environment: environment
    )
    guard login.exit == .exited(0) else { throw SystemError("ssh", login.stderrText, errno: EIO) }
    let user = String(decoding: login.stdout, as: UTF8.self).trimmingWhitespace()
    let rc = try RemoteRCFile(
        ssh: ["ssh", "-F", options.sshConfig, options.host],
        environment: environment
    )
    defer { rc.restore() }
    let fastRC =
        "# qxub-bench: the test user's rc file for the run (restored at its end)\n"
        + (environment.first { $0.hasPrefix("SLURM_CONF=") }.map { "export " + $0 + "\n" } ?? "")
    let slowRC = fastRC + "sleep 0.1  # stands in for module and conda init\n"
    try rc.write(fastRC)
    let hold =
        backend == "slurm" ? try SlurmHold(user: user, partition: options.partition, environment: environment) : nil
    defer { hold?.release() }
    var submitted = 0

    _ = try run([qxub, "agent", "install", "--platform", "bench"])
    defer { _ = try? run([qxub, "agent", "uninstall", "--platform", "bench"]) }
    _ = try run(terse)  // Warms the master.
    submitted += 1
    // The floor must share qxub's master, or it would pay a whole ssh connection qxub does not.
    let check = try runCollectingOutput(
        Array(ssh.dropLast()) + ["-O", "check", options.host],
        environment: environment
    )
    guard check.exit == .exited(0) else {
        throw SystemError("bench", "no ssh master at \(work)/cm/bench after qxub ran: \(check.stderrText)", errno: EIO)
    }

    print("qxub-bench remote: \(options.host) (user \(user)) via \(options.sshConfig), backend \(backend), master warm")
    if let hold {
        print("Slurm partition \(hold.partition) is DOWN for the run: every job stays PENDING (checked with squeue)")
    }
    if !options.remoteSettings.isEmpty { print("remote settings: " + options.remoteSettings.joined(separator: ", ")) }

    var sshTrueFast = 0.0
    for (label, text) in [("an empty rc file", fastRC), ("an rc file that costs 100 ms (`sleep 0.1`)", slowRC)] {
        try rc.write(text)
        print("")
        print("## One submission over a warm master, \(label) (median of \(options.rounds), interleaved)")
        print("")
        let rows: [(String, [String])] = [
            ("`ssh host true`", ssh + ["true"]),
            ("`ssh host \(direct)` (the floor)", ssh + [direct]),
            ("`qxub exec --terse` (\(backend))", terse),
        ]
        var samples = [[Double]](repeating: [], count: rows.count)
        for _ in 0..<options.rounds {
            for (index, row) in rows.enumerated() { samples[index].append(try time(row.1)) }
        }
        submitted += options.rounds * (backend == "slurm" ? 2 : 1)
        try hold?.check(expected: submitted)
        let medians = samples.map { statistics($0).median }
        if text == fastRC { sshTrueFast = medians[0] }
        if text == slowRC && medians[0] - sshTrueFast < 0.09 {
            throw SystemError(
                "bench",
                "the slow rc file costs \(milliseconds(medians[0] - sshTrueFast)), not 100 ms: is ~/.bashrc read?",
                errno: EIO
            )
        }
        print("| what | median | p90 | x floor |")
        print("|---|---:|---:|---:|")
        for (index, row) in rows.enumerated() {
            let stats = statistics(samples[index])
            print(
                "| \(row.0) | \(milliseconds(stats.median)) | \(milliseconds(stats.p90)) | \(format(stats.median / medians[1], 2)) |"
            )
        }
        let target = text == fastRC ? 1.0 : 0.5
        let ratio = medians[2] / medians[1]
        print("")
        print(
            "`qxub exec --terse` / `ssh host \(direct)`: \(format(ratio, 2))x (target: at most \(format(target, 1))x: "
                + (ratio <= target ? "met" : "not met") + ")"
        )
    }
    try rc.write(fastRC)

    print("")
    print("## 100 jobs (an empty rc file; total of each, median of \(options.batchRounds) interleaved rounds)")
    print("")
    let lines = (1...100).map { _ in "true" }.joined(separator: "\n") + "\n"
    try FileSystem.writeAtomically(work + "/jobs.txt", lines)
    var totals: [[Double]] = [[], [], []]
    for _ in 0..<options.batchRounds {
        totals[0].append(
            try time([qxub, "batch", "--terse", "--platform", "bench", "--backend", backend, work + "/jobs.txt"])
        )
        var start = MonotonicClock.now()
        for _ in 0..<100 { _ = try run(terse) }
        totals[1].append(MonotonicClock.now() - start)
        start = MonotonicClock.now()
        for _ in 0..<100 { _ = try run(ssh + [direct]) }
        totals[2].append(MonotonicClock.now() - start)
        submitted += backend == "slurm" ? 300 : 200
    }
    try hold?.check(expected: submitted)
    let batch = statistics(totals[0]).median
    print("| how | total | per job | x `qxub batch` (the floor) |")
    print("|---|---:|---:|---:|")
    for (label, samples) in [
        ("`qxub batch --terse`: the 100 jobs over one session", totals[0]),
        ("100 separate `qxub exec --terse`", totals[1]), ("100 `ssh host \(direct)`", totals[2]),
    ] {
        let total = statistics(samples).median
        print("| \(label) | \(format(total, 2)) s | \(milliseconds(total / 100)) | \(format(total / batch, 2)) |")
    }
    let separateRatio = statistics(totals[1]).median / batch
    print("")
    print(
        "100 separate `qxub exec --terse` / `qxub batch`: \(format(separateRatio, 2))x (target: within 2x: "
            + (separateRatio <= 2 ? "met" : "not met") + ")"
    )

    try roundTrip(qxub: qxub, ssh: ssh, rounds: options.rounds, run: run, time: time)

    print("")
    // The queue is held: stream from a job on the cluster's local backend, which measures the transport.
    // The floor is ssh itself carrying the same job's output; qxub's rows are its own session (where the client
    // counts the bytes on the ssh pipe) and the holder's (where the client reads a local socket, uncompressed).
    print("## Streaming a job's output to the laptop (the job runs on the cluster's local backend; median of 3)")
    print("")
    print("| output | how | bytes | wall time | MB/s | x floor | bytes on the wire | wire/raw |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    let jobs = [
        (
            "a training log (400,000 lines)",
            "awk 'BEGIN { srand(1); for (i = 0; i < 400000; i++) printf \"2026-11-25 10:%02d:%02d INFO epoch %d step %d/1000 loss=%.4f acc=%.2f%% lr=0.0003\\n\", int(i/6000)%60, int(i/100)%60, int(i/1000), i%1000, rand(), 50+49*rand() }'"
        ),
        ("incompressible bytes (50 MB)", "head -c 50000000 /dev/urandom"),
    ]
    for (label, job) in jobs {
        var floor: [Double] = []
        var direct: [(Double, Int, Int)] = []
        var held: [(Double, Int)] = []
        for _ in 0..<3 {
            floor.append(try time(ssh + [job]))
            for platform in ["bench-direct", "bench"] {
                let start = MonotonicClock.now()
                let result = try runCollectingOutput(
                    [qxub, "exec", "--platform", platform, "--backend", "local", "--", job],
                    environment: environment + ["QXUB_STATS=1"],
                    timeout: 900,
                    outputLimit: 1 << 30
                )
                let elapsed = MonotonicClock.now() - start
                let stats = result.stderrText.split(separator: "\n").last { $0.contains("stats:") } ?? ""
                let words = stats.split(separator: " ")
                let wire = words.firstIndex(of: "in").flatMap { Int(words[$0 + 1]) } ?? 0
                if platform == "bench" {
                    held.append((elapsed, result.stdout.count))
                } else {
                    direct.append((elapsed, result.stdout.count, wire))
                }
            }
        }
        let floorTime = statistics(floor).median
        let directTime = statistics(direct.map(\.0)).median
        let heldTime = statistics(held.map(\.0)).median
        let raw = direct[0].1
        let wire = direct.sorted { $0.0 < $1.0 }[direct.count / 2].2
        func rate(_ seconds: Double) -> String { format(Double(raw) / 1e6 / seconds, 1) }
        print(
            "| \(label) | `ssh host` (the floor) | \(raw) | \(format(floorTime, 2)) s | \(rate(floorTime)) | 1.0 | | |"
        )
        print(
            "| \(label) | qxub, its own session | \(raw) | \(format(directTime, 2)) s | \(rate(directTime)) | \(format(directTime / floorTime, 2)) | \(wire) | \(format(100 * Double(wire) / Double(max(raw, 1)), 1))% |"
        )
        print(
            "| \(label) | qxub, through the holder | \(held[0].1) | \(format(heldTime, 2)) s | \(rate(heldTime)) | \(format(heldTime / floorTime, 2)) | (as above) | |"
        )
    }
    try hold?.check(expected: submitted)
}

/// A whole `qxub exec -- echo hello` (submit, follow, output, exit status) against `ssh host` running the
/// job script qxub generates for it, and printing its output. The job runs on the cluster's local
/// backend (the Slurm partition is held down), so both sides run the same script the same way.
private func roundTrip(
    qxub: String,
    ssh: [String],
    rounds: Int,
    run: ([String], [UInt8]?) throws -> CollectedRun,
    time: ([String]) throws -> Double
) throws {
    let exec = [qxub, "exec", "--platform", "bench", "--backend", "local", "--", "echo", "hello"]
    let dry = String(decoding: try run(exec.prefix(2) + ["--dry"] + exec.dropFirst(2), nil).stdout, as: UTF8.self)
    guard let header = dry.range(of: "# job script ("), let end = dry[header.upperBound...].range(of: "/job.sh):\n")
    else { throw SystemError("bench", "qxub exec --dry printed no job script:\n" + dry, errno: EIO) }
    let stateDirectory = String(dry[header.upperBound..<end.lowerBound])
    let script = String(dry[end.upperBound...])
    _ = try run(ssh + ["cat > ~/.qxub-bench-job.sh"], Array(script.utf8))
    let floor = ssh + ["bash ~/.qxub-bench-job.sh >/dev/null && cat " + stateDirectory + "/out"]
    for command in [floor, exec] {
        let output = String(decoding: try run(command, nil).stdout, as: UTF8.self)
        guard output == "hello\n" else {
            throw SystemError("bench", "\(command.last ?? "") printed \(output.debugDescription)", errno: EIO)
        }
    }
    let rows: [(String, [String])] = [
        ("`ssh host echo hello`", ssh + ["echo hello"]),
        ("`ssh host` running qxub's job script, then `cat` its output (the floor)", floor),
        ("`qxub exec -- echo hello` (local backend on the cluster)", exec),
    ]
    var samples = [[Double]](repeating: [], count: rows.count)
    for _ in 0..<rounds {
        for (index, row) in rows.enumerated() { samples[index].append(try time(row.1)) }
    }
    _ = try? run(ssh + ["rm -rf ~/.qxub-bench-job.sh " + stateDirectory], nil)
    let floorMedian = statistics(samples[1]).median
    print("")
    print("## A full round trip: `qxub exec -- echo hello` (median of \(rounds), interleaved)")
    print("")
    print("| what | median | p90 | x floor |")
    print("|---|---:|---:|---:|")
    for (index, row) in rows.enumerated() {
        let stats = statistics(samples[index])
        print(
            "| \(row.0) | \(milliseconds(stats.median)) | \(milliseconds(stats.p90)) | \(format(stats.median / floorMedian, 2)) |"
        )
    }
}
