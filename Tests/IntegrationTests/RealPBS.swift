import QxubSystem
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real OpenPBS of Tests/Support/openpbs.sh: built from the OpenPBS source (`OPENPBS_SOURCE`, else
/// ../shared/vendor/openpbs beside the repository), run in a private network namespace. The lane runs when
/// the source is there and the tests run as root; without it the lane is skipped and says so, except under
/// `CI=true`, where a missing source fails the run.
enum RealPBS {
    static let script = Components.repositoryRoot + "/Tests/Support/openpbs.sh"

    /// Whether the lane can run here (checked once; says why not on stderr).
    static let available: Bool = {
        let sourceFound = (try? runCollectingOutput(["bash", script, "available"], timeout: 30))?.exit == .exited(0)
        let root = getuid() == 0
        if sourceFound && root { return true }
        let why =
            !sourceFound
            ? "no OpenPBS source (set OPENPBS_SOURCE to an openpbs tarball, or put it in ../shared/vendor/openpbs)"
            : "the tests do not run as root (the lane needs a network namespace and a test user)"
        if BuiltProducts.inCI {
            // CI always has the source: a missing lane is a failure there, never a silent skip.
            try? FileDescriptor.writeAll(2, "real OpenPBS lane: \(why); CI=true, so its tests fail\n")
            return true
        }
        try? FileDescriptor.writeAll(2, "real OpenPBS lane skipped: \(why)\n")
        return false
    }()

    private static let started = Mutex<Result<[String: String], ComponentError>?>(nil)

    /// Starts OpenPBS (idempotent; a cold build takes minutes) and returns `openpbs.sh env`.
    static func environment() throws -> [String: String] {
        try started.withLock { cached in
            if let cached { return try cached.get() }
            let result: Result<[String: String], ComponentError>
            do {
                let start = try runCollectingOutput(["bash", script, "start"], timeout: 3600)
                if start.exit == .exited(0) {
                    result = .success(
                        Components.parseExports(
                            try runCollectingOutput(["bash", script, "env"], timeout: 30).stdoutText
                        )
                    )
                } else {
                    result = .failure(
                        ComponentError(
                            message: "Tests/Support/openpbs.sh start failed (\(start.exit)):\n\(start.stderrText)"
                        )
                    )
                }
            } catch {
                result = .failure(ComponentError(message: "cannot run Tests/Support/openpbs.sh: \(error)"))
            }
            cached = result
            return try result.get()
        }
    }

    /// `qmgr -c 'set server job_history_enable=…'`.
    static func setHistory(_ enabled: Bool) throws {
        _ = try environment()  // started (and built) first
        let run = try runCollectingOutput(["bash", script, "history", enabled ? "on" : "off"], timeout: 60)
        guard run.exit == .exited(0) else {
            throw ComponentError(message: "openpbs.sh history failed: \(run.stderrText)")
        }
    }

    private static let copiedBinaries = Mutex<String?>(nil)

    /// The built binaries, copied where the unprivileged test user can run them.
    static func binaries(_ env: [String: String]) throws -> String {
        try copiedBinaries.withLock { cached in
            if let cached { return cached }
            let home = env["QXUB_PBS_HOME"] ?? ""
            let directory = FileSystem.directoryName(home) + "/bin-\(getpid())"
            try FileSystem.createDirectories(directory, mode: 0o755)
            for (source, name) in [(BuiltProducts.qxub, "qxub"), (BuiltProducts.agent, "qxub-agent")] {
                let copy = try runCollectingOutput(
                    ["install", "-m", "0755", source, directory + "/" + name],
                    timeout: 60
                )
                guard copy.exit == .exited(0) else {
                    throw ComponentError(message: "cannot copy \(source): \(copy.stderrText)")
                }
            }
            cached = directory
            return directory
        }
    }
}

/// A directory of the PBS test user's own, and `qxub` run as that user inside the PBS namespace (as a user
/// on a login node runs it): every scheduler command it starts is the real OpenPBS's.
final class PBSUserSandbox {
    let env: [String: String]
    let directory: String
    let user: String
    let bin: String
    var extraEnvironment: [String: String] = [:]

    init(_ label: String) throws {
        env = try RealPBS.environment()
        user = env["QXUB_PBS_USER"] ?? ""
        bin = try RealPBS.binaries(env)
        directory = (env["QXUB_PBS_HOME"] ?? "") + "/it-\(label)-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        try FileSystem.createDirectories(directory + "/home", mode: 0o755)
        let chown = try runCollectingOutput(["chown", "-R", user + ":" + user, directory], timeout: 30)
        guard chown.exit == .exited(0) else { throw ComponentError(message: "chown \(directory): \(chown.stderrText)") }
    }

    deinit {
        _ = try? runCollectingOutput(["rm", "-rf", directory], timeout: 30)
    }

    /// The environment of the user's qxub: a login-like environment with the PBS commands on PATH.
    var environment: [String] {
        var values: [String: String] = [
            "HOME": directory + "/home",
            "USER": user, "LOGNAME": user, "SHELL": "/bin/bash", "LANG": "C.UTF-8",
            "PATH": (env["QXUB_PBS_PATH"] ?? "") + ":/usr/local/bin:/usr/bin:/bin",
            "PBS_CONF_FILE": env["PBS_CONF_FILE"] ?? "",
            "QXUB_STATE_DIR": directory + "/state",
            "QXUB_AGENT": bin + "/qxub-agent",
            "QXUB_POLL_INTERVAL": "1",
        ]
        for (key, value) in extraEnvironment { values[key] = value }
        return values.sorted { $0.key < $1.key }.map { $0.key + "=" + $0.value }
    }

    /// argv that runs `command` as the test user inside the namespace (exec all the way: signals reach it).
    func asUser(_ command: [String]) -> [String] {
        [
            "ip", "netns", "exec", env["QXUB_PBS_NETNS"] ?? "", "setpriv", "--reuid", user, "--regid", user,
            "--init-groups",
            "env", "-i",
        ] + environment + command
    }

    func qxub(_ arguments: [String], timeout: Double = 180) throws -> CollectedRun {
        try runCollectingOutput(asUser([bin + "/qxub"] + arguments), timeout: timeout)
    }

    /// A shell command as the test user (qstat, qdel…), with the same environment.
    func shell(_ line: String, timeout: Double = 60) throws -> CollectedRun {
        try runCollectingOutput(asUser(["/bin/bash", "-c", line]), timeout: timeout)
    }

    func start(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess.spawn(
            asUser([bin + "/qxub"] + arguments),
            stdin: .null,
            stdout: .pipe,
            stderr: .pipe,
            newProcessGroup: true
        )
    }

    var jobDirectories: [String] {
        let listing = (try? runCollectingOutput(["ls", "-1", directory + "/state/jobs"]))?.stdoutText ?? ""
        return listing.split(separator: "\n").map { directory + "/state/jobs/" + $0 }
    }

    /// The scheduler's id of the only job submitted so far, once it is known (bounded wait).
    func submittedJobID(timeout: Double = 60) -> String? {
        var id: String?
        _ = wait(timeout: timeout) {
            id = jobDirectories.compactMap { FileSystem.readText($0 + "/jobid")?.trimmingWhitespaceForTests() }.first
            return id != nil
        }
        return id
    }

    func wait(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = MonotonicClock.now() + timeout
        while MonotonicClock.now() < deadline {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }
}
