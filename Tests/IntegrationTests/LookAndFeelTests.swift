import QxubClient
import QxubSystem
import Testing

/// The status line's colour on a terminal, `qxub monitor`'s mark for failed jobs, the completions' values and
/// the manual page, through the built binaries as a user meets them.
@Suite("Look and feel: colour, monitor's failures, completions, man qxub")
struct LookAndFeelTests {
    static let green = "\u{1B}[32mqxub: job "
    static let red = "\u{1B}[31mqxub: job "

    /// Runs `qxub exec --backend local -- COMMAND` on a terminal of the test's own; returns the screen.
    func onTerminal(_ command: String, extra: [String: String] = [:]) throws -> (ProcessExit?, String) {
        let sandbox = try Sandbox("look-tty")
        // The runner's own NO_COLOR must not decide the test.
        sandbox.environment["NO_COLOR"] = nil
        for (key, value) in extra { sandbox.environment[key] = value }
        let session = try TerminalHarness(
            [BuiltProducts.qxub, "exec", "--backend", "local", "--", command],
            environment: sandbox.environmentList
        )
        let exit = session.waitForExit(timeout: 60)
        return (exit, session.text)
    }

    @Test("on a terminal the end line is green for exit status 0 and red for a failure")
    func colourOnATerminal() throws {
        let (ok, okScreen) = try onTerminal("true")
        #expect(ok == .exited(0), "\(okScreen)")
        #expect(okScreen.contains(Self.green), "\(okScreen.debugDescription)")
        #expect(okScreen.contains("finished with exit status 0 after "), "\(okScreen.debugDescription)")
        let (failed, failedScreen) = try onTerminal("exit 3")
        #expect(failed == .exited(3), "\(failedScreen)")
        #expect(failedScreen.contains(Self.red), "\(failedScreen.debugDescription)")
    }

    @Test("NO_COLOR set (to anything but \"\") keeps the terminal's lines plain: the same words, no colour")
    func noColor() throws {
        let (exit, screen) = try onTerminal("true", extra: ["NO_COLOR": "1"])
        #expect(exit == .exited(0), "\(screen)")
        #expect(screen.contains("qxub: job "), "\(screen.debugDescription)")
        #expect(screen.contains("finished with exit status 0 after "), "\(screen.debugDescription)")
        #expect(!screen.contains("\u{1B}[3"), "no colour escapes: \(screen.debugDescription)")
    }

    @Test("stderr on a pipe gets no status line and no escapes")
    func pipe() throws {
        let sandbox = try Sandbox("look-pipe")
        let run = try sandbox.qxub(["exec", "--backend", "local", "--", "exit 3"])
        #expect(run.exit == .exited(3), "\(run.stderrText)")
        #expect(!run.stderrText.contains("\u{1B}"), "\(run.stderrText.debugDescription)")
        #expect(!run.stderrText.contains("finished with exit status"), "\(run.stderrText)")
    }

    @Test("monitor marks a failed job FAILED with its exit status; one that succeeded stays `finished`")
    func monitorMarksFailures() throws {
        let sandbox = try Sandbox("look-monitor")
        let failed = try sandbox.qxub(["exec", "--terse", "--backend", "local", "--", "exit 3"]).stdoutText
            .trimmingWhitespaceForTests()
        let monitor = try sandbox.qxub(["monitor", "-i", "0.5", failed])
        #expect(monitor.exit == .exited(1), "\(monitor.stderrText)")
        #expect(
            monitor.stdoutText == "\(failed): FAILED, exit status 3\nall jobs finished: 0 succeeded, 1 failed\n",
            "\(monitor.stdoutText)"
        )
        let ok = try sandbox.qxub(["exec", "--terse", "--backend", "local", "--", "true"]).stdoutText
            .trimmingWhitespaceForTests()
        let good = try sandbox.qxub(["monitor", "-i", "0.5", ok])
        #expect(good.exit == .exited(0), "\(good.stderrText)")
        #expect(good.stdoutText == "\(ok): finished, exit status 0\nall jobs finished: 1 succeeded, 0 failed\n")
    }

    /// A sandbox with two configured platforms and the Gadi definition, and qxub's docs installed under
    /// `prefix` by install/install-docs.sh (completions and the manual page).
    func installed() throws -> (Sandbox, prefix: String) {
        let sandbox = try Sandbox("look-docs")
        try FileSystem.createDirectories(sandbox.directory + "/home/.config/qxub", mode: 0o755)
        try FileSystem.writeAtomically(
            sandbox.directory + "/home/.config/qxub/config.yaml",
            "platforms:\n  gadi:\n    remote:\n      host: gadi.example\n  hpc2:\n    remote:\n      host: hpc2.example\n",
            mode: 0o644
        )
        sandbox.environment["QXUB_PLATFORM_FILE"] = Components.repositoryRoot + "/docs/platforms/nci_gadi.yaml"
        // qx is a link to qxub, as install.sh makes it.
        try FileSystem.symlink(BuiltProducts.qxub, at: sandbox.directory + "/bin/qxub")
        try FileSystem.symlink("qxub", at: sandbox.directory + "/bin/qx")
        let prefix = sandbox.directory + "/prefix"
        let install = try runCollectingOutput(
            [
                "bash", Components.repositoryRoot + "/install/install-docs.sh", prefix, sandbox.directory + "/bin/qxub",
                BuiltProducts.directory + "/generate-manual",
            ],
            environment: sandbox.environmentList,
            timeout: 60
        )
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        return (sandbox, prefix)
    }

    /// What the installed bash completion offers for `words` (the last one is being completed), run as
    /// bash runs it on TAB: COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT and the function's three arguments.
    func offered(_ words: [String], sandbox: Sandbox, prefix: String) throws -> [String] {
        let command = words[0] == "qx" ? "qx" : "qxub"
        let script = """
            shopt -s extglob
            # Paths complete relative to the current directory: the sandbox's.
            cd '\(sandbox.directory)'
            source "$1"
            shift
            COMP_WORDS=("$@")
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            COMP_LINE="${COMP_WORDS[*]}"
            COMP_POINT=${#COMP_LINE}
            _\(command) "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let first = sandbox.directory + "/bin/" + words[0]
        let run = try runCollectingOutput(
            ["bash", "-c", script, "bash", prefix + "/share/bash-completion/completions/" + command, first]
                + words.dropFirst(),
            environment: sandbox.environmentList,
            timeout: 30
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        return run.stdoutText.split(separator: "\n").map(String.init)
    }

    @Test(
        "bash completion offers values: platforms, queues of the platform's definition, backends, formats, paths; qx too",
        arguments: [
            (["qxub", "exec", "--platform", ""], ["gadi", "hpc2", "local"]),
            (["qxub", "status", "list", "--platform", "h"], ["hpc2"]),
            (
                ["qxub", "exec", "--platform", "gadi", "-q", ""],
                [
                    "auto", "normal", "express", "normalbw", "expressbw", "normalsr", "expresssr", "hugemem",
                    "hugemembw", "megamem", "megamembw", "gpuvolta", "dgxa100", "copyq",
                ]
            ),
            (["qxub", "exec", "--queue", "gpu"], ["gpuvolta"]),
            (["qxub", "exec", "--backend", ""], ["local", "pbspro", "slurm"]),
            (["qxub", "status", "check", "--format", ""], ["human", "json", "snakemake", "exitcode"]),
            (["qxub", "exec", "--out", "prefix/share/man/man1/q"], ["prefix/share/man/man1/qxub.1"]),
            (["qx", "--platform", ""], ["gadi", "hpc2", "local"]),
            (["qx", "--backend", "s"], ["slurm"]),
        ]
    )
    func completions(words: [String], expected: [String]) throws {
        let (sandbox, prefix) = try installed()
        #expect(try offered(words, sandbox: sandbox, prefix: prefix) == expected)
    }

    @Test("the manual page is installed under the prefix and man renders it with the subcommands")
    func manualPage() throws {
        let (sandbox, prefix) = try installed()
        let page = prefix + "/share/man/man1/qxub.1"
        #expect(FileSystem.exists(page))
        var environment = sandbox.environmentList
        environment.append("MANWIDTH=100")
        let man = try runCollectingOutput(["man", "-l", page], environment: environment, timeout: 30)
        #expect(man.exit == .exited(0), "\(man.stderrText)")
        // Each subcommand is an entry of its own: its name first on a line (alone when it is long).
        let entries = Set(man.stdoutText.split(separator: "\n").compactMap { $0.split(separator: " ").first })
        for subcommand in ["exec", "status", "monitor", "history", "platform", "select-queue", "config"] {
            #expect(entries.contains(Substring(subcommand)), "no \(subcommand) in the page")
        }
        #expect(man.stdoutText.contains("Submit a command as a batch job"))
    }

    @Test("a hint for a missing platform definition points at the installed copy, never at docs/")
    func hintsPointAtInstalledFiles() throws {
        let (sandbox, prefix) = try installed()
        sandbox.environment["QXUB_PLATFORM_FILE"] = nil
        // qxub finds PREFIX from the binary it runs as (/proc/self/exe), so this one is a copy, not a link.
        try FileSystem.createDirectories(prefix + "/bin", mode: 0o755)
        let copy = try runCollectingOutput(["cp", BuiltProducts.qxub, prefix + "/bin/qxub"], timeout: 60)
        #expect(copy.exit == .exited(0), "\(copy.stderrText)")
        let installedRun = try runCollectingOutput(
            [prefix + "/bin/qxub", "select-queue", "--cpus", "1"],
            environment: sandbox.environmentList,
            timeout: 60
        )
        #expect(installedRun.exit == .exited(64), "\(installedRun.stderrText)")
        #expect(
            installedRun.stderrText.contains(
                "copy \(prefix)/share/qxub/platforms/nci_gadi.yaml to ~/.config/qxub/platforms/ and adapt it"
            ),
            "\(installedRun.stderrText)"
        )
        #expect(FileSystem.exists(prefix + "/share/qxub/platforms/nci_gadi.yaml"))
        // Without the shipped files (a qxub run from the build): how to write one, and where to read about it.
        let bare = try sandbox.qxub(["select-queue", "--cpus", "1"])
        #expect(bare.exit == .exited(64), "\(bare.stderrText)")
        #expect(bare.stderrText.contains("`qxub help platform`"), "\(bare.stderrText)")
        #expect(!bare.stderrText.contains("docs/") && !installedRun.stderrText.contains("docs/"))
        let help = try sandbox.qxub(["help", "platform"])
        #expect(help.stdoutText.contains("PREFIX/share/qxub/platforms"), "\(help.stdoutText)")
    }

    /// `qxub exec` on a terminal of a job the PBS emulator cannot start (more CPUs than it has: "Can Never Run:
    /// Insufficient ..."), once PBS's reason is on the screen; `NO_COLOR` as given. The sandbox lives as long as
    /// the caller keeps it.
    func queuedOnPBS(_ label: String, noColor: String?) throws -> (Sandbox, TerminalHarness) {
        let sandbox = try Sandbox(label, fakeBinaries: fakeActivationTools, extraPath: [Components.pbsEmulatorBin])
        sandbox.environment["PBS_EMU_HOME"] = sandbox.directory + "/pbs"
        sandbox.environment["PBS_EMU_JOB_HOME"] = sandbox.directory + "/home"
        sandbox.environment["NO_COLOR"] = noColor
        sandbox.cleanup.append([
            "python3", Components.repositoryRoot + "/Tests/Support/pbs-emulator/pbsemu.py", "reset",
        ])
        let session = try TerminalHarness(
            [BuiltProducts.qxub, "exec", "--backend", "pbspro", "--cpus", "9999", "--", "true"],
            environment: sandbox.environmentList
        )
        #expect(session.waitFor("Insufficient amount of resource: ncpus", timeout: 60), "\(session.text)")
        return (sandbox, session)
    }

    @Test("a job PBS cannot start yet: a yellow queued line with a spinner, the time and PBS's reason")
    func queuedReasonFromPBS() throws {
        let (sandbox, session) = try queuedOnPBS("look-pbs", noColor: nil)
        #expect(session.text.contains("\u{1B}[33mqxub: job "), "yellow: \(session.text.debugDescription)")
        #expect(
            StatusLine.spinnerFrames.contains { session.text.contains($0 + " \u{1B}[33mqxub: job ") },
            "a spinner before the line: \(session.text.debugDescription)"
        )
        #expect(session.text.contains(" queued ("), "\(session.text)")
        try session.type("\u{03}")
        #expect(session.waitForExit(timeout: 60) != nil, "\(session.text)")
        withExtendedLifetime(sandbox) {}
    }

    @Test("NO_COLOR on a terminal: a queued job's reason is a plain line, no spinner, nothing rewritten")
    func queuedReasonPlain() throws {
        let (sandbox, session) = try queuedOnPBS("look-pbs-plain", noColor: "1")
        #expect(session.text.contains(" queued (Can Never Run: "), "\(session.text)")
        #expect(!session.text.contains("\u{1B}"), "no escapes: \(session.text.debugDescription)")
        #expect(!StatusLine.spinnerFrames.contains { session.text.contains($0) }, "\(session.text.debugDescription)")
        try session.type("\u{03}")
        #expect(session.waitForExit(timeout: 60) != nil, "\(session.text)")
        withExtendedLifetime(sandbox) {}
    }
}
