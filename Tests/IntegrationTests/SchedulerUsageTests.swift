import QxubSystem
import Testing

/// `qxub resources` reads the scheduler's own records (`qstat -xf` resources_used, `sacct`) through the agent.
extension PBSBackendTests {
    @Test("resources on the PBS emulator: qstat -xf's resources_used win; with history off the job's own record")
    func resourcesFromScheduler() throws {
        let sandbox = try sandbox("schedusage")
        let id = try sandbox.finishedBusyPBSJob()

        let resources = try sandbox.qxub(["resources", id])
        let qstat = try runCollectingOutput(["qstat", "-xf", id], environment: sandbox.environmentList)
        #expect(resources.exit == .exited(0), "\(resources.stderrText)")
        func used(_ name: String) -> Substring? {
            qstat.stdoutText.split(separator: "\n").first { $0.contains("resources_used.\(name) = ") }?
                .split(separator: " ").last
        }
        // The emulator samples cput once a second, as OpenPBS's mom does: a zero sample gives way to the
        // job's own cpu time (the job records no memory peak of its own here: no cgroup names the job).
        let cputSampled = try #require(used("cput"), "\(qstat.stdoutText)") != "00:00:00"
        #expect(
            resources.stderrText
                == "qxub: \(id): from the scheduler's records: walltime, "
                + (cputSampled
                    ? "cpu time, mem peak, cpus\n" : "mem peak, cpus; from the job's own record: cpu time\n"),
            "\(qstat.stdoutText)"
        )
        // The walltime shown is the scheduler's (the emulator reports it as OpenPBS does: HH:MM:SS).
        let walltime = try #require(used("walltime"), "\(qstat.stdoutText)")
        let fields = try #require(resources.stdoutText.split(separator: "\n").last?.split(separator: " "))
        #expect(fields.count == 6 && fields[0] == id && fields[4] == "2", "\(resources.stdoutText)")
        #expect("0" + fields[1] == walltime, "\(resources.stdoutText) against \(walltime)")

        // History off (job_history_enable = False): the scheduler has forgotten the job.
        try FileSystem.writeAtomically(sandbox.directory + "/pbs/job_history_off", "")
        let forgotten = try sandbox.qxub(["resources", id])
        #expect(forgotten.exit == .exited(0), "\(forgotten.stderrText)")
        #expect(
            forgotten.stderrText
                == "qxub: \(id): from the job's own record: the scheduler no longer has job \(id) (PBS keeps no job history here)\n"
        )
        let own = try #require(forgotten.stdoutText.split(separator: "\n").last?.split(separator: " "))
        #expect(own.count == 6 && own[0] == id && own[4] == "2", "the job's own NCPUS: \(forgotten.stdoutText)")
    }
}

extension PBSBackendTests {
    @Test("resources through an agent without the capability 'usage': says to install the agent, shows the job's own")
    func resourcesOlderAgent() throws {
        let sandbox = try sandbox("oldagent")
        sandbox.environment["XDG_DATA_HOME"] = sandbox.directory + "/data"
        let run = try sandbox.qxub(["exec", "--terse", "--backend", "pbspro", "--cpus", "2", "--", "true"])
        let id = run.stdoutText.trimmingWhitespaceForTests()
        #expect(sandbox.wait { (try? sandbox.qxub(["status", id]))?.stdoutText.contains("finished") == true })
        // The real agent behind a wrapper that drops 'usage' from its hello.
        sandbox.environment["QXUB_REAL_AGENT"] = sandbox.environment["QXUB_AGENT"]
        sandbox.environment["QXUB_DROP_CAPABILITY"] = "usage"
        sandbox.environment["QXUB_AGENT"] = Components.repositoryRoot + "/Tests/Support/agent-without.py"
        let resources = try sandbox.qxub(["resources", id])
        #expect(resources.exit == .exited(0), "\(resources.stderrText)")
        #expect(
            resources.stderrText
                == "qxub: local: this agent does not report the scheduler's records: qxub agent install --platform local\n"
        )
        let fields = try #require(resources.stdoutText.split(separator: "\n").last?.split(separator: " "))
        #expect(
            fields.count == 6 && fields[0] == id && fields[4] == "2",
            "the job's own NCPUS: \(resources.stdoutText)"
        )
    }
}

extension SlurmBackendTests {
    @Test("resources on Slurm without accounting storage: says sacct has no records and shows the job's own")
    func resourcesWithoutAccounting() throws {
        let sandbox = try sandbox("schedusage")
        let run = try sandbox.qxub(["exec", "--terse", "--backend", "slurm", "--", "true"])
        let id = run.stdoutText.trimmingWhitespaceForTests()
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(
            sandbox.wait(timeout: 60) { (try? sandbox.qxub(["status", id]))?.stdoutText.contains("finished") == true }
        )
        let sacct = try runCollectingOutput(["sacct", "-j", id, "-P", "-n"], environment: sandbox.environmentList)
        let resources = try sandbox.qxub(["resources", id])
        #expect(resources.exit == .exited(0), "\(resources.stderrText)")
        let fields = try #require(resources.stdoutText.split(separator: "\n").last?.split(separator: " "))
        #expect(fields.count == 6 && fields[0] == id, "\(resources.stdoutText)")
        // This lane's Slurm has no slurmdbd (Tests/Support/slurm.sh: AccountingStorageType=accounting_storage/none).
        #expect(sacct.exit == .exited(1) && sacct.stderrText.contains("Slurm accounting storage is disabled"))
        #expect(
            resources.stderrText
                == "qxub: \(id): from the job's own record: the scheduler's records of job \(id) cannot be read (Slurm accounting storage is disabled)\n"
        )
    }
}
