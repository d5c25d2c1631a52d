import QxubClient
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Start-up figures against the Python qxub's published ones (0.3 s for --version, 0.36-0.46 s for a dry
/// run, 5.6 s for a dry run at 1,000 history records) and a floor: starting /bin/true.
func startupBenchmark() throws {
    let work = "/tmp/qxub-bench-startup-\(getpid())"
    try FileSystem.createDirectories(work)
    defer { _ = try? runCollectingOutput(["rm", "-rf", work]) }
    var environment = Environment.all().filter { !$0.hasPrefix("QXUB_") && !$0.hasPrefix("XDG_") }
    environment += [
        "QXUB_STATE_DIR=" + work + "/state", "QXUB_AGENT=" + Binaries.agent, "XDG_DATA_HOME=" + work + "/data",
        "XDG_CONFIG_HOME=" + work + "/config",
    ]
    func median(_ command: [String], runs: Int = 20) throws -> Double {
        var samples: [Double] = []
        for _ in 0..<runs {
            let start = MonotonicClock.now()
            _ = try runCollectingOutput(command, environment: environment)
            samples.append(MonotonicClock.now() - start)
        }
        return statistics(samples).median
    }
    let floor = try median(["/bin/true"])
    print("qxub-bench startup: \(Binaries.qxub)")
    print("")
    print("| command | median | Python qxub 3.6.1 | x floor |")
    print("|---|---:|---:|---:|")
    print("| floor: `/bin/true` | \(milliseconds(floor)) | | 1 |")
    let version = try median([Binaries.qxub, "--version"])
    print("| `qxub --version` | \(milliseconds(version)) | 300 ms | \(format(version / floor, 0)) |")
    let dry = try median([Binaries.qxub, "exec", "--dry", "--backend", "local", "--", "true"])
    print("| `qxub exec --dry` (local backend) | \(milliseconds(dry)) | 360-460 ms | \(format(dry / floor, 0)) |")
    for records in [1_000, 10_000] {
        let history = try HistoryStore(path: work + "/data/qxub/history.sqlite")
        let have = try history.count()
        for index in have..<records {
            try history.recordSubmission(
                jobID: "\(index).bench",
                platform: "local",
                backend: "local",
                name: "n",
                command: "true",
                workingDirectory: "/",
                stateDirectory: "/"
            )
        }
        let terse = try median([Binaries.qxub, "exec", "--terse", "--backend", "local", "--", "true"], runs: 10)
        print(
            "| `qxub exec --terse` (submits, records history) at \(records) records | \(milliseconds(terse)) | \(records == 1_000 ? "5.6 s (dry run)" : "wipes past ~150") | \(format(terse / floor, 0)) |"
        )
    }
    // What a script that captures the id waits for is the process's end; the id itself comes earlier.
    var toID: [Double] = []
    var toExit: [Double] = []
    for _ in 0..<20 {
        let start = MonotonicClock.wallNow()
        let child = try ChildProcess.spawn(
            [Binaries.qxub, "exec", "--terse", "--backend", "local", "--", "true"],
            environment: environment,
            stdin: .null,
            stdout: .pipe,
            stderr: .null
        )
        let lines = arrivals(of: child)
        toExit.append(MonotonicClock.wallNow() - start)
        if let first = lines.first { toID.append(first.at - start) }
    }
    print(
        "| `qxub exec --terse` at 10000 records: the job id on stdout | \(milliseconds(statistics(toID).median)) | | \(format(statistics(toID).median / floor, 0)) |"
    )
    print(
        "| the same runs: the process's end (history written after the id) | \(milliseconds(statistics(toExit).median)) | | \(format(statistics(toExit).median / floor, 0)) |"
    )
}
