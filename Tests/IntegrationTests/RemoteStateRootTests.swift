import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

// In the RemoteTests suite (serialized: the cluster's users and homes are shared).
extension RemoteTests {
    /// Puts `state_root` under the bash platform and `defaults.project` in the laptop's configuration.
    func withStateRoot(_ remote: Remote, _ stateRoot: String) throws {
        let path = remote.sandbox.directory + "/config/qxub/config.yaml"
        let text = try #require(FileSystem.readText(path))
        try FileSystem.writeAtomically(
            path,
            "defaults:\n  project: a00\n"
                + text.replacingAll("  bashbox:\n", with: "  bashbox:\n    state_root: \(stateRoot)\n")
        )
    }

    @Test("state_root travels over ssh: {project}, {user} and ~ expand on the cluster, where the job's files go")
    func stateRootOverSSH() throws {
        let remote = try remote("stateroot")
        _ = try remote.sshRun("qxub-bash", "rm -rf $HOME/scratch")
        defer { _ = try? remote.sshRun("qxub-bash", "rm -rf $HOME/scratch") }
        try withStateRoot(remote, "~/scratch/{project}/{user}/.qxub")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let run = try remote.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "echo hi"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "hi\n")
        let root = remote.bashHome + "/scratch/a00/\(remote.bashUser)/.qxub"
        #expect(FileSystem.listDirectory(root + "/jobs").count == 1, "\(FileSystem.listDirectory(remote.bashHome))")
        #expect(!FileSystem.exists(remote.bashHome + "/.qxub/jobs"))
        let doctor = try remote.qxub(["doctor", "--platform", "bashbox"])
        #expect(
            doctor.stdoutText.contains("job output            \(root)/jobs/ (script, records and output of each job)"),
            "\(doctor.stdoutText)"
        )
    }

    @Test("a full state root on the cluster refuses the job before submission, over ssh")
    func fullStateRootOverSSH() throws {
        let remote = try remote("fullroot")
        let small = remote.bashHome + "/small"
        _ = try remote.sshRun("qxub-bash", "mkdir -p $HOME/small")
        let mount = try runCollectingOutput([
            "mount", "-t", "tmpfs", "-o", "size=1m,mode=1777", "qxub-test-small", small,
        ])
        try #require(mount.exit == .exited(0), "this test mounts a 1 MB tmpfs as root: \(mount.stderrText)")
        defer {
            _ = try? runCollectingOutput(["umount", "-l", small])
            _ = try? remote.sshRun("qxub-bash", "rmdir $HOME/small")
        }
        try withStateRoot(remote, "~/small/.qxub")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let run = try remote.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "echo never"])
        #expect(run.exit == .exited(125), "\(run.stderrText)")
        #expect(
            run.stderrText.contains(
                "qxub: error: the job's output directory \(small)/.qxub has 1 MB free (under the 64 MB qxub needs): "
                    + "the job was not submitted\n"
            ),
            "\(run.stderrText)"
        )
        #expect(run.stdoutText.isEmpty)
        #expect(!FileSystem.exists(small + "/.qxub/jobs"))
        let doctor = try remote.qxub(["doctor", "--platform", "bashbox"])
        #expect(doctor.stdoutText.contains("free space            1 MB free at \(small)/.qxub"), "\(doctor.stdoutText)")
    }
}
