import QxubSystem
import Testing

/// Issue 13's multi-node commands against docs/platforms/nci_gadi.yaml, through the built qxub.
@Suite("Multi-node jobs, per-node limits, Gadi charging and qxub validate, through the built qxub")
struct QueueNodeTests {
    /// A sandbox with the shipped Gadi definition and an empty configuration (plus `shortcuts`, as JSON).
    func gadi(shortcuts: String? = nil) throws -> Sandbox {
        let sandbox = try Sandbox("queues")
        sandbox.environment["QXUB_PLATFORM_FILE"] = Components.repositoryRoot + "/docs/platforms/nci_gadi.yaml"
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        try FileSystem.createDirectories(sandbox.directory + "/config/qxub")
        if let shortcuts {
            try FileSystem.writeAtomically(sandbox.directory + "/config/qxub/shortcuts.json", shortcuts)
        }
        return sandbox
    }

    func dry(_ sandbox: Sandbox, _ arguments: [String]) throws -> CollectedRun {
        try sandbox.qxub(["exec", "--dry", "--backend", "pbspro"] + arguments + ["--", "true"])
    }

    @Test(
        "exec --dry: a multi-node job of whole nodes is sent; one PBS would refuse is refused with the nearest request"
    )
    func execMultiNode() throws {
        let sandbox = try gadi()
        let twoNodes = try dry(sandbox, ["--cpus", "96", "--mem", "380GB", "-q", "normal"])
        #expect(twoNodes.exit == .exited(0), "\(twoNodes.stderrText)")
        #expect(twoNodes.stdoutText.contains("#PBS -q normal\n") && twoNodes.stdoutText.contains("#PBS -l ncpus=96\n"))
        #expect(twoNodes.stdoutText.contains("#PBS -l mem=380GB\n"), "\(twoNodes.stdoutText)")
        let sapphire = try dry(sandbox, ["--cpus", "208", "--mem", "1000GB", "-q", "normalsr"])
        #expect(sapphire.exit == .exited(0), "\(sapphire.stderrText)")
        let auto = try dry(sandbox, ["--cpus", "208", "--mem", "1000GB", "-q", "auto"])
        #expect(auto.exit == .exited(0) && auto.stdoutText.contains("#PBS -q normalsr\n"), "\(auto.stderrText)")
        let raw = try dry(sandbox, ["-l", "ncpus=96,mem=380GB", "-q", "normal"])
        #expect(raw.exit == .exited(0), "-l spells the same request: \(raw.stderrText)")

        let uneven = try dry(sandbox, ["--cpus", "50", "-q", "normal"])
        #expect(uneven.exit == .exited(64) && uneven.stdoutText.isEmpty)
        #expect(
            uneven.stderrText
                == "qxub: error: 50 CPUs on queue 'normal' span more than one node: ask for 48 or 96\n"
                + "  hint: queues that fit: normalsr, expresssr (or --queue auto)\n"
        )
        let crowded = try dry(sandbox, ["--cpus", "48", "--mem", "380GB", "-q", "normal"])
        #expect(crowded.exit == .exited(64))
        #expect(
            crowded.stderrText.hasPrefix(
                "qxub: error: 380GB of memory on queue 'normal' exceed 190GB per node for 48 CPUs on 1 node: ask for at most 190GB, or 96 CPUs (2 nodes)\n"
            ),
            "\(crowded.stderrText)"
        )
        #expect(sandbox.jobDirectories.isEmpty)
    }

    @Test("select-queue picks a queue that can run the request: a rule's queue that cannot gives way")
    func selectQueue() throws {
        let sandbox = try gadi()
        let cases: [([String], String)] = [
            (["--cpus", "208", "--mem", "1000GB"], "normalsr ncpus=208\n"),
            (["--cpus", "96", "--mem", "380GB"], "normalsr ncpus=96\n"),
            (["--cpus", "50"], "normalsr ncpus=50\n"),
            (["--cpus", "96"], "normal ncpus=96\n"),
            (["-l", "ncpus=208", "-l", "mem=1000GB"], "normalsr ncpus=208\n"),
        ]
        for (arguments, expected) in cases {
            let run = try sandbox.qxub(["select-queue"] + arguments)
            #expect(run.exit == .exited(0) && run.stdoutText == expected, "\(arguments): \(run.stdoutText)")
        }
    }

    @Test("estimate charges memory as Gadi does: 1 CPU with 300GB is not 1 SU")
    func estimateChargesMemory() throws {
        let sandbox = try gadi()
        let run = try sandbox.qxub(["estimate", "--cpus", "1", "--mem", "300GB", "--time", "30m"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(
            run.stdoutText
                == """
                hugemembw   5 SU
                hugemem     15 SU
                megamembw   20 SU
                normalsr    62 SU
                expresssr   187 SU
                cheapest: hugemembw

                """
        )
        let normal = try sandbox.qxub(["estimate", "--cpus", "1", "--mem", "300GB", "--time", "30m", "-q", "normal"])
        #expect(normal.exit == .exited(64) && normal.stderrText.contains("no queue of gadi can run this request"))
        let wide = try sandbox.qxub(["estimate", "--cpus", "48", "--time", "2h"])
        #expect(wide.stdoutText.hasPrefix("normal      192 SU\nnormalsr    192 SU\n"), "\(wide.stdoutText)")
        #expect(!wide.stdoutText.contains("normalbw"), "48 CPUs are not whole 28-CPU nodes")
    }

    @Test("validate: the queue, nodes and charge, then ok (0); or every refusal with the nearest request (64)")
    func validate() throws {
        let sandbox = try gadi(shortcuts: #"{"mpirun": {"resources": ["ncpus=50"], "queue": "normal"}}"#)
        let ok = try sandbox.qxub(["validate", "--cpus", "96", "--mem", "380GB", "--time", "2h", "-q", "normal"])
        #expect(ok.exit == .exited(0), "\(ok.stderrText)")
        #expect(
            ok.stdoutText
                == """
                queue: normal
                nodes: 2 (of 48 CPUs, 190GB each)
                cpus: 96, memory: 380GB
                charge: 384 SU for 2:00:00
                ok

                """
        )
        let auto = try sandbox.qxub(["validate", "-l", "ncpus=208,mem=1000GB", "--time", "2h"])
        #expect(auto.exit == .exited(0) && auto.stdoutText.hasPrefix("queue: normalsr (auto)\nnodes: 2 "))
        #expect(auto.stdoutText.contains("charge: 832 SU for 2:00:00\nok\n"), "\(auto.stdoutText)")
        let refused = try sandbox.qxub([
            "validate", "--cpus", "50", "--mem", "600GB", "--time", "60h", "-q", "normal",
        ])
        #expect(refused.exit == .exited(64))
        #expect(refused.stdoutText == "queue: normal\nnodes: 2 (of 48 CPUs, 190GB each)\ncpus: 50, memory: 600GB\n")
        #expect(
            refused.stderrText
                == """
                qxub: error: 50 CPUs on queue 'normal' span more than one node: ask for 48 or 96
                qxub: error: 600GB of memory on queue 'normal' exceed 190GB per node for 50 CPUs on 2 nodes: ask for at most 380GB, or 192 CPUs (4 nodes)
                qxub: error: a walltime of 60:00:00 exceeds the maximum of 48:00:00 for 50 CPUs on queue 'normal': ask for at most 48:00:00
                  hint: no queue of gadi fits this request: ask for less

                """
        )
        // A shortcut's resources and queue count, as exec applies them: by the command, or by name.
        for arguments in [["--", "mpirun", "./solver"], ["--shortcut", "mpirun"]] {
            let preset = try sandbox.qxub(["validate"] + arguments)
            #expect(preset.exit == .exited(64), "\(arguments)")
            #expect(preset.stderrText.contains("50 CPUs on queue 'normal' span more than one node"), "\(arguments)")
        }
        let unknown = try sandbox.qxub(["validate", "-q", "nosuch"])
        #expect(unknown.exit == .exited(64))
        #expect(
            unknown.stderrText.hasPrefix(
                "qxub: error: queue 'nosuch' is not in the definition gadi, so its limits are unknown\n"
            )
        )
        let help = try sandbox.qxub(["validate", "--help"])
        #expect(help.exit == .exited(0) && help.stdoutText.contains("OVERVIEW: Check a job's resources"))
        #expect(help.stdoutText.contains("--cpus") && help.stdoutText.contains("--platform"))
    }
}
