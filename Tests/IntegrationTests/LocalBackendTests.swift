import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("qxub exec on the built-in local backend", .serialized)
struct LocalBackendTests {
    func scenarios(_ label: String) throws -> ExecScenarios {
        ExecScenarios(backend: "local", sandbox: try Sandbox(label, fakeBinaries: fakeActivationTools))
    }

    @Test("exit statuses 0 and 7; stdout and stderr kept apart") func exitCodes() throws {
        try scenarios("codes").exitCodes()
    }
    @Test("a signal death exits 128+N with a message") func signal() throws { try scenarios("signal").signal() }
    @Test("two or more arguments are an exact argv") func argv() throws { try scenarios("argv").argvIsExact() }
    @Test("output arrives byte for byte: partial lines, \\r, binary, 10 MB") func bytes() throws {
        try scenarios("bytes").byteExactOutput()
    }
    @Test("random binary output arrives unchanged") func random() throws { try scenarios("random").randomBytes() }
    @Test("--pre and --post") func prePost() throws { try scenarios("prepost").prePost() }
    @Test("hostile values arrive literally and never execute") func hostile() throws {
        try scenarios("hostile").hostileValues()
    }
    @Test("an output directory that does not exist yet is created") func missingDirectory() throws {
        try scenarios("outdir").missingOutputDirectory()
    }
    @Test("a failing conda activation stops the job with 78 and says what to fix") func conda() throws {
        try scenarios("conda").condaFailure()
    }
    @Test("modules load in order; a failing module stops the job") func modules() throws {
        try scenarios("modules").modules()
    }
    @Test("containers: a missing image stops the job; binds reach the runtime") func container() throws {
        try scenarios("container").container()
    }
    @Test("Ctrl-C cancels the running job and exits 130") func cancel() throws {
        try scenarios("cancel").cancelWhileRunning()
    }
    @Test("--terse, --quiet and --dry") func modes() throws { try scenarios("modes").terseQuietDry() }
    @Test("--array followed: [index]-tagged lines, counts per state, the failed subjob's status, attach ID[2]")
    func arrayFollowed() throws { try scenarios("arrayfollow").arrayFollowed() }
    @Test("Ctrl-C while following an array cancels the whole array once: every subjob's process group gone, 130")
    func arrayCancelled() throws {
        let scenarios = try scenarios("arraycancel")
        try scenarios.arrayCancelled()
        let directory = try #require(scenarios.sandbox.jobDirectories.first)
        let groups = (1...3).compactMap {
            FileSystem.readText(directory + "/pid.\($0)").flatMap { pid_t($0.trimmingWhitespaceForTests()) }
        }
        #expect(groups.count == 3)
        let gone = scenarios.sandbox.wait(timeout: 30) { groups.allSatisfy { kill(-$0, 0) != 0 } }
        #expect(gone, "every subjob's process group ends")
    }
    @Test("--array --terse: each subjob has its own records and output") func arrayTerse() throws {
        try scenarios("arrayterse").arrayTerse()
    }

    @Test(
        "a local array job (ID[]): status says running while a subjob runs; attach ends once all have, with the lowest failed subjob's status"
    )
    func arrayAttachWhole() throws {
        let sandbox = try Sandbox("arraywhole")
        let gate = sandbox.directory + "/gate"
        let submit = try sandbox.qxub(
            [
                "exec", "--backend", "local", "--array", "1-3", "--terse", "--",
                "while [ ! -e \(gate) ]; do sleep 0.05; done; exit $(( PBS_ARRAY_INDEX >= 2 ? PBS_ARRAY_INDEX + 4 : 0 ))",
            ],
            timeout: 60
        )
        #expect(submit.exit == .exited(0), "\(submit.stderrText)")
        let arrayID = submit.stdoutText.trimmingWhitespaceForTests()
        #expect(arrayID.hasPrefix("local-") && arrayID.hasSuffix("[]"), "\(arrayID)")
        let running = try sandbox.qxub(["status", arrayID, "--format", "json"])
        #expect(
            running.stdoutText.contains("\"status\": \"running\"")
                || running.stdoutText.contains("\"status\": \"queued\""),
            "not finished while its subjobs wait: \(running.stdoutText)"
        )
        try FileSystem.writeAtomically(gate, "")
        let attach = try sandbox.qxub(["attach", arrayID], timeout: 60)
        #expect(attach.exit == .exited(6), "subjob 2's status: \(attach.stderrText)")
        let ended = try sandbox.qxub(["status", arrayID, "--format", "exitcode"])
        #expect(ended.exit == .exited(1), "finished with a non-zero status: \(ended.stdoutText) \(ended.stderrText)")
    }

    @Test("a local array subjob sees its index as PBS and Slurm name it, and its own QXUB_JOB_ID")
    func arrayEnvironment() throws {
        let sandbox = try Sandbox("arrayenv")
        let run = try sandbox.qxub(
            [
                "exec", "--backend", "local", "--array", "4,7", "--",
                "echo $PBS_ARRAY_INDEX $SLURM_ARRAY_TASK_ID $PBS_ARRAY_ID $QXUB_JOB_ID",
            ],
            timeout: 60
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let lines = run.stdoutText.split(separator: "\n").map(String.init).sorted()
        try #require(lines.count == 2, "\(run.stdoutText)")
        let arrayID = try #require(lines[0].split(separator: " ").dropFirst(3).first.map(String.init))
        #expect(arrayID.hasPrefix("local-") && arrayID.hasSuffix("[]"), "\(arrayID)")
        let prefix = String(arrayID.dropLast(2))
        #expect(lines == ["[4] 4 4 \(arrayID) \(prefix)[4]", "[7] 7 7 \(arrayID) \(prefix)[7]"])
    }

    @Test("a second Ctrl-C stops waiting for the cancel and says how to follow up")
    func secondInterrupt() throws {
        let sandbox = try Sandbox("second")
        // The job ignores SIGTERM, so the first Ctrl-C's cancel cannot finish before the second one.
        let child = try sandbox.start(["exec", "--backend", "local", "--", "trap '' TERM; echo started; sleep 300"])
        // The first Ctrl-C once qxub follows the job (its output arrives), the second once qxub is cancelling.
        #expect(readLines(child.stdout!, count: 1, timeout: 30) == "started\n")
        kill(-child.pid, SIGINT)
        let notice = readUntil(child.stderr!, containing: "press Ctrl-C again to leave it running)\n", timeout: 30)
        #expect(notice.contains("qxub: cancelling job local-"), "\(notice)")
        kill(-child.pid, SIGINT)
        let run = collect(child, timeout: 30)
        let stderr = notice + run.stderrText
        #expect(run.exit == .exited(130), "\(stderr)")
        #expect(stderr.contains("stopped waiting for job local-"))
        #expect(stderr.contains("qxub cancel local-"))
        let pid = sandbox.jobDirectories.compactMap { FileSystem.readText($0 + "/pid") }.first.flatMap {
            pid_t($0.trimmingWhitespaceForTests())
        }
        let group = try #require(pid)
        #expect(kill(-group, 0) == 0, "the job's command ignores SIGTERM and still runs")
        // The cancel escalates to SIGKILL after 10 s even though the agent is gone.
        #expect(sandbox.wait(timeout: 20) { kill(-group, 0) != 0 }, "SIGKILL never came")
    }

    @Test("SIGTERM to qxub leaves the job running and says how to follow it")
    func terminateLeavesJob() throws {
        let sandbox = try Sandbox("sigterm")
        let child = try sandbox.start(["exec", "--backend", "local", "--", "echo started; sleep 300"])
        #expect(sandbox.wait { sandbox.jobDirectories.contains { FileSystem.exists($0 + "/started") } })
        kill(child.pid, SIGTERM)
        let run = collect(child, timeout: 30)
        #expect(run.exit == .exited(130), "\(run.stderrText)")
        #expect(run.stderrText.contains("qxub attach local-"))
        let pid = sandbox.jobDirectories.compactMap { FileSystem.readText($0 + "/pid") }.first.flatMap {
            pid_t($0.trimmingWhitespaceForTests())
        }
        let group = try #require(pid)
        #expect(kill(-group, 0) == 0, "the job must still run")
        kill(-group, SIGKILL)
    }

    @Test("a full disk as the job ends: its own exit status and the unwritable record, not 'killed from outside'")
    func fullDiskAtExit() throws {
        let sandbox = try Sandbox("fulldisk")
        let state = sandbox.directory + "/state"
        try FileSystem.createDirectories(state, mode: 0o755)
        // Room for the submission (under 64 MB free the agent refuses it, see StateRootTests); dd fills it below.
        let mount = try runCollectingOutput(["mount", "-t", "tmpfs", "-o", "size=72m", "qxub-test-full", state])
        try #require(mount.exit == .exited(0), "this test mounts a tmpfs as root: \(mount.stderrText)")
        defer { _ = try? runCollectingOutput(["umount", "-l", state]) }
        let go = sandbox.directory + "/go"
        let child = try sandbox.start([
            "exec", "--backend", "local", "--", "echo started; while [ ! -e \(go) ]; do sleep 0.05; done; exit 1",
        ])
        #expect(sandbox.wait { sandbox.jobDirectories.contains { FileSystem.exists($0 + "/started") } })
        let directory = try #require(sandbox.jobDirectories.first)
        // Fill the filesystem: dd stops at ENOSPC.
        _ = try runCollectingOutput(["dd", "if=/dev/zero", "of=" + state + "/filler", "bs=64k"])
        try FileSystem.writeAtomically(go, "")
        let run = collect(child, timeout: 30)
        #expect(run.stdoutText == "started\n")
        let message =
            "qxub: the job exited 1, but its exit record could not be written "
            + "(disk full or over quota in \(directory)?) (exit status 1)"
        #expect(run.stderrText.contains(message), "\(run.stderrText)")
        #expect(!run.stderrText.contains("killed from outside"), "\(run.stderrText)")
        #expect(run.exit == .exited(1), "\(run.stderrText)")
    }

    @Test("a closed stdout (`| head -2`) stops following at once, leaves the job running, exits 141")
    func closedStdout() throws {
        let sandbox = try Sandbox("epipe")
        let loop = "for i in $(seq 1 100000); do echo $i; sleep 0.01; done"
        let child = try sandbox.start(["exec", "--backend", "local", "--", loop])
        defer {
            // Whatever happened above, the job does not outlive the test.
            for directory in sandbox.jobDirectories {
                if let pid = FileSystem.readText(directory + "/pid").flatMap({ pid_t($0.trimmingWhitespaceForTests()) })
                {
                    kill(-pid, SIGKILL)
                }
            }
        }
        // Read two lines, as `head -2` does, and close the pipe.
        let lines = readLines(child.stdout!, count: 2, timeout: 30)
        FileDescriptor.close(child.stdout!)
        #expect(lines == "1\n2\n", "\(lines)")
        let (exit, stderr) = drainUntilExit(child, fd: child.stderr!, timeout: 30)
        #expect(exit == .exited(141), "\(stderr)")
        let attach = stderr.split(separator: "`").first { $0.hasPrefix("qxub attach ") }
        let jobID = try #require(attach?.split(separator: " ").dropFirst(2).first.map(String.init), "\(stderr)")
        #expect(jobID.hasPrefix("local-"), "\(stderr)")
        let status = try sandbox.qxub(["status", jobID])
        #expect(status.stdoutText.contains("\(jobID): running"), "the job must still run: \(status.stdoutText)")
        let cancel = try sandbox.qxub(["cancel", jobID])
        #expect(cancel.stdoutText == "\(jobID): cancel requested\n", "\(cancel.stderrText)")
    }

    @Test("status, cancel and monitor over one session each; ids also from stdin")
    func statusCancelMonitor() throws {
        let sandbox = try Sandbox("status")
        let quick = try sandbox.qxub(["exec", "--terse", "--backend", "local", "--", "exit 3"]).stdoutText
            .trimmingWhitespaceForTests()
        let slow = try sandbox.qxub(["exec", "--terse", "--backend", "local", "--", "sleep 300"]).stdoutText
            .trimmingWhitespaceForTests()
        #expect(sandbox.wait { FileSystem.exists(sandbox.directory + "/state/by-id/\(quick)/exit") })
        let status = try sandbox.qxub(["status", quick, slow, "local-nosuch"])
        #expect(status.stdoutText.contains("\(quick): finished"))
        #expect(status.stdoutText.contains("exit status 3"))
        #expect(status.stdoutText.contains("\(slow): running"))
        #expect(status.stderrText.contains("local-nosuch: unknown job"), "\(status.stderrText)")
        let snakemake = try sandbox.qxub(["status", "--format", "snakemake", quick, slow])
        #expect(snakemake.stdoutText == "failed\nrunning\n")
        // The Python qxub's spelling, as Snakemake profiles have it.
        let python = try sandbox.qxub(["status", "check", quick, "--snakemake"])
        #expect(python.exit == .exited(0) && python.stdoutText == "failed\n", "\(python.stderrText)")
        let json = try sandbox.qxub(["status", "--format", "json", quick])
        #expect(
            json.stdoutText
                == "{\"job_id\": \"\(quick)\", \"status\": \"finished\", \"host\": \"\(Environment.hostname())\", \"exit_code\": 3}\n",
            "\(json.stdoutText)"
        )
        // exitcode: 2 finished OK, 1 failed, 0 running; for several jobs a failure wins.
        #expect(try sandbox.qxub(["status", "--format", "exitcode", slow]).exit == .exited(0))
        #expect(try sandbox.qxub(["status", "--format", "exitcode", quick, slow]).exit == .exited(1))
        let cancel = try sandbox.qxub(["cancel", slow])
        #expect(cancel.exit == .exited(0), "\(cancel.stderrText)")
        #expect(cancel.stdoutText == "\(slow): cancel requested\n")
        let monitor = try runCollectingOutput(
            [BuiltProducts.qxub, "monitor", "-i", "0.5"],
            environment: sandbox.environmentList,
            stdinBytes: Array("\(quick)\n\(slow)\n".utf8),
            timeout: 60
        )
        #expect(monitor.exit == .exited(1), "one failed, one cancelled: \(monitor.stderrText)")
        #expect(monitor.stdoutText.contains("all jobs finished: 0 succeeded, 2 failed"))
    }

    @Test("monitor on a terminal: a live table of state, elapsed time and exit code, redrawn in place")
    func monitorTable() throws {
        let sandbox = try Sandbox("monitortable")
        sandbox.environment["NO_COLOR"] = nil
        let id = try sandbox.qxub(["exec", "--terse", "--backend", "local", "-N", "tabled", "--", "sleep 2; exit 4"])
            .stdoutText.trimmingWhitespaceForTests()
        // `script` gives monitor a real terminal (a pseudo-terminal), as a user's shell does.
        let run = try runCollectingOutput(
            ["script", "-qec", "\(BuiltProducts.qxub) monitor -i 0.5 \(id)", "/dev/null"],
            environment: sandbox.environmentList,
            timeout: 60
        )
        let screen = run.stdoutText
        #expect(run.exit == .exited(1), "the job failed: \(screen)")
        #expect(screen.contains("ELAPSED") && screen.contains("\u{1B}[K"), "a table, redrawn in place: \(screen)")
        let rows = screen.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map {
            String($0).replacingAll("\u{1B}[K", with: "").replacingAll("\u{1B}[31m", with: "")
                .replacingAll("\u{1B}[0m", with: "")
        }
        #expect(
            rows.contains { row in
                let columns = row.split(separator: " ")
                guard row.hasPrefix(id), let state = columns.firstIndex(of: "running") else { return false }
                return state + 1 < columns.count && elapsedSeconds(columns[state + 1]) != nil
            },
            "a running row with its elapsed time: \(rows)"
        )
        let last = rows.last { $0.hasPrefix(id) } ?? ""
        let columns = last.split(separator: " ").map(String.init)
        try #require(columns.count >= 4, "the final row: \(columns)")
        // A failure stands out: FAILED, in red unless NO_COLOR is set.
        #expect(columns[columns.count - 3] == "FAILED", "\(columns)")
        #expect(screen.contains("\u{1B}[31mFAILED\u{1B}[0m    "), "\(screen.debugDescription)")
        // How long it ran, in minutes and seconds: at least the job's own `sleep 2`.
        let ran = try #require(elapsedSeconds(columns[columns.count - 2]), "\(columns)")
        #expect(ran >= 2, "\(columns)")
        #expect(columns.last?.hasPrefix("4") == true, "exit 4: \(columns)")
    }

    /// The seconds an ELAPSED cell says (`0m07s`, `12m30s`), nil when it has another shape.
    func elapsedSeconds<Text: StringProtocol>(_ cell: Text) -> Int? {
        guard cell.hasSuffix("s"), let m = cell.firstIndex(of: "m") else { return nil }
        let seconds = cell[cell.index(after: m)..<cell.index(before: cell.endIndex)]
        guard seconds.count == 2, let minutes = Int(cell[..<m]), let value = Int(seconds), value < 60 else {
            return nil
        }
        return minutes * 60 + value
    }

    @Test("every submission lands in the history; history out/err print a job's streams")
    func history() throws {
        let sandbox = try Sandbox("history")
        sandbox.environment["XDG_DATA_HOME"] = sandbox.directory + "/data"
        #expect(
            try sandbox.qxub(["exec", "--backend", "local", "-N", "first", "--", "echo out-one; echo err-one >&2"]).exit
                == .exited(0)
        )
        #expect(try sandbox.qxub(["exec", "--backend", "local", "-N", "second", "--", "exit 4"]).exit == .exited(4))
        let list = try sandbox.qxub(["history"])
        // A header, then the newest first, submitted to the second (not a terminal here: the header still is).
        let lines = list.stdoutText.split(separator: "\n")
        #expect(lines.count == 3, "\(list.stdoutText)")
        #expect(
            lines.first?.split(separator: " ") == ["SUBMITTED", "JOB", "PLATFORM", "STATUS", "NAME"],
            "\(list.stdoutText)"
        )
        #expect(lines.last?.contains("first") == true && lines.last?.contains("exit 0") == true)
        #expect(lines[1].contains("second") && lines[1].contains("exit 4"), "\(list.stdoutText)")
        let columns = lines.last!.split(separator: " ", omittingEmptySubsequences: true)
        #expect(columns[1].split(separator: ":").count == 3, "a time with seconds: \(columns)")
        let firstID = String(columns[2])
        let out = try sandbox.qxub(["history", "out", firstID])
        #expect(out.stdoutText == "out-one\n", "\(out.stderrText)")
        let err = try sandbox.qxub(["history", "err", String(firstID.prefix(10))])
        #expect(err.stdoutText == "err-one\n", "prefix lookup: \(err.stderrText)")
        let show = try sandbox.qxub(["history", "show"])
        #expect(show.stdoutText.contains("exit 4"))
        let log = try sandbox.qxub(["history", "log", firstID])
        #expect(
            log.stdoutText.contains("qxub \(QxubVersion.current): job \(firstID)"),
            "the job log's audit block: \(log.stdoutText)"
        )
        // The agent's own record on its host (here the local one): both jobs, with their exits.
        let remote = try sandbox.qxub(["history", "--remote"])
        let remoteLines = remote.stdoutText.split(separator: "\n")
        #expect(remoteLines.count == 3, "\(remote.stdoutText) \(remote.stderrText)")
        #expect(remoteLines.first?.hasPrefix("SUBMITTED") == true, "\(remote.stdoutText)")
        #expect(remoteLines.last?.contains("exit 0") == true && remoteLines.last?.contains("first") == true)
        #expect(remoteLines[1].contains("exit 4") && remoteLines[1].contains("second"), "\(remote.stdoutText)")
        #expect(remoteLines[1].split(separator: " ")[1].split(separator: ":").count == 3, "\(remote.stdoutText)")
    }

    @Test("an id that is nowhere is unknown on stderr: snakemake says failed, exitcode 1, monitor counts it unknown")
    func unknownIDs() throws {
        let sandbox = try Sandbox("nowhere")
        let line =
            "qxub: local-nosuch: unknown job: not in this machine's history, and the agent on local does not know it"
            + " (a job submitted from elsewhere needs --platform)\n"
        let status = try sandbox.qxub(["status", "local-nosuch"])
        #expect(status.stdoutText == "" && status.stderrText == line, "\(status.stdoutText) \(status.stderrText)")
        let snakemake = try sandbox.qxub(["status", "--format", "snakemake", "local-nosuch"])
        #expect(snakemake.exit == .exited(0) && snakemake.stdoutText == "failed\n", "\(snakemake.stdoutText)")
        #expect(snakemake.stderrText == line)
        #expect(try sandbox.qxub(["status", "--format", "exitcode", "local-nosuch"]).exit == .exited(1))
        let explicit = try sandbox.qxub(["status", "--platform", "local", "local-nosuch"])
        #expect(explicit.stderrText == "qxub: local-nosuch: unknown job: the agent on local does not know it\n")
        let monitor = try sandbox.qxub(["monitor", "-i", "0.5", "local-nosuch"], timeout: 60)
        #expect(monitor.exit == .exited(1))
        #expect(monitor.stdoutText == "all jobs finished: 0 succeeded, 0 failed, 1 unknown\n", "\(monitor.stdoutText)")
        #expect(monitor.stderrText == line, "\(monitor.stderrText)")
    }

    @Test("qxet is qxub exec and qxtat is qxub status (links, as the Python qxub's commands)")
    func pythonEntryPoints() throws {
        let sandbox = try Sandbox("entrypoints")
        for name in ["qxet", "qxtat"] { #expect(symlink(BuiltProducts.qxub, sandbox.directory + "/bin/" + name) == 0) }
        let exec = try runCollectingOutput(
            [sandbox.directory + "/bin/qxet", "--backend", "local", "--", "echo via-qxet; exit 5"],
            environment: sandbox.environmentList,
            timeout: 60
        )
        #expect(exec.exit == .exited(5) && exec.stdoutText == "via-qxet\n", "\(exec.stderrText)")
        let id = try #require(
            try sandbox.qxub(["history", "show"]).stdoutText.split(separator: "\n").first?.split(separator: " ").last
        )
        let status = try runCollectingOutput(
            [sandbox.directory + "/bin/qxtat", "--format", "snakemake", String(id)],
            environment: sandbox.environmentList,
            timeout: 60
        )
        #expect(status.exit == .exited(0) && status.stdoutText == "failed\n", "\(id): \(status.stderrText)")
    }

    @Test("options the local backend cannot honour are named, not dropped in silence")
    func ignoredOptions() throws {
        let sandbox = try Sandbox("ignored")
        let run = try sandbox.qxub(["exec", "--backend", "local", "--mem", "4GB", "-q", "normal", "--", "true"])
        #expect(run.exit == .exited(0))
        #expect(run.stderrText.contains("does not enforce resources"))
        #expect(run.stderrText.contains("-q/-P were ignored"))
    }

    @Test("cancel --name and --all use the history's unfinished jobs; monitor --summary counts states")
    func cancelByNameAndAll() throws {
        let sandbox = try Sandbox("cancelname")
        sandbox.environment["XDG_DATA_HOME"] = sandbox.directory + "/data"
        let keep = try sandbox.qxub(["exec", "--terse", "--backend", "local", "-N", "keep", "--", "sleep 300"])
            .stdoutText.trimmingWhitespaceForTests()
        let train = try sandbox.qxub(["exec", "--terse", "--backend", "local", "-N", "train-7", "--", "sleep 300"])
            .stdoutText.trimmingWhitespaceForTests()
        let preview = try sandbox.qxub(["cancel", "--name", "train-*", "--dry-run"])
        #expect(preview.stdoutText == "\(train): would be cancelled\n")
        let named = try sandbox.qxub(["cancel", "--name", "train-*"])
        #expect(named.stdoutText == "\(train): cancel requested\n", "\(named.stderrText)")
        let brief = try sandbox.qxub(["exec", "--terse", "--backend", "local", "-N", "brief", "--", "sleep 2"])
            .stdoutText.trimmingWhitespaceForTests()
        let summary = try sandbox.qxub(["monitor", "--summary", "-i", "0.5", brief, train])
        let summaryLines = summary.stdoutText.split(separator: "\n")
        #expect(
            summaryLines.contains {
                $0 == "running 2" || $0 == "running 1, failed 1" || $0 == "running 1, succeeded 1"
            },
            "counts lines while the brief job runs: \(summary.stdoutText)"
        )
        #expect(summaryLines.last == "all jobs finished: 1 succeeded, 1 failed", "\(summary.stdoutText)")
        #expect(summary.exit == .exited(1))
        let everything = try sandbox.qxub(["cancel", "--all"])
        #expect(everything.stdoutText.contains("\(keep): cancel requested"), "\(everything.stdoutText)")
        #expect(!everything.stdoutText.contains(train), "the ended job is known to have ended")
        let none = try sandbox.qxub(["cancel", "--name", "nothing*"])
        #expect(none.stdoutText.contains("no unfinished jobs named nothing*"))
    }

    @Test("cancel --all asks the agent first: a --terse job that ended is not listed, and the history learns its end")
    func cancelAllLearnsEnds() throws {
        let sandbox = try Sandbox("cancelended")
        sandbox.environment["XDG_DATA_HOME"] = sandbox.directory + "/data"
        let ended = try sandbox.qxub(["exec", "--terse", "--backend", "local", "--", "true"]).stdoutText
            .trimmingWhitespaceForTests()
        // Its end, seen on the agent's side only: nothing has told the history yet.
        #expect(sandbox.wait { FileSystem.exists(sandbox.directory + "/state/by-id/\(ended)/exit") })
        let none = try sandbox.qxub(["cancel", "--all", "--dry-run"])
        #expect(none.exit == .exited(0), "\(none.stderrText)")
        #expect(none.stdoutText == "no unfinished jobs on local in the history\n", "\(none.stdoutText)")
        let history = try sandbox.qxub(["history"])
        let line = history.stdoutText.split(separator: "\n").first { $0.contains(ended) }
        #expect(line?.contains("exit 0") == true, "\(history.stdoutText)")

        let running = try sandbox.qxub(["exec", "--terse", "--backend", "local", "--", "sleep 300"]).stdoutText
            .trimmingWhitespaceForTests()
        let preview = try sandbox.qxub(["cancel", "--all", "--dry-run"])
        #expect(preview.exit == .exited(0), "\(preview.stderrText)")
        #expect(preview.stdoutText == "\(running): would be cancelled\n", "\(preview.stdoutText)")
        let cancel = try sandbox.qxub(["cancel", "--all"])
        #expect(cancel.stdoutText == "\(running): cancel requested\n", "\(cancel.stderrText)")
    }

    @Test("doctor reports the local agent")
    func doctor() throws {
        let sandbox = try Sandbox("doctor")
        let run = try sandbox.qxub(["doctor"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText.contains("agent round trip"))
        #expect(run.stdoutText.contains("qxub-agent \(QxubVersion.current)"))
    }

    @Test("without conda anywhere the job says so")
    func noConda() throws {
        let sandbox = try Sandbox("noconda")
        sandbox.environment["PATH"] = sandbox.directory + "/bin:/usr/bin:/bin"
        let run = try sandbox.qxub(["exec", "--backend", "local", "--env", "base", "--", "echo never"])
        #expect(run.exit == .exited(78))
        #expect(run.stderrText.contains("conda is not available"))
    }

    @Test(
        "bad input is refused before anything is submitted, with the accepted forms",
        arguments: [
            (["--mem", "lots"], "is not a memory size"),
            (["--time", "1:99:00"], "is not a duration"),
            (["--sif", "x.sif", "--env", "e"], "cannot be combined"),
            ([], "no command"),
            (["--cmd", "echo", "--", "extra"], "not both"),
        ]
    )
    func badInput(arguments: [String], message: String) throws {
        let sandbox = try Sandbox("badinput")
        var all = ["exec", "--backend", "local"] + arguments
        if !arguments.isEmpty && !arguments.contains("--cmd") { all += ["--", "echo"] }
        let run = try sandbox.qxub(all)
        #expect(run.exit == .exited(64), "\(run.stderrText)")
        #expect(run.stderrText.contains(message), "\(run.stderrText)")
        #expect(sandbox.jobDirectories.isEmpty)
    }

    /// Starts `qxub ARGS` in `sandbox` with a marker in its environment (its agent inherits it), and waits at most
    /// `bound` seconds for it (past the bound it is killed and its exit is nil).
    func runMarked(
        _ sandbox: Sandbox,
        bound: Double = 10,
        _ arguments: [String]
    ) throws -> (run: (exit: ProcessExit?, cpuSeconds: Double), stderr: String, marker: String) {
        let marker = "QXUB_TEST_MARKER=\(getpid())-\(Int.random(in: 0..<1_000_000_000))"
        let child = try ChildProcess.spawn(
            [BuiltProducts.qxub] + arguments,
            environment: sandbox.environmentList + [marker],
            stdin: .null,
            stdout: .null,
            stderr: .pipe
        )
        let ended = ProcessUsage.wait(for: child.pid, bound: bound)
        if ended.exit == nil {
            // qxub was killed at the bound: its agent may still hold the stderr pipe open.
            for process in processesLeft(with: marker, bound: 0) { kill(pid_t(process.pid), SIGKILL) }
        }
        let stderr = String(decoding: try FileDescriptor.readAll(child.stderr!), as: UTF8.self)
        FileDescriptor.close(child.stderr!)
        return (ended, stderr, marker)
    }

    /// Waits (up to `bound` seconds) until no process carries `marker` in its environment; returns those left.
    func processesLeft(with marker: String, bound: Double = 5) -> [(pid: Int32, command: String)] {
        let deadline = MonotonicClock.now() + bound
        while true {
            let left = FileSystem.listDirectory("/proc").compactMap { entry -> (pid: Int32, command: String)? in
                guard let pid = Int32(entry), let environ = FileSystem.read("/proc/\(entry)/environ"),
                    environ.split(separator: 0).contains(where: { $0.elementsEqual(marker.utf8) })
                else { return nil }
                let command = (FileSystem.read("/proc/\(entry)/cmdline") ?? []).map { $0 == 0 ? 0x20 : $0 }
                return (pid, String(decoding: command, as: UTF8.self))
            }
            if left.isEmpty || MonotonicClock.now() >= deadline { return left }
            usleep(20_000)
        }
    }

    @Test("a usage error found after the session opened ends it at once: exit 64, no agent left, no spin")
    func usageErrorEndsEarlySession() throws {
        let sandbox = try Sandbox("usage-session")
        let (run, stderr, marker) = try runMarked(sandbox, ["exec", "--backend", "local", "--time", "0", "--", "true"])
        #expect(run.exit == .exited(64), "\(stderr)")
        #expect(stderr.contains("'0' is zero: a job needs some time"), "\(stderr)")
        #expect(!stderr.contains("qxub-agent"), "\(stderr)")
        // qxub and the agent it reaped: a spinning agent shows here as seconds of CPU.
        #expect(run.cpuSeconds < 0.5, "qxub and its agent used \(run.cpuSeconds) s of CPU")
        #expect(processesLeft(with: marker).isEmpty, "\(processesLeft(with: marker, bound: 0))")
        #expect(sandbox.jobDirectories.isEmpty)
    }

    @Test("a usage error does not wait for an agent that has not answered yet (a slow login file)")
    func usageErrorDoesNotWaitForSilentAgent() throws {
        let sandbox = try Sandbox("usage-silent", fakeBinaries: ["silent-agent": "exec sleep 60"])
        sandbox.environment["QXUB_AGENT"] = sandbox.directory + "/bin/silent-agent"
        // Closing the session would wait 2 s for the agent to leave, then kill it; a usage error ends it at once,
        // so qxub is gone well within the bound (a failure here shows as a nil exit: killed at the bound).
        let (run, stderr, marker) = try runMarked(
            sandbox,
            bound: 1.5,
            ["exec", "--backend", "local", "--time", "0", "--", "true"]
        )
        #expect(run.exit == .exited(64), "\(stderr)")
        #expect(stderr.contains("'0' is zero"), "\(stderr)")
        #expect(processesLeft(with: marker).isEmpty, "\(processesLeft(with: marker, bound: 0))")
    }
}

@Suite("Configuration layers and the qx entry point, through the built qxub")
struct ConfigurationTests {
    /// A sandbox with a user config, a project with .qx/project.yaml and .qx/local.yaml, and a --config file.
    func layered() throws -> (Sandbox, String) {
        let sandbox = try Sandbox("config")
        let user = sandbox.directory + "/config/qxub"
        try FileSystem.createDirectories(user)
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        sandbox.environment["USER"] = "alice"
        try FileSystem.writeAtomically(
            user + "/config.yaml",
            """
            defaults:
              project: a56
              queue: normal
              mem: 8GB
              runtime: 1h
              name: "{user}-job"
              out: /scratch/{project}/{user}/{name}.out
            templates:
              log_dir: /scratch/{project}/{user}/logs
            unknown_python_key: ignored
            """
        )
        let project = sandbox.directory + "/project/sub"
        try FileSystem.createDirectories(sandbox.directory + "/project/.qx")
        try FileSystem.createDirectories(project)
        try FileSystem.writeAtomically(
            sandbox.directory + "/project/.qx/project.yaml",
            "defaults:\n  queue: express\n  cpus: 4\n"
        )
        try FileSystem.writeAtomically(sandbox.directory + "/project/.qx/local.yaml", "defaults:\n  cpus: 8\n")
        return (sandbox, project)
    }

    func dry(_ sandbox: Sandbox, in directory: String, _ arguments: [String]) throws -> String {
        let run = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory, BuiltProducts.qxub, "exec", "--dry",
                "--backend", "pbspro",
            ] + arguments + ["--", "echo"],
            environment: sandbox.environmentList
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        return run.stdoutText
    }

    @Test("system < user < project < local < --config < command line; one value per resource")
    func layering() throws {
        let (sandbox, project) = try layered()
        let script = try dry(sandbox, in: project, [])
        for line in [
            "#PBS -N alice-job", "#PBS -q express", "#PBS -P a56", "#PBS -l walltime=1:00:00", "#PBS -l mem=8GB",
            "#PBS -l ncpus=8",
        ] {
            #expect(script.contains(line + "\n"), "missing \(line)")
        }
        #expect(script.contains("/scratch/a56/alice/alice-job.out"), "templates resolve in paths")
        try FileSystem.writeAtomically(sandbox.directory + "/extra.yaml", "defaults:\n  queue: hugemem\n")
        let overridden = try dry(
            sandbox,
            in: project,
            ["--config", sandbox.directory + "/extra.yaml", "--mem", "2GB", "-N", "mine"]
        )
        #expect(overridden.contains("#PBS -q hugemem\n"))
        #expect(overridden.contains("#PBS -l mem=2GB\n"))
        #expect(
            !overridden.contains("mem=8GB"),
            "the command line replaces the config value; it is never emitted twice"
        )
        #expect(overridden.contains("#PBS -N mine\n"))
        let raw = try dry(sandbox, in: project, ["-l", "mem=3GB"])
        #expect(raw.contains("#PBS -l mem=3GB\n") && !raw.contains("mem=8GB"), "a raw -l beats the config's value")
    }

    @Test("defaults.resources and defaults.mem never both reach the job")
    func resourcesListBeatsKeyDefaults() throws {
        let (sandbox, project) = try layered()
        try FileSystem.writeAtomically(
            sandbox.directory + "/project/.qx/local.yaml",
            "defaults:\n  resources: [mem=16GB, ncpus=2]\n"
        )
        let script = try dry(sandbox, in: project, [])
        #expect(script.contains("#PBS -l mem=16GB\n"))
        #expect(!script.contains("mem=8GB"), "one value per resource")
        #expect(script.contains("#PBS -l ncpus=2\n") && !script.contains("ncpus=4"))
        let cli = try dry(sandbox, in: project, ["--mem", "1GB"])
        #expect(
            cli.contains("#PBS -l mem=1GB\n") && !cli.contains("mem=16GB"),
            "the command line's --mem replaces the list's mem="
        )
        #expect(cli.contains("#PBS -l ncpus=2\n"), "the rest of the list stays")
    }

    @Test("shortcuts: longest prefix wins, the command line beats the shortcut, which beats the config")
    func shortcuts() throws {
        let (sandbox, project) = try layered()
        #expect(
            try sandbox.qxub(["config", "shortcut", "set", "python", "--env", "base", "--mem", "2GB", "-q", "copyq"])
                .exit == .exited(0)
        )
        #expect(
            try sandbox.qxub([
                "config", "shortcut", "set", "python train.py", "--env", "pytorch", "--mem", "32GB", "--gpus", "1",
            ]).exit == .exited(0)
        )
        let bad = try sandbox.qxub(["config", "shortcut", "set", "x", "--mem", "lots"])
        #expect(bad.exit == .exited(64), "a bad value never reaches the file")
        func dryArgv(_ arguments: [String]) throws -> CollectedRun {
            try runCollectingOutput(
                [
                    "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--dry",
                    "--backend", "pbspro",
                ] + arguments,
                environment: sandbox.environmentList
            )
        }
        let long = try dryArgv(["--", "python", "train.py", "--epochs", "3"])
        #expect(long.stderrText.contains("using shortcut 'python train.py'"))
        #expect(long.stdoutText.contains("conda activate pytorch"))
        #expect(long.stdoutText.contains("#PBS -l mem=32GB\n") && long.stdoutText.contains("#PBS -l ngpus=1\n"))
        #expect(long.stdoutText.contains("python train.py --epochs 3"), "the full command is kept")
        let short = try dryArgv(["--mem", "4GB", "--", "python", "other.py"])
        #expect(
            short.stdoutText.contains("#PBS -l mem=4GB\n") && !short.stdoutText.contains("mem=2GB"),
            "the command line beats the shortcut"
        )
        #expect(short.stdoutText.contains("#PBS -q copyq\n"), "the shortcut beats the config's express")
        let context = try dryArgv(["--env", "mine", "--", "python", "train.py"])
        #expect(!context.stderrText.contains("using shortcut"), "no auto-match when a context is given")
        let missing = try dryArgv(["--shortcut", "nosuch", "--", "true"])
        #expect(missing.exit == .exited(64) && missing.stderrText.contains("python, python train.py"))
        let list = try sandbox.qxub(["config", "shortcut", "list"])
        #expect(list.stdoutText.contains("python train.py: env=pytorch"))
        #expect(try sandbox.qxub(["config", "shortcut", "rename", "python", "py"]).exit == .exited(0))
        #expect(try sandbox.qxub(["config", "shortcut", "delete", "py"]).exit == .exited(0))
        #expect(try sandbox.qxub(["config", "shortcut", "show", "py"]).exit == .exited(1))
    }

    @Test("aliases from the config, flat and hierarchical; cmd is used when no command is given")
    func aliases() throws {
        let (sandbox, project) = try layered()
        try FileSystem.writeAtomically(
            sandbox.directory + "/project/.qx/local.yaml",
            """
            aliases:
              flat: {env: dvc, queue: copyq, cmd: dvc push}
              tree:
                main: {queue: hugemem, resources: [mem=64GB]}
                subcommand: {type: module, mod: [samtools, bwa]}
                target: {cmd: make all}
            """
        )
        func dryAlias(_ arguments: [String]) throws -> CollectedRun {
            try runCollectingOutput(
                [
                    "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--dry",
                    "--backend", "pbspro",
                ] + arguments,
                environment: sandbox.environmentList
            )
        }
        let flat = try dryAlias(["--alias", "flat"])
        #expect(flat.exit == .exited(0), "\(flat.stderrText)")
        #expect(
            flat.stdoutText.contains("conda activate dvc") && flat.stdoutText.contains("#PBS -q copyq\n")
                && flat.stdoutText.contains("bash -c 'dvc push'")
        )
        let tree = try dryAlias(["--alias", "tree"])
        #expect(tree.stdoutText.contains("module load samtools") && tree.stdoutText.contains("module load bwa"))
        #expect(tree.stdoutText.contains("#PBS -l mem=64GB\n") && !tree.stdoutText.contains("mem=8GB"))
        #expect(tree.stdoutText.contains("bash -c 'make all'"))
        let unknown = try dryAlias(["--alias", "nosuch", "--", "true"])
        #expect(unknown.exit == .exited(64) && unknown.stderrText.contains("aliases: flat, tree"))
    }

    @Test(
        "--queue auto, --gpus and --internet pick queues from the platform definition; limits refuse before submission"
    )
    func queueAuto() throws {
        let (sandbox, project) = try layered()
        sandbox.environment["QXUB_PLATFORM_FILE"] = Components.repositoryRoot + "/docs/platforms/nci_gadi.yaml"
        let gpu = try dry(sandbox, in: project, ["--gpus", "1", "--cpus", "5"])
        #expect(
            gpu.contains("#PBS -q gpuvolta\n") && gpu.contains("#PBS -l ncpus=12\n")
                && gpu.contains("#PBS -l ngpus=1\n")
        )
        let online = try dry(sandbox, in: project, ["--internet", "--cpus", "1"])
        #expect(online.contains("#PBS -q copyq\n"))
        let big = try dry(sandbox, in: project, ["-q", "auto", "--mem", "600GB"])
        #expect(big.contains("#PBS -q hugemem\n"))
        // A shortcut's internet and gpu_type choose queues as the options do; templates reach storage.
        #expect(
            try sandbox.qxub(["config", "shortcut", "set", "echo", "--internet", "--volumes", "gdata/{project}"]).exit
                == .exited(0)
        )
        let shortcut = try dry(sandbox, in: project, ["--cpus", "1"])
        #expect(shortcut.contains("#PBS -q copyq\n") && shortcut.contains("#PBS -l storage=gdata/a56\n"), "\(shortcut)")
        #expect(
            try sandbox.qxub(["config", "shortcut", "set", "echo", "--gpu-type", "a100", "--gpus", "1"]).exit
                == .exited(0)
        )
        #expect(try dry(sandbox, in: project, []).contains("#PBS -q dgxa100\n"))
        #expect(try sandbox.qxub(["config", "shortcut", "delete", "echo"]).exit == .exited(0))
        let refused = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--dry", "--backend",
                "pbspro", "-q", "express", "--cpus", "5000", "--", "true",
            ],
            environment: sandbox.environmentList
        )
        #expect(refused.exit == .exited(64))
        #expect(refused.stderrText.contains("5000 CPUs exceed the limit of 3200 on queue 'express'"))
        #expect(sandbox.jobDirectories.isEmpty)
        let estimate = try sandbox.qxub(["estimate", "--cpus", "48", "--time", "2h"])
        #expect(
            estimate.stdoutText.contains("normal      192 SU") && estimate.stdoutText.contains("normalsr    192 SU"),
            "the Python qxub's figures for 48 cpus x 2 h"
        )
        // 48 CPUs are not whole 28-CPU normalbw nodes: PBS would refuse them there.
        #expect(estimate.stdoutText.hasSuffix("cheapest: normal\n") && !estimate.stdoutText.contains("gpuvolta"))
        #expect(!estimate.stdoutText.contains("normalbw"))
        let broadwell = try sandbox.qxub(["estimate", "--cpus", "28", "--time", "2h"])
        #expect(
            broadwell.stdoutText.hasPrefix("normalbw    70 SU\n")
                && broadwell.stdoutText.hasSuffix("cheapest: normalbw\n")
        )
        sandbox.environment["QXUB_PLATFORM_FILE"] = nil
        sandbox.environment["QXUB_PLATFORM_PATHS"] = sandbox.directory + "/none"
        let missing = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--dry", "-q", "auto",
                "--", "true",
            ],
            environment: sandbox.environmentList
        )
        #expect(missing.exit == .exited(64) && missing.stderrText.contains("nci_gadi.yaml"))
    }

    @Test("-l resources choose the queue, get CPUs for GPUs and meet the limits as the named options do")
    func rawResourcesReachQueueRules() throws {
        let (sandbox, project) = try layered()
        sandbox.environment["QXUB_PLATFORM_FILE"] = Components.repositoryRoot + "/docs/platforms/nci_gadi.yaml"
        let big = try dry(sandbox, in: project, ["-q", "auto", "-l", "mem=600GB"])
        #expect(big.contains("#PBS -q hugemem\n"), "\(big)")
        #expect(big.split(separator: "\n").filter { $0.contains("mem=") }.count == 1, "mem is sent once: \(big)")
        let gpu = try dry(sandbox, in: project, ["-q", "auto", "-l", "ngpus=1"])
        #expect(gpu.contains("#PBS -q gpuvolta\n") && gpu.contains("#PBS -l ncpus=12\n"), "\(gpu)")
        #expect(gpu.contains("#PBS -l ngpus=1\n") && !gpu.contains("ncpus=8"), "\(gpu)")
        let named = try dry(sandbox, in: project, ["--mem", "2GB", "-l", "mem=600GB,place=scatter", "-q", "auto"])
        #expect(named.contains("#PBS -q normal\n") && named.contains("#PBS -l mem=2GB\n"), "--mem wins over -l mem")
        #expect(named.contains("#PBS -l place=scatter\n") && !named.contains("600GB"), "\(named)")
        let refused = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--dry", "--backend",
                "pbspro", "-q", "express", "-l", "ncpus=5000", "--", "true",
            ],
            environment: sandbox.environmentList
        )
        #expect(refused.exit == .exited(64), "\(refused.stdoutText)")
        #expect(refused.stderrText.contains("5000 CPUs exceed the limit of 3200 on queue 'express'"))
        let select = try sandbox.qxub(["select-queue", "-l", "mem=600GB"])
        #expect(select.exit == .exited(0) && select.stdoutText == "hugemem\n", "\(select.stdoutText)")
        let estimate = try sandbox.qxub(["estimate", "-l", "ncpus=28", "-l", "walltime=2:00:00"])
        #expect(estimate.stdoutText.contains("normalbw    70 SU"), "\(estimate.stdoutText)\(estimate.stderrText)")
    }

    @Test("a higher layer wins whichever spelling each uses, and config list --show-origin names the value used")
    func layerPrecedenceAcrossSpellings() throws {
        let (sandbox, project) = try layered()
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "defaults:\n  resources: [mem=4GB, ncpus=1]\n"
        )
        try FileSystem.writeAtomically(
            sandbox.directory + "/project/.qx/project.yaml",
            "defaults:\n  mem: 16GB\n  cpus: 8\n"
        )
        try FileSystem.writeAtomically(sandbox.directory + "/project/.qx/local.yaml", "")
        let script = try dry(sandbox, in: project, [])
        #expect(script.contains("#PBS -l mem=16GB\n") && script.contains("#PBS -l ncpus=8\n"), "\(script)")
        #expect(!script.contains("mem=4GB") && !script.contains("ncpus=1\n"), "\(script)")
        let origins = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "config", "list",
                "--show-origin",
            ],
            environment: sandbox.environmentList
        )
        #expect(origins.stdoutText.contains("defaults.mem: 16GB  (project:"), "\(origins.stdoutText)")
        // The other way round: the project's list beats the user's keys.
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "defaults:\n  mem: 16GB\n  cpus: 8\n"
        )
        try FileSystem.writeAtomically(
            sandbox.directory + "/project/.qx/project.yaml",
            "defaults:\n  resources: [mem=4GB, ncpus=1]\n"
        )
        let reversed = try dry(sandbox, in: project, [])
        #expect(reversed.contains("#PBS -l mem=4GB\n") && reversed.contains("#PBS -l ncpus=1\n"), "\(reversed)")
        #expect(!reversed.contains("mem=16GB") && !reversed.contains("ncpus=8"), "\(reversed)")
    }

    @Test("a definition named by URL is fetched once a day into the cache, and served from it when offline")
    func definitionURLCache() throws {
        let sandbox = try Sandbox("defurl")
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        sandbox.environment["XDG_CACHE_HOME"] = sandbox.directory + "/cache"
        sandbox.environment["QXUB_PLATFORM_PATHS"] = sandbox.directory + "/none"
        try FileSystem.createDirectories(sandbox.directory + "/www")
        _ = try runCollectingOutput([
            "cp", Components.repositoryRoot + "/docs/platforms/nci_gadi.yaml", sandbox.directory + "/www/",
        ])
        // A real HTTP server on loopback, on a free port it reports itself.
        let server = try ChildProcess.spawn(
            [
                "python3", "-u", "-c",
                """
                import http.server, functools, sys
                handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
                server = http.server.HTTPServer(("127.0.0.1", 0), handler)
                print(server.server_address[1], flush=True)
                server.serve_forever()
                """, sandbox.directory + "/www",
            ],
            stdin: .null,
            stdout: .pipe,
            stderr: .null
        )
        var portText = ""
        var byte: UInt8 = 0
        while read(server.stdout!, &byte, 1) == 1 && byte != 0x0A { portText.append(Character(Unicode.Scalar(byte))) }
        let port = try #require(Int(portText))
        try FileSystem.createDirectories(sandbox.directory + "/config/qxub")
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "platforms:\n  gadi:\n    definition: http://127.0.0.1:\(port)/nci_gadi.yaml\n"
        )
        let online = try sandbox.qxub(["platform", "info", "gadi"])
        #expect(online.exit == .exited(0), "\(online.stderrText)")
        #expect(online.stdoutText.contains("gpuvolta"))
        // A URL the server does not have: the server's answer, not a stack trace, and nothing cached.
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "platforms:\n  gadi:\n    definition: http://127.0.0.1:\(port)/missing.yaml\n"
        )
        let missing = try sandbox.qxub(["platform", "info", "gadi"])
        #expect(missing.exit == .exited(69) && missing.stderrText.contains("404"), "\(missing.stderrText)")
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "platforms:\n  gadi:\n    definition: http://127.0.0.1:\(port)/nci_gadi.yaml\n"
        )
        server.signal(SIGKILL)
        _ = server.wait()
        let cache = sandbox.directory + "/cache/qxub/platforms"
        #expect(!((try? runCollectingOutput(["ls", cache]))?.stdoutText ?? "").isEmpty, "the definition was cached")
        // Fresh cache, server gone: served silently from the cache.
        let fresh = try sandbox.qxub(["platform", "info", "gadi"])
        #expect(fresh.exit == .exited(0) && !fresh.stderrText.contains("warning"))
        // Stale cache (two days old), server gone: still served, with a warning.
        _ = try runCollectingOutput(["sh", "-c", "touch -d '2 days ago' \"$0\"/*", cache])
        let stale = try sandbox.qxub(["platform", "info", "gadi"])
        #expect(stale.exit == .exited(0))
        #expect(stale.stderrText.contains("using the copy cached"))
        // No cache and no server: a clear error.
        _ = try runCollectingOutput(["rm", "-rf", cache])
        let offline = try sandbox.qxub(["platform", "info", "gadi"])
        #expect(offline.exit == .exited(69) && offline.stderrText.contains("cannot fetch the platform definition"))
    }

    @Test("the rest of the Python qxub's exec options: --tag, --log-dir, --no-notify, --default, --template, --notify")
    func pythonOptions() throws {
        let (sandbox, project) = try layered()
        let tagged = try dry(
            sandbox,
            in: project,
            [
                "--log-dir", "/logs/x", "--out", "{log_dir}/{name}.out", "--email", "me@x.org", "--no-notify", "--tag",
                "rule=align", "--tags", "a=1,b=2",
            ]
        )
        #expect(tagged.contains("/logs/x/alice-job.out"))
        #expect(!tagged.contains("#PBS -M"), "--no-notify beats --email")
        let template = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--template", "x.pbs",
                "--", "true",
            ],
            environment: sandbox.environmentList
        )
        #expect(template.exit == .exited(64) && template.stderrText.contains("--template is not supported"))
        // batch shares exec's job options, and their rules.
        try FileSystem.writeAtomically(sandbox.directory + "/jobs.txt", "true\n")
        let batchTemplate = try sandbox.qxub(["batch", "--template", "x.pbs", sandbox.directory + "/jobs.txt"])
        #expect(
            batchTemplate.exit == .exited(64) && batchTemplate.stderrText.contains("--template is not supported"),
            "\(batchTemplate.stderrText)"
        )
        #expect(try sandbox.qxub(["config", "shortcut", "set", "echo", "--env", "shortcutenv"]).exit == .exited(0))
        let plain = try dry(sandbox, in: project, ["--default"])
        #expect(!plain.contains("shortcutenv"), "--default: no context and no shortcut")
        let notify = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--dry", "--notify",
                "--", "true",
            ],
            environment: sandbox.environmentList
        )
        #expect(
            notify.stderrText.contains(
                "qxub: warning: --notify: no webhook is configured (notifications.slack.webhook_url or notifications.discord.webhook_url): nothing will be sent"
            )
        )
        let run = try sandbox.qxub(["exec", "--backend", "local", "--tag", "rule=align", "--", "true"])
        #expect(run.exit == .exited(0))
        let meta = sandbox.jobDirectories.compactMap { FileSystem.readText($0 + "/meta") }.joined()
        #expect(meta.contains("tags=rule=align"))
    }

    @Test("a broken config file is an error that names it")
    func brokenConfig() throws {
        let (sandbox, project) = try layered()
        try FileSystem.writeAtomically(sandbox.directory + "/project/.qx/local.yaml", "defaults: [unclosed\n")
        let run = try runCollectingOutput(
            ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--dry", "--", "true"],
            environment: sandbox.environmentList
        )
        #expect(run.exit == .exited(64))
        #expect(run.stderrText.contains(".qx/local.yaml is not valid YAML"))
        // config set never replaces a file it cannot parse: the user's other settings are in it.
        let set = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "config", "set", "--local",
                "defaults.queue", "normal",
            ],
            environment: sandbox.environmentList
        )
        #expect(
            set.exit == .exited(1) && set.stderrText.contains("not valid YAML, so qxub leaves it alone"),
            "\(set.stderrText)"
        )
        #expect(FileSystem.readText(sandbox.directory + "/project/.qx/local.yaml") == "defaults: [unclosed\n")
        #expect(
            !FileSystem.exists(project + "/.qx"),
            "from a subdirectory, the project's own .qx is used, not a new one"
        )
        // `remote: HOST` (a scalar) is a mistake, not a local platform.
        try FileSystem.writeAtomically(
            sandbox.directory + "/project/.qx/local.yaml",
            "platforms:\n  gadi:\n    remote: gadi.nci.org.au\n"
        )
        let scalar = try runCollectingOutput(
            [
                "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", project, BuiltProducts.qxub, "exec", "--dry", "--platform",
                "gadi", "--", "true",
            ],
            environment: sandbox.environmentList
        )
        #expect(
            scalar.exit == .exited(64)
                && scalar.stderrText.contains("platforms.gadi.remote is 'gadi.nci.org.au', not a section"),
            "\(scalar.stderrText)"
        )
    }

    @Test("qxub config set/get/list --show-origin/validate")
    func configCommands() throws {
        let sandbox = try Sandbox("configcmd")
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        #expect(try sandbox.qxub(["config", "init"]).exit == .exited(0))
        #expect(try sandbox.qxub(["config", "init"]).exit == .exited(1), "never overwrites")
        #expect(try sandbox.qxub(["config", "set", "defaults.queue", "express"]).exit == .exited(0))
        #expect(try sandbox.qxub(["config", "set", "mystery.key", "1"]).exit == .exited(0))
        #expect(try sandbox.qxub(["config", "get", "defaults.queue"]).stdoutText == "express\n")
        let missing = try sandbox.qxub(["config", "get", "defaults.nothing"])
        #expect(missing.exit == .exited(1) && missing.stderrText.contains("not set"))
        let list = try sandbox.qxub(["config", "list", "--show-origin"])
        #expect(
            list.stdoutText.contains("defaults.queue: express  (user: \(sandbox.directory)/config/qxub/config.yaml)")
        )
        let validate = try sandbox.qxub(["config", "validate"])
        #expect(validate.exit == .exited(0))
        #expect(validate.stdoutText.contains("warning: unknown key mystery.key"))
    }

    @Test("qx: the first word that is not an option starts the command (options of the command pass through)")
    func qx() throws {
        let sandbox = try Sandbox("qx")
        _ = try runCollectingOutput(["ln", "-s", BuiltProducts.qxub, sandbox.directory + "/bin/qx"])
        let run = try runCollectingOutput(
            [
                sandbox.directory + "/bin/qx", "--backend", "local", "-N", "t", "--quiet", "python3", "-c",
                "import sys; sys.exit(len(sys.argv))", "--epochs", "3",
            ],
            environment: sandbox.environmentList,
            timeout: 60
        )
        #expect(run.exit == .exited(3), "argv was [-c, --epochs, 3]: \(run.stderrText)")
    }

    @Test("qx knows every flag of exec (options without a value never swallow the command's first word)")
    func qxKnowsEveryFlag() throws {
        let sandbox = try Sandbox("qxflags")
        _ = try runCollectingOutput(["ln", "-s", BuiltProducts.qxub, sandbox.directory + "/bin/qx"])
        // exec's own description of its arguments, as argument-parser gives it.
        let dump = try sandbox.qxub(["exec", "--experimental-dump-help"])
        let names = try flagNames(fromDumpHelp: dump.stdout)
        #expect(names.contains("--internet") && names.contains("--dry"), "\(names)")
        for flag in names where !["--help", "-h", "--version"].contains(flag) {
            let run = try runCollectingOutput(
                [sandbox.directory + "/bin/qx", "--backend", "local", flag, "--dry", "echo", "hi"],
                environment: sandbox.environmentList,
                timeout: 60
            )
            #expect(
                !run.stderrText.contains("Unexpected argument") && !run.stderrText.contains("Missing value"),
                "qx \(flag) echo hi: \(run.stderrText)"
            )
        }
    }

    /// The flags (arguments without a value) in `--experimental-dump-help` JSON.
    func flagNames(fromDumpHelp json: [UInt8]) throws -> [String] {
        let parsed = try runCollectingOutput(
            [
                "python3", "-c",
                """
                import json, sys
                for a in json.load(sys.stdin)["command"]["arguments"]:
                    if a["kind"] == "flag":
                        for n in a.get("names", []):
                            print(("--" if n["kind"] == "long" else "-") + n["name"])
                """,
            ],
            stdinBytes: json
        )
        return parsed.stdoutText.split(separator: "\n").map(String.init)
    }
}
