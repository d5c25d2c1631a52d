import QxubSystem
import Testing

/// Issue 13, item 6: mistakes that used to fail silently (or not at all) now say what to do, through the
/// built `qxub` and the local agent.
@Suite("Silent failures")
struct SilentFailureTests {
    @Test("an --out whose directory cannot exist is refused before submission with the path and why (78)")
    func unwritableOut() throws {
        let sandbox = try Sandbox("unwritable-out")
        let file = sandbox.directory + "/plain-file"
        try FileSystem.writeAtomically(file, "x")
        let run = try sandbox.qxub(["exec", "--backend", "local", "--out", file + "/out.txt", "--", "echo hi"])
        #expect(run.exit == .exited(78), "\(run.stderrText)")
        #expect(
            run.stderrText.contains("qxub: error: cannot write --out \(file)/out.txt: \(file) is not a directory"),
            "\(run.stderrText)"
        )
        #expect(try sandbox.qxub(["history"]).stdoutText == "no jobs yet\n", "nothing was submitted")
    }

    @Test("an unknown {variable} in --out is refused with the known ones, not made into a directory (64)")
    func unknownTemplateVariable() throws {
        let sandbox = try Sandbox("unknown-template")
        let run = try sandbox.qxub([
            "exec", "--backend", "local", "--out", sandbox.directory + "/{log_dir}/x", "--", "echo hi",
        ])
        #expect(run.exit == .exited(64), "\(run.stderrText)")
        #expect(run.stderrText.contains("unknown template variable {log_dir} in '"), "\(run.stderrText)")
        #expect(run.stderrText.contains("; known: {date}, "), "\(run.stderrText)")
        #expect(run.stderrText.contains("hint: give --log-dir DIR"), "\(run.stderrText)")
        #expect(!FileSystem.exists(sandbox.directory + "/{log_dir}"))
    }

    @Test("defaults.walltime, defaults.memory and defaults.ncpus (the Python docs' spellings) are applied")
    func pythonDefaultSpellings() throws {
        let sandbox = try Sandbox("python-spellings")
        try FileSystem.createDirectories(sandbox.directory + "/config/qxub")
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "defaults:\n  walltime: 2h\n  memory: 6GB\n  ncpus: 3\n"
        )
        let run = try sandbox.qxub(["exec", "--dry", "--backend", "pbspro", "--", "true"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText.contains("#PBS -l walltime=2:00:00\n"), "\(run.stdoutText)")
        #expect(run.stdoutText.contains("#PBS -l mem=6GB\n"), "\(run.stdoutText)")
        #expect(run.stdoutText.contains("#PBS -l ncpus=3\n"), "\(run.stdoutText)")
    }

    @Test("--tag is kept in the history: history show lists tags and output paths; --tag and --name filter")
    func tagsAndPathsInHistory() throws {
        let sandbox = try Sandbox("history-tags")
        let out = sandbox.directory + "/first.out"
        #expect(
            try sandbox.qxub([
                "exec", "--backend", "local", "-N", "align-1", "--tag", "rule=align", "--tag", "run=7", "--out", out,
                "--", "true",
            ]).exit == .exited(0)
        )
        #expect(
            try sandbox.qxub(["exec", "--backend", "local", "-N", "sort-1", "--tag", "rule=sort", "--", "true"]).exit
                == .exited(0)
        )
        #expect(try sandbox.qxub(["exec", "--backend", "local", "-N", "align-2", "--", "true"]).exit == .exited(0))

        let first = try #require(try jobID(sandbox, name: "align-1"))
        let show = try sandbox.qxub(["history", "show", "--", first])
        #expect(show.stdoutText.contains("stdout:     \(out)\n"), "\(show.stdoutText)")
        #expect(show.stdoutText.contains("tags:       rule=align, run=7\n"), "\(show.stdoutText)")
        let newest = try sandbox.qxub(["history", "show"]).stdoutText
        let state = try #require(newest.split(separator: "\n").first { $0.hasPrefix("state:") }).dropFirst(12)
        #expect(newest.contains("stderr:     \(state)/err\n"), "\(newest)")
        #expect(newest.contains("joblog:     \(state)/joblog\n"), "\(newest)")

        #expect(names(try sandbox.qxub(["history", "--tag", "rule=align"]).stdoutText) == ["align-1"])
        #expect(names(try sandbox.qxub(["history", "--tag", "rule"]).stdoutText) == ["sort-1", "align-1"])
        #expect(names(try sandbox.qxub(["history", "--name", "align-*"]).stdoutText) == ["align-2", "align-1"])
        #expect(names(try sandbox.qxub(["history", "--name", "sort-1"]).stdoutText) == ["sort-1"])
    }

    @Test("qxub exec -- '' is refused as a usage error: an empty job is not run (64)")
    func emptyCommand() throws {
        let sandbox = try Sandbox("empty-command")
        let run = try sandbox.qxub(["exec", "--backend", "local", "--", ""])
        #expect(run.exit == .exited(64), "\(run.stderrText)")
        #expect(run.stderrText.contains("the command after -- is empty"), "\(run.stderrText)")
        #expect(try sandbox.qxub(["history"]).stdoutText == "no jobs yet\n")
    }

    @Test(
        "negative values say they must be positive (64), with a space or =",
        arguments: [
            (["--time", "-5"], "--time -5: the value must be positive"),
            (["--time=-5"], "--time -5: the value must be positive"),
            (["--mem", "-1GB"], "--mem -1GB: the value must be positive"),
            (["--cpus", "-1"], "--cpus -1: the value must be a positive whole number"),
            (["--cpus=-1"], "--cpus -1: the value must be a positive whole number"),
        ]
    )
    func negativeValues(options: [String], message: String) throws {
        let sandbox = try Sandbox("negative-values")
        let run = try sandbox.qxub(["exec", "--dry", "--backend", "local"] + options + ["--", "true"])
        #expect(run.exit == .exited(64), "\(run.stderrText)")
        #expect(run.stderrText.contains(message), "\(run.stderrText)")
        #expect(!run.stderrText.contains("Missing value"), "\(run.stderrText)")
    }

    private func jobID(_ sandbox: Sandbox, name: String) throws -> String? {
        try sandbox.qxub(["history"]).stdoutText.split(separator: "\n").dropFirst()
            .first { $0.hasSuffix(" " + name) }
            .flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first.map(String.init) }
    }

    /// The NAME column of `qxub history`, newest first.
    private func names(_ listing: String) -> [String] {
        listing.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").last.map(String.init) }
    }
}
