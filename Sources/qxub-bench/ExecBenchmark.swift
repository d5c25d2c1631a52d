import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Paths of the binaries under measurement: next to this benchmark, or from the environment.
enum Binaries {
    static var directory: String {
        FileSystem.directoryName(FileSystem.readLink("/proc/self/exe") ?? CommandLine.arguments[0])
    }
    static var qxub: String { Environment.get("QXUB_BENCH_QXUB") ?? directory + "/qxub" }
    static var agent: String { Environment.get("QXUB_AGENT") ?? directory + "/qxub-agent" }
}

func statistics(_ samples: [Double]) -> (median: Double, p90: Double, mean: Double) {
    let sorted = samples.sorted()
    guard !sorted.isEmpty else { return (0, 0, 0) }
    return (
        sorted[sorted.count / 2], sorted[min(sorted.count - 1, sorted.count * 9 / 10)],
        sorted.reduce(0, +) / Double(sorted.count)
    )
}

func milliseconds(_ seconds: Double) -> String { format(seconds * 1000, 2) + " ms" }

/// Reads a child's stdout line by line, recording the wall-clock arrival time of each line.
func arrivals(of child: ChildProcess) -> [(line: String, at: Double)] {
    var result: [(String, Double)] = []
    var pending: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(child.stdout!, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        let now = MonotonicClock.wallNow()
        pending += buffer[0..<count]
        while let newline = pending.firstIndex(of: 10) {
            result.append((String(decoding: pending[..<newline], as: UTF8.self), now))
            pending.removeSubrange(...newline)
        }
    }
    _ = child.wait()
    return result
}

/// Each line the job prints carries the wall-clock time it was written; latency = arrival - written.
func lineLatencies(_ command: [String], environment: [String]) throws -> [Double] {
    let child = try ChildProcess.spawn(command, environment: environment, stdin: .null, stdout: .pipe, stderr: .null)
    return arrivals(of: child).compactMap { entry in Double(entry.line).map { entry.at - $0 } }
}

func execBenchmark(backends: [String]) throws {
    let state = "/tmp/qxub-bench-\(getpid())"
    try FileSystem.createDirectories(state)
    defer { _ = try? runCollectingOutput(["rm", "-rf", state]) }
    var environment = Environment.all().filter { !$0.hasPrefix("QXUB_") }
    environment += ["QXUB_STATE_DIR=" + state, "QXUB_AGENT=" + Binaries.agent]
    let lines = 30
    let job = "for i in $(seq \(lines)); do date +%s.%N; sleep 0.1; done"

    print("qxub-bench exec: \(Binaries.qxub)")
    print("")
    print("## Latency from a line written by the job to the same line printed by qxub (\(lines) lines, 100 ms apart)")
    print("")
    print("| path | median | p90 | mean |")
    print("|---|---:|---:|---:|")
    let floor = statistics(try lineLatencies(["bash", "-c", job], environment: environment))
    print(
        "| floor: the command on a pipe, no qxub | \(milliseconds(floor.median)) | \(milliseconds(floor.p90)) | \(milliseconds(floor.mean)) |"
    )
    for backend in backends {
        for (label, extra) in [("inotify", [String]()), ("polling only (as on Lustre/NFS)", ["QXUB_NO_INOTIFY=1"])] {
            let samples = try lineLatencies(
                [Binaries.qxub, "exec", "--backend", backend, "--", job],
                environment: environment + extra
            )
            let stats = statistics(samples)
            print(
                "| qxub exec, \(backend), \(label) (\(samples.count) lines) | \(milliseconds(stats.median)) | \(milliseconds(stats.p90)) | \(milliseconds(stats.mean)) |"
            )
        }
    }

    print("")
    print("## Submission overhead: `qxub exec --terse` against calling the scheduler directly (median of 15)")
    print("")
    print("| backend | direct submit (floor) | qxub exec --terse | ratio | qxub minus floor |")
    print("|---|---:|---:|---:|---:|")
    for backend in backends {
        let direct: [String]
        switch backend {
        case "slurm": direct = ["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "true"]
        case "pbspro": direct = ["qsub", "-o", "/dev/null", "-j", "oe", "--", "/bin/true"]
        default: direct = ["bash", "-c", "true &"]
        }
        func time(_ command: [String]) throws -> Double {
            var samples: [Double] = []
            for _ in 0..<15 {
                let start = MonotonicClock.now()
                let run = try runCollectingOutput(command, environment: environment)
                guard run.exit == .exited(0) else {
                    throw SystemError("run", command.joined(separator: " ") + ": " + run.stderrText, errno: EIO)
                }
                samples.append(MonotonicClock.now() - start)
            }
            return statistics(samples).median
        }
        let floorTime = try time(direct)
        let qxubTime = try time([Binaries.qxub, "exec", "--terse", "--backend", backend, "--", "true"])
        print(
            "| \(backend) (`\(direct.joined(separator: " "))`) | \(milliseconds(floorTime)) | \(milliseconds(qxubTime)) | \(format(qxubTime / floorTime, 2))x | \(milliseconds(qxubTime - floorTime)) |"
        )
    }
}
