import QxubAgent
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A full disk quota on the state root's filesystem refuses a job before submission (issue 13, "Where job output
/// lives on a real cluster"): a fake `lquota` or `quota` first on the local agent's PATH says how full it is.
@Suite("quota: a full quota refuses the job before submission", .serialized)
struct QuotaTests {
    /// A sandbox whose platform `here` (the local agent) keeps its jobs under `stateRoot`, with `fakes` on PATH.
    func sandbox(_ label: String, stateRoot: String, fakes: [String: String]) throws -> (Sandbox, String) {
        let sandbox = try Sandbox(label, fakeBinaries: fakes)
        sandbox.environment["USER"] = "qxtester"
        let config = sandbox.directory + "/config.yaml"
        try FileSystem.writeAtomically(
            config,
            "defaults:\n  platform: here\nplatforms:\n  here:\n    state_root: \(stateRoot)\n"
        )
        return (sandbox, config)
    }

    /// A fake quota command printing `text`.
    static func printing(_ text: String) -> String { "cat <<'EOF'\n\(text)\nEOF" }

    static let lquotaHeader = """
        --------------------------------------------------------------------------
                   fs       Usage      Quota      Limit   iUsage   iQuota   iLimit
        --------------------------------------------------------------------------
        """

    /// The exec is refused with `message` (exit 125), and nothing was submitted.
    func expectRefused(_ sandbox: Sandbox, config: String, root: String, message: String) throws {
        let run = try sandbox.qxub(["exec", "--config", config, "--backend", "local", "--", "echo never"])
        #expect(
            run.stderrText
                == "qxub: error: \(message): the job was not submitted\n  hint: clean up there, or set the "
                + "platform's state_root (platforms.NAME.state_root in qxub's config) to a filesystem with room, "
                + "such as /scratch/{project}/{user}/.qxub\n"
        )
        #expect(run.exit == .exited(125))
        #expect(run.stdoutText.isEmpty)
        #expect(FileSystem.listDirectory(root + "/jobs").isEmpty)
        let history = try sandbox.qxub(["history", "--config", config])
        #expect(!history.stdoutText.contains("local-"), "\(history.stdoutText)")
        #expect(sandbox.jobDirectories.isEmpty)
    }

    @Test("lquota says /home is at its limit: the job is refused before submission, exit 125, no job")
    func lquotaFull() throws {
        let base = "/home/qxub-quota-full-\(getpid())"
        defer { _ = try? runCollectingOutput(["rm", "-rf", base]) }
        let lquota =
            Self.lquotaHeader + "\n  qxtester home   10.0GiB    10.0GiB    10.0GiB    84211   100000   100000\n"
        let (sandbox, config) = try sandbox(
            "quotafull",
            stateRoot: base + "/{user}/.qxub",
            fakes: ["lquota": Self.printing(lquota)]
        )
        let root = base + "/qxtester/.qxub"
        try expectRefused(
            sandbox,
            config: config,
            root: root,
            message: "the job's output directory \(root) is on /home, at its quota (10 GB used of 10 GB, says lquota)"
        )
    }

    @Test("quota -w -p says the state root's device is over its soft limit past the grace: refused, exit 125")
    func quotaGraceOver() throws {
        let base = "/tmp/qxub-quota-grace-\(getpid())"
        defer { _ = try? runCollectingOutput(["rm", "-rf", base]) }
        let root = base + "/.qxub"
        let mountinfo = try #require(FileSystem.readText("/proc/self/mountinfo"))
        let device = try #require(QuotaReport.mountSource(of: root, mountinfo: mountinfo)).source
        // Over the 9 GiB soft limit since a grace that ended in 2001; only `-w -p` gets the numbers.
        let quota = """
            [ "$*" = "-w -p" ] || { echo "unexpected arguments: $*" >&2; exit 2; }
            cat <<'EOF'
            Disk quotas for user qxtester (uid 5001):
                 Filesystem  blocks   quota   limit   grace   files   quota   limit   grace
            \(device)  9500000*  9437184 10485760 1000000000      12       0       0       0
            EOF
            exit 1
            """
        let (sandbox, config) = try sandbox("quotagrace", stateRoot: root, fakes: ["quota": quota])
        try expectRefused(
            sandbox,
            config: config,
            root: root,
            message: "the job's output directory \(root) is on \(device), over its 9.0 GB quota past the grace period "
                + "(9.1 GB used, says quota)"
        )
    }

    @Test("under its quota the job runs, and doctor shows the quota line")
    func underQuotaRuns() throws {
        let base = "/home/qxub-quota-room-\(getpid())"
        defer { _ = try? runCollectingOutput(["rm", "-rf", base]) }
        let lquota =
            Self.lquotaHeader + "\n  qxtester home    9.12GiB    10.0GiB    10.0GiB    84211   100000   100000\n"
        let (sandbox, config) = try sandbox(
            "quotaroom",
            stateRoot: base + "/{user}/.qxub",
            fakes: ["lquota": Self.printing(lquota)]
        )
        let run = try sandbox.qxub(["exec", "--config", config, "--backend", "local", "--", "echo ran"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "ran\n")
        let doctor = try sandbox.qxub(["doctor", "--config", config])
        #expect(doctor.exit == .exited(0), "\(doctor.stderrText)")
        let lines = doctor.stdoutText.split(separator: "\n").map(String.init)
        #expect(
            lines.contains("quota                 9.1 GB of 10 GB used on /home (lquota)"),
            "\(doctor.stdoutText)"
        )
    }

    @Test("a quota command that hangs is given up after its bound: the job runs, the agent log says why")
    func hangingQuotaCommand() throws {
        let base = "/home/qxub-quota-hang-\(getpid())"
        defer { _ = try? runCollectingOutput(["rm", "-rf", base]) }
        let (sandbox, config) = try sandbox(
            "quotahang",
            stateRoot: base + "/{user}/.qxub",
            fakes: ["lquota": "exec sleep 300"]
        )
        // The agent logs where it started (QXUB_STATE_DIR), before the client's hello names the state root; the
        // log needs its directory.
        try FileSystem.createDirectories(sandbox.directory + "/state", mode: 0o700)
        let started = MonotonicClock.now()
        let run = try sandbox.qxub(["exec", "--config", config, "--backend", "local", "--", "echo ran"], timeout: 60)
        let elapsed = MonotonicClock.now() - started
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "ran\n")
        // The 5 s bound and the job itself; far under the 300 s the command would take.
        #expect(elapsed < QuotaCheck.timeout + 25, "took \(elapsed) s")
        let log = FileSystem.readText(sandbox.directory + "/state/agent.log") ?? ""
        #expect(log.contains("quota: lquota did not finish within 5 s; no quota check"), "\(log)")
    }

    @Test("no quota command and unreadable output refuse nothing: the job runs")
    func unreadableQuota() throws {
        let base = "/home/qxub-quota-garbled-\(getpid())"
        defer { _ = try? runCollectingOutput(["rm", "-rf", base]) }
        let (sandbox, config) = try sandbox(
            "quotagarbled",
            stateRoot: base + "/{user}/.qxub",
            fakes: ["lquota": "echo 'lquota: quota server unreachable' >&2; exit 3"]
        )
        let run = try sandbox.qxub(["exec", "--config", config, "--backend", "local", "--", "echo ran"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "ran\n")
    }
}
