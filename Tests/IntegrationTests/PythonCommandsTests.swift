import QxubSystem
import Testing

/// The Python qxub's commands people type: `status list`, `status summary`, and its spellings that qxub
/// answers with the nearest command.
@Suite("the Python qxub's commands through the built qxub", .serialized)
struct PythonCommandsTests {
    /// A sandbox with a second platform, `other`, on this machine too (its own agent session).
    func sandbox(_ label: String) throws -> Sandbox {
        let sandbox = try Sandbox(label)
        try FileSystem.createDirectories(sandbox.directory + "/config/qxub")
        try FileSystem.writeAtomically(sandbox.directory + "/config/qxub/config.yaml", "platforms:\n  other: {}\n")
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        sandbox.environment["XDG_DATA_HOME"] = sandbox.directory + "/data"
        return sandbox
    }

    func submit(_ sandbox: Sandbox, platform: String, name: String, _ command: String) throws -> String {
        let run = try sandbox.qxub([
            "exec", "--terse", "--platform", platform, "--backend", "local", "-N", name, "--", command,
        ])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        return run.stdoutText.trimmingWhitespaceForTests()
    }

    @Test("status list: the history's newest jobs, live states grouped per platform; --limit; status summary counts")
    func listAndSummary() throws {
        let sandbox = try sandbox("statuslist")
        let failed = try submit(sandbox, platform: "local", name: "fails", "exit 3")
        let slow = try submit(sandbox, platform: "local", name: "slow", "sleep 300")
        let other = try submit(sandbox, platform: "other", name: "elsewhere", "sleep 300")
        #expect(sandbox.wait { FileSystem.exists(sandbox.directory + "/state/by-id/\(failed)/exit") })

        let list = try sandbox.qxub(["status", "list"])
        #expect(list.exit == .exited(0), "\(list.stderrText)")
        let lines = list.stdoutText.split(separator: "\n").map(String.init)
        // Newest first: `other` (the newest job's platform) before `local`, and within local, slow before fails.
        #expect(lines.first == "other: 1 job", "\(list.stdoutText)")
        let otherLine = try #require(lines.first { $0.contains(other) })
        #expect(otherLine.contains(" running ") && otherLine.contains("elsewhere"), "\(otherLine)")
        #expect(lines.contains("local: 2 jobs"), "\(list.stdoutText)")
        let slowAt = try #require(lines.firstIndex { $0.contains(slow) })
        let failedAt = try #require(lines.firstIndex { $0.contains(failed) })
        #expect(slowAt < failedAt)
        #expect(lines[failedAt].contains(" failed     3 "), "the live end and its exit status: \(lines[failedAt])")
        #expect(lines[slowAt].contains(" running    - "), "\(lines[slowAt])")

        // The end the agent reported is in the history now (a --terse job's end reaches it no other way).
        let history = try sandbox.qxub(["history"])
        #expect(history.stdoutText.split(separator: "\n").first { $0.contains(failed) }?.contains("exit 3") == true)

        let limited = try sandbox.qxub(["status", "list", "--limit", "1"])
        #expect(limited.stdoutText.split(separator: "\n").count == 3, "a header per platform, a column line, a job")
        #expect(limited.stdoutText.contains(other) && !limited.stdoutText.contains(slow), "\(limited.stdoutText)")
        let onePlatform = try sandbox.qxub(["status", "list", "--platform", "local"])
        #expect(!onePlatform.stdoutText.contains(other) && onePlatform.stdoutText.contains(slow))

        let summary = try sandbox.qxub(["status", "summary"])
        #expect(
            summary.stdoutText
                == "other: 1 job: 1 running\nlocal: 2 jobs: 1 running, 1 failed\nall: 3 jobs: 2 running, 1 failed\n",
            "\(summary.stdoutText) \(summary.stderrText)"
        )
        // `qxub status ID` (and the Python qxub's `status check ID`) work as before.
        #expect(try sandbox.qxub(["status", slow]).stdoutText.hasPrefix("\(slow): running"))
        #expect(try sandbox.qxub(["status", "check", failed, "--snakemake"]).stdoutText == "failed\n")

        // cancel --all without --platform covers the platforms of the history's live jobs, not the default only.
        let preview = try sandbox.qxub(["cancel", "--all", "--dry-run"])
        #expect(
            Set(preview.stdoutText.split(separator: "\n")) == [
                "\(slow): would be cancelled", "\(other): would be cancelled",
            ],
            "\(preview.stdoutText) \(preview.stderrText)"
        )
        let all = try sandbox.qxub(["cancel", "--all"])
        #expect(all.exit == .exited(0), "\(all.stderrText)")
        #expect(
            Set(all.stdoutText.split(separator: "\n")) == ["\(slow): cancel requested", "\(other): cancel requested"],
            "\(all.stdoutText)"
        )
    }

    @Test("cancel --all over two platforms, one unreachable: the other's jobs are cancelled, the failure said")
    func cancelAllOneUnreachable() throws {
        let sandbox = try sandbox("cancelreach")
        let slow = try submit(sandbox, platform: "local", name: "slow", "sleep 300")
        let other = try submit(sandbox, platform: "other", name: "elsewhere", "sleep 300")
        // `other` now names a cluster whose ssh is refused at once.
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "platforms:\n  other:\n    remote:\n      host: 127.0.0.1\n      ssh_options: [Port=1, ConnectTimeout=5]\n"
        )
        let all = try sandbox.qxub(["cancel", "--all"])
        #expect(all.stdoutText == "\(slow): cancel requested\n", "\(all.stdoutText) \(all.stderrText)")
        #expect(all.stderrText.hasPrefix("qxub: error: other: "), "\(all.stderrText)")
        #expect(all.exit == .exited(69), "the unreachable platform's status: \(all.stderrText)")
        _ = other
    }

    @Test("resources: a finished job's walltime and cpu time from its own record; '-' for what it could not record")
    func resourcesLocal() throws {
        let sandbox = try sandbox("resources")
        // One to two seconds of cpu (a busy loop until bash's clock has moved on twice).
        let busy = "end=$((SECONDS + 2)); while [ $SECONDS -lt $end ]; do :; done"
        let run = try sandbox.qxub(["exec", "--backend", "local", "-N", "busy", "--", busy])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let id = try #require(
            try sandbox.qxub(["history"]).stdoutText.split(separator: "\n").dropFirst().first?
                .split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first.map(String.init)
        )
        let slow = try submit(sandbox, platform: "local", name: "slow", "sleep 300")
        let resources = try sandbox.qxub(["resources", id, slow, "local-nosuch"])
        #expect(resources.exit == .exited(1), "an unknown job: \(resources.stderrText)")
        let lines = resources.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "a header and the finished job: \(resources.stdoutText)")
        #expect(lines.first == "JOB                   WALLTIME   CPU TIME   MEM PEAK  CPUS  CPU EFFICIENCY")
        let fields = try #require(lines.last?.split(separator: " ").map(String.init))
        #expect(fields.count == 6 && fields[0] == id, "\(lines)")
        #expect(["0:00:01", "0:00:02", "0:00:03"].contains(fields[1]), "walltime: \(lines)")
        #expect(["0:00:01", "0:00:02"].contains(fields[2]), "cpu time of the busy loop: \(lines)")
        // The local backend gives no cpu count and has no cgroup of the job's own.
        #expect(fields[3...] == ["-", "-", "-"], "\(lines)")
        #expect(resources.stderrText.contains("qxub: \(slow): running; what it used is known once it ends"))
        #expect(resources.stderrText.contains("qxub: local-nosuch: unknown job"), "\(resources.stderrText)")
        _ = try sandbox.qxub(["cancel", slow])
    }

    @Test("an empty history: status list and summary say so and exit 0")
    func emptyHistory() throws {
        let sandbox = try sandbox("statusempty")
        let list = try sandbox.qxub(["status", "list"])
        #expect(list.exit == .exited(0) && list.stdoutText == "the history is empty\n", "\(list.stderrText)")
        let summary = try sandbox.qxub(["status", "summary"])
        #expect(summary.exit == .exited(0) && summary.stdoutText == "the history is empty\n")
    }

    @Test(
        "the Python qxub's spellings name the nearest command and exit 64, never read as job ids",
        arguments: [
            (["cancel", "all"], "qxub: 'cancel all' is the Python qxub's spelling; use: qxub cancel --all\n"),
            (["cancel", "id", "123"], "qxub: 'cancel id 123' is the Python qxub's spelling; use: qxub cancel 123\n"),
            (
                ["cancel", "name", "train"],
                "qxub: 'cancel name train' is the Python qxub's spelling; use: qxub cancel --name train\n"
            ),
            (
                ["status", "show", "123"],
                "qxub: 'status show 123' is the Python qxub's spelling; use: qxub status 123\n"
            ),
        ]
    )
    func spellings(arguments: [String], message: String) throws {
        let sandbox = try sandbox("spelling")
        let run = try sandbox.qxub(arguments)
        #expect(run.exit == .exited(64))
        #expect(run.stderrText == message)
        #expect(run.stdoutText == "")
    }

    @Test("status list and status summary have help that says what they show")
    func help() throws {
        let sandbox = try sandbox("statushelp")
        let list = try sandbox.qxub(["status", "list", "--help"])
        #expect(list.exit == .exited(0))
        #expect(list.stdoutText.contains("live states, grouped per") && list.stdoutText.contains("--limit"))
        let summary = try sandbox.qxub(["status", "summary", "--help"])
        #expect(summary.stdoutText.contains("How many of the history's newest jobs"), "\(summary.stdoutText)")
    }
}

extension PBSBackendTests {
    @Test("status list and status summary on the PBS emulator: one qstat for the jobs the history has not seen end")
    func statusListOnPBS() throws {
        let sandbox = try sandbox("statuslist")
        sandbox.environment["XDG_DATA_HOME"] = sandbox.directory + "/data"
        func submit(_ command: String) throws -> String {
            let run = try sandbox.qxub(["exec", "--terse", "--backend", "pbspro", "--", command])
            #expect(run.exit == .exited(0), "\(run.stderrText)")
            return run.stdoutText.trimmingWhitespaceForTests()
        }
        let failed = try submit("exit 2")
        let slow = try submit("sleep 300")
        #expect(sandbox.wait { FileSystem.exists(sandbox.directory + "/state/by-id/\(failed)/exit") })
        #expect(sandbox.wait { (try? sandbox.qxub(["status", slow]))?.stdoutText.contains("running") == true })
        let list = try sandbox.qxub(["status", "list"])
        #expect(list.exit == .exited(0), "\(list.stderrText)")
        let lines = list.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.first == "local: 2 jobs", "\(list.stdoutText)")
        #expect(lines.first { $0.contains(failed) }?.contains(" failed     2 ") == true, "\(list.stdoutText)")
        #expect(lines.first { $0.contains(slow) }?.contains(" running    - ") == true, "\(list.stdoutText)")
        let summary = try sandbox.qxub(["status", "summary"])
        #expect(summary.stdoutText == "local: 2 jobs: 1 running, 1 failed\n", "\(summary.stdoutText)")
        _ = try sandbox.qxub(["cancel", slow])
    }
    @Test("resources on the PBS emulator: the job's NCPUS, cpu time and the cpu efficiency")
    func resourcesOnPBS() throws {
        let sandbox = try sandbox("resources")
        let id = try sandbox.finishedBusyPBSJob()
        let resources = try sandbox.qxub(["resources", id])
        #expect(resources.exit == .exited(0), "\(resources.stderrText)")
        let fields = try #require(
            resources.stdoutText.split(separator: "\n").last?.split(separator: " ").map(String.init)
        )
        #expect(fields.count == 6 && fields[0] == id && fields[4] == "2", "\(resources.stdoutText)")
        // One busy cpu of two: 1-2 s of cpu over 1-3 s of walltime (whole seconds from the records), 2 cpus.
        let efficiency = try #require(Int(fields[5].dropLast()), "\(resources.stdoutText)")
        #expect((15...100).contains(efficiency), "\(resources.stdoutText)")
    }
}

extension Sandbox {
    /// A PBS-emulator job of 2 CPUs that kept one busy for 2 s, once it has finished: its id.
    func finishedBusyPBSJob() throws -> String {
        environment["XDG_DATA_HOME"] = directory + "/data"
        let busy = "end=$((SECONDS + 2)); while [ $SECONDS -lt $end ]; do :; done"
        let run = try qxub(["exec", "--terse", "--backend", "pbspro", "--cpus", "2", "--", busy])
        let id = run.stdoutText.trimmingWhitespaceForTests()
        #expect(wait { (try? qxub(["status", id]))?.stdoutText.contains("finished") == true })
        return id
    }
}
