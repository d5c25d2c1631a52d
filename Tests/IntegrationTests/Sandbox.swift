import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A private directory and environment for running the built `qxub` as a user would.
final class Sandbox {
    let directory: String
    var environment: [String: String]

    /// - Parameter fakeBinaries: name → shell script body, put first on PATH (fake `conda`, `module`...).
    init(_ label: String, fakeBinaries: [String: String] = [:], extraPath: [String] = []) throws {
        directory = "/tmp/qxub-it-\(label)-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        try FileSystem.createDirectories(directory + "/bin", mode: 0o755)
        try FileSystem.createDirectories(directory + "/home", mode: 0o755)
        for (name, body) in fakeBinaries {
            try FileSystem.writeAtomically(directory + "/bin/" + name, "#!/bin/bash\n" + body + "\n", mode: 0o755)
        }
        var environment: [String: String] = [:]
        for entry in Environment.all() {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            let key = String(entry[..<equals])
            // The runner's NO_COLOR must not decide what a test sees on its terminal: a test that wants it sets it.
            if key.hasPrefix("QXUB_") || key.hasPrefix("PBS_") || key.hasPrefix("SLURM_") || key == "NO_COLOR" {
                continue
            }
            environment[key] = String(entry[entry.index(after: equals)...])
        }
        environment["HOME"] = directory + "/home"
        environment["QXUB_STATE_DIR"] = directory + "/state"
        environment["QXUB_AGENT"] = BuiltProducts.agent
        environment["QXUB_POLL_INTERVAL"] = "1"
        environment["PATH"] = ([directory + "/bin"] + extraPath + [environment["PATH"] ?? "/usr/bin:/bin"]).joined(
            separator: ":"
        )
        self.environment = environment
    }

    /// Put before every qxub the sandbox runs (`ip netns exec NAME` for a laptop inside the PBS namespace).
    var commandPrefix: [String] = []

    /// Commands run (with this environment) before the directory is removed.
    var cleanup: [[String]] = []

    deinit {
        for command in cleanup { _ = try? runCollectingOutput(command, environment: environmentList, timeout: 60) }
        _ = try? runCollectingOutput(["rm", "-rf", directory], timeout: 30)
    }

    var environmentList: [String] { environment.map { $0.key + "=" + $0.value } }

    /// Runs `qxub ARGS` to completion.
    func qxub(_ arguments: [String], stdin: String? = nil, timeout: Double = 120) throws -> CollectedRun {
        try runCollectingOutput(
            commandPrefix + [BuiltProducts.qxub] + arguments,
            environment: environmentList,
            stdinBytes: stdin.map { Array($0.utf8) },
            timeout: timeout
        )
    }

    /// Starts `qxub ARGS` with pipes in its own process group, for tests that signal it mid-run: signal
    /// the group (`kill(-pid, SIGINT)`), as a terminal does on Ctrl-C, so every child gets it too.
    func start(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess.spawn(
            commandPrefix + [BuiltProducts.qxub] + arguments,
            environment: environmentList,
            stdin: .null,
            stdout: .pipe,
            stderr: .pipe,
            newProcessGroup: true
        )
    }

    /// The job directories created so far.
    var jobDirectories: [String] {
        let listing = (try? runCollectingOutput(["ls", "-1", directory + "/state/jobs"]))?.stdoutText ?? ""
        return listing.split(separator: "\n").map { directory + "/state/jobs/" + $0 }
    }

    /// Whether `qxub history` (this sandbox's, on this machine) lists `jobID`: qxub records a submission as
    /// soon as the agent's answer names the job, before it follows it.
    func historyLists(_ jobID: String) -> Bool {
        guard let run = try? qxub(["history", "--limit", "1000"], timeout: 30), run.exit == .exited(0) else {
            return false
        }
        return run.stdoutText.split(separator: "\n").contains { $0.split(separator: " ").contains { $0 == jobID } }
    }

    /// The scheduler's id of the first job submitted in this sandbox, once its agent has written it (bounded wait).
    func submittedJobID(timeout: Double = 60) -> String? {
        var id: String?
        _ = wait(timeout: timeout) {
            id = jobDirectories.lazy.compactMap { FileSystem.readText($0 + "/jobid")?.trimmingWhitespaceForTests() }
                .first { !$0.isEmpty }
            return id != nil
        }
        return id
    }

    /// Waits until `condition` holds, up to `timeout` seconds.
    func wait(timeout: Double = 30, _ condition: () -> Bool) -> Bool {
        let deadline = MonotonicClock.now() + timeout
        while MonotonicClock.now() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }
}

/// Drains a started child's pipes and waits for it (the pipes are drained concurrently).
func collect(_ child: ChildProcess, timeout: Double = 60) -> CollectedRun {
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var open = [child.stdout!, child.stderr!]
    let deadline = MonotonicClock.now() + timeout
    var buffer = [UInt8](repeating: 0, count: 65536)
    while !open.isEmpty && MonotonicClock.now() < deadline {
        var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        _ = poll(&fds, nfds_t(fds.count), 200)
        for entry in fds where entry.revents != 0 {
            let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
            if count <= 0 {
                open.removeAll { $0 == entry.fd }
            } else if entry.fd == child.stdout {
                stdout += buffer[0..<count]
            } else {
                stderr += buffer[0..<count]
            }
        }
    }
    if !open.isEmpty { child.signal(SIGKILL) }
    let exit = child.wait()
    FileDescriptor.close(child.stdout!)
    FileDescriptor.close(child.stderr!)
    return CollectedRun(exit: exit, stdout: stdout, stderr: stderr)
}

/// Reads from `fd` until `count` newlines have arrived (or `timeout` seconds pass); returns what was read.
func readLines(_ fd: Int32, count: Int, timeout: Double) -> String {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    let deadline = MonotonicClock.now() + timeout
    while bytes.filter({ $0 == 0x0A }).count < count && MonotonicClock.now() < deadline {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 200) > 0 else { continue }
        // One byte at a time: nothing past the last wanted line is taken from the pipe.
        guard read(fd, &byte, 1) == 1 else { break }
        bytes.append(byte)
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Reads whole lines from `fd` until what was read satisfies `done` (or `timeout` seconds pass); returns what
/// was read, which ends at a line's end unless the time ran out.
func readLines(_ fd: Int32, timeout: Double, until done: (String) -> Bool) -> String {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    let deadline = MonotonicClock.now() + timeout
    while MonotonicClock.now() < deadline {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 200) > 0 else { continue }
        // One byte at a time: nothing past the last wanted line is taken from the pipe.
        guard read(fd, &byte, 1) == 1 else { break }
        bytes.append(byte)
        if byte == 0x0A && done(String(decoding: bytes, as: UTF8.self)) { break }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Whether `pid` has ended: no such process, or a zombie its parent has not reaped yet.
func processEnded(_ pid: pid_t) -> Bool {
    guard let stat = FileSystem.readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
    return state == "Z" || state == "X"
}

/// Reads from `fd` until what was read contains `text` (or `timeout` seconds pass); returns what was read.
func readUntil(_ fd: Int32, containing text: String, timeout: Double) -> String {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    let deadline = MonotonicClock.now() + timeout
    while !String(decoding: bytes, as: UTF8.self).contains(text) && MonotonicClock.now() < deadline {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 200) > 0 else { continue }
        guard read(fd, &byte, 1) == 1 else { break }
        bytes.append(byte)
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Reads `fd` (one of the child's pipes) to its end and waits for the child, within `timeout` seconds in
/// all; a child still running then is killed. Closes `fd`.
func drainUntilExit(_ child: ChildProcess, fd: Int32, timeout: Double) -> (ProcessExit, String) {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    let deadline = MonotonicClock.now() + timeout
    while MonotonicClock.now() < deadline {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 200) > 0 else { continue }
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    FileDescriptor.close(fd)
    while MonotonicClock.now() < deadline {
        if let exit = child.poll() { return (exit, String(decoding: bytes, as: UTF8.self)) }
        usleep(10_000)
    }
    child.signal(SIGKILL)
    return (child.wait(), String(decoding: bytes, as: UTF8.self))
}

extension Sandbox {
    /// A platform of this laptop's configuration: a host of the test sshd's ssh config.
    struct RemotePlatform {
        var name: String
        var host: String
        var workingDirectory: String?
        /// `session_persist` (nil: not written, the default).
        var sessionPersist: String? = nil
    }

    /// Makes this sandbox a laptop with `platforms` on the sshd whose `sshd.sh env` is `ssh`: its own
    /// configuration, control sockets and shim; each platform's master is ended when the sandbox goes.
    func configureRemote(_ platforms: [RemotePlatform], ssh: [String: String]) throws {
        let config = ssh["QXUB_TEST_SSH_CONFIG"]!
        let yaml = platforms.map { platform in
            "  \(platform.name):\n    remote:\n      host: \(platform.host)\n      ssh_config: \(config)\n"
                + (platform.workingDirectory.map { "      working_dir: \($0)\n" } ?? "")
                + (platform.sessionPersist.map { "      session_persist: \($0)\n" } ?? "")
        }.joined()
        try FileSystem.createDirectories(directory + "/config/qxub")
        try FileSystem.writeAtomically(directory + "/config/qxub/config.yaml", "platforms:\n" + yaml)
        environment["XDG_CONFIG_HOME"] = directory + "/config"
        environment["QXUB_CONTROL_DIR"] = directory + "/cm"
        environment["QXUB_SHIM"] = Components.repositoryRoot + "/shim/qxub-shim"
        for platform in platforms {
            cleanup.append(
                commandPrefix + [
                    "ssh", "-F", config, "-o", "ControlPath=" + directory + "/cm/" + platform.name, "-O", "exit",
                    platform.host,
                ]
            )
        }
        // Session holders: each would otherwise live on until its idle time passed (after the masters, so a
        // test that runs cleanup[0] still ends a master).
        cleanup.append(commandPrefix + [BuiltProducts.qxub, "session", "stop"])
    }
}
