import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 9: a group member must not be able to run code as the user through the agent's directories, and an
/// install that the remote side stops reading says why instead of dying of SIGPIPE.
///
/// The tests run as root on the "cluster" machine too, so they plant files and read modes directly.
extension RemoteTests {
    /// What a member of the user's group could have done to the agent's files.
    enum Tampering: String, Sendable, CustomStringConvertible {
        case groupWritableBin = "group-writable ~/.qxub/bin"
        case groupWritableShim = "group-writable shim"
        case foreignShim = "shim owned by another user"
        case worldWritableAgent = "world-writable agent"
        var description: String { rawValue }
    }

    func home(_ remote: Remote, _ platform: String) -> String {
        platform == "bashbox" ? remote.bashHome : remote.tcshHome
    }

    /// The permission bits and owner of `path` (following symlinks).
    func modeAndOwner(_ path: String) -> (mode: UInt32, owner: uid_t)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt32(info.st_mode) & 0o7777, info.st_uid)
    }

    /// Writes `text` at `path` as `owner` (the cluster user unless said otherwise), with `mode`.
    func plant(_ path: String, _ text: String, mode: String, ownedLike reference: String) throws {
        try FileSystem.writeAtomically(path, text, mode: 0o755)
        #expect(try runCollectingOutput(["chown", "--reference=" + reference, path]).exit == .exited(0))
        #expect(try runCollectingOutput(["chmod", mode, path]).exit == .exited(0))
    }

    @Test(
        "a group-writable or foreign shim, bin directory or agent: qxub refuses before running anything from it",
        arguments: [
            ("bashbox", Tampering.groupWritableBin), ("bashbox", .groupWritableShim), ("bashbox", .foreignShim),
            ("bashbox", .worldWritableAgent), ("tcshbox", .groupWritableBin), ("tcshbox", .foreignShim),
        ]
    )
    func tamperedAgentDirectoryRefused(platform: String, tampering: Tampering) throws {
        let remote = try remote("trust-\(platform)")
        let home = home(remote, platform)
        let install = try remote.qxub(["agent", "install", "--platform", platform])
        #expect(install.exit == .exited(0), "\(install.stderrText)")

        let shim = home + "/.qxub/bin/qxub-shim"
        let agent = home + "/.qxub/agent/" + QxubVersion.current + "/qxub-agent"
        let marker = home + "/planted-code-ran"
        let planted = "#!/bin/sh\ntouch \(marker)\necho planted\n"
        let culprit: String
        let complaint: String
        switch tampering {
        case .groupWritableBin:
            try plant(shim, planted, mode: "644", ownedLike: home)
            #expect(try runCollectingOutput(["chmod", "770", home + "/.qxub/bin"]).exit == .exited(0))
            (culprit, complaint) = (".qxub/bin", "is writable by your group or others")
        case .groupWritableShim:
            try plant(shim, planted, mode: "664", ownedLike: home)
            (culprit, complaint) = (".qxub/bin/qxub-shim", "is writable by your group or others")
        case .foreignShim:
            try plant(shim, planted, mode: "644", ownedLike: "/")  // root's, as another user's would be
            (culprit, complaint) = (".qxub/bin/qxub-shim", "is not owned by you")
        case .worldWritableAgent:
            try plant(agent, planted, mode: "777", ownedLike: home)
            (culprit, complaint) = (agent, "is writable by your group or others")
        }

        let run = try remote.qxub(["exec", "--platform", platform, "--backend", "local", "--", "echo never"])
        #expect(run.exit == .exited(69), "\(run.stderrText)")
        #expect(run.stdoutText == "")
        #expect(
            run.stderrText.contains("qxub: error: refused to start qxub-agent on \(platform): \(culprit) \(complaint)"),
            "\(run.stderrText)"
        )
        #expect(run.stderrText.contains("hint: run `qxub agent install --platform \(platform)`"), "\(run.stderrText)")
        #expect(!run.stderrText.contains("install qxub-agent on \(platform) now?"), "no offer to install over it")
        let status = try remote.qxub(["agent", "status", "--platform", platform])
        #expect(status.exit == .exited(69), "\(status.stderrText)")
        #expect(status.stderrText.contains("\(culprit) \(complaint)"), "\(status.stderrText)")
        #expect(!FileSystem.exists(marker), "the planted code never ran")

        // The install replaces the shim and the agent and repairs the modes; then jobs run again.
        let repair = try remote.qxub(["agent", "install", "--platform", platform])
        #expect(repair.exit == .exited(0), "\(repair.stderrText)")
        for directory in [".qxub", ".qxub/bin", ".qxub/agent", ".qxub/agent/" + QxubVersion.current] {
            #expect(modeAndOwner(home + "/" + directory)?.mode == 0o700, "\(directory)")
        }
        for file in [shim, agent] {
            #expect((modeAndOwner(file)?.mode ?? 0o777) & 0o022 == 0, "\(file)")
            #expect(modeAndOwner(file)?.owner == modeAndOwner(home)?.owner, "\(file)")
        }
        let again = try remote.qxub(["exec", "--platform", platform, "--backend", "local", "--", "echo ok"])
        #expect(again.exit == .exited(0), "\(again.stderrText)")
        #expect(again.stdoutText == "ok\n")
        #expect(!FileSystem.exists(marker), "the planted code never ran")
    }

    @Test(
        "agent install under umask 007 creates and repairs the agent's directories 0700",
        arguments: ["bashbox", "tcshbox"]
    )
    func installUnderGroupUmask(platform: String) throws {
        let remote = try remote("umask-\(platform)")
        let home = home(remote, platform)
        try plant(home + (platform == "bashbox" ? "/.bashrc" : "/.cshrc"), "umask 007\n", mode: "644", ownedLike: home)
        // An earlier install (or the user) left ~/.qxub open to the group.
        try FileSystem.createDirectories(home + "/.qxub/bin")
        _ = try runCollectingOutput(["chown", "-R", "--reference=" + home, home + "/.qxub"])
        _ = try runCollectingOutput(["chmod", "777", home + "/.qxub"])
        let install = try remote.qxub(["agent", "install", "--platform", platform])
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        for directory in [".qxub", ".qxub/bin", ".qxub/agent", ".qxub/agent/" + QxubVersion.current] {
            #expect(modeAndOwner(home + "/" + directory)?.mode == 0o700, "\(directory)")
        }
        let run = try remote.qxub(["exec", "--platform", platform, "--backend", "local", "--", "echo ok"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "ok\n")
    }

    @Test("agent install --dir: the directory is made 0700, and a group-writable one is refused until reinstalled")
    func installDirModes() throws {
        let remote = try remote("dirmodes")
        let directory = remote.bashHome + "/project/agents"
        let install = try remote.qxub(["agent", "install", "--platform", "bashbox", "--dir", directory])
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        #expect(modeAndOwner(directory)?.mode == 0o700)
        _ = try runCollectingOutput(["chmod", "775", directory])
        let run = try remote.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "echo never"])
        #expect(run.exit == .exited(69), "\(run.stderrText)")
        #expect(run.stderrText.contains("\(directory) is writable by your group or others"), "\(run.stderrText)")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox", "--dir", directory]).exit == .exited(0))
        #expect(modeAndOwner(directory)?.mode == 0o700)
    }

    @Test("agent install with a login file that writes to stderr: its words shown as such, the success line last")
    func installLoginFileWritesStderr() throws {
        let remote = try remote("install-chatty")
        let bashrc = "echo 'bashrc: welcome to the cluster' >&2\n"
        try plant(remote.bashHome + "/.bashrc", bashrc, mode: "644", ownedLike: remote.bashHome)
        let install = try remote.qxub(["agent", "install", "--platform", "bashbox"])
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        let lines = install.stdoutText.split(separator: "\n")
        #expect(lines.count == 1, "\(install.stdoutText)")
        let line = try #require(lines.last, "\(install.stderrText)")
        #expect(line.hasPrefix("installed qxub-agent \(QxubVersion.current) "), "\(install.stdoutText)")
        let shown = "qxub: bashbox's stderr during the install:\n  bashrc: welcome to the cluster\n"
        #expect(install.stderrText.contains(shown), "\(install.stderrText)")
    }

    @Test("agent install when a login file exits early: the remote side's words and status, never a bare 141")
    func installLoginFileExits() throws {
        let remote = try remote("install-exits")
        // Only the installer's shell leaves (its command reads the script with dd), so cleanup still works.
        let bashrc =
            "case \"$BASH_EXECUTION_STRING\" in *'dd bs=1'*) echo 'bashrc: leaving early' >&2; exit 3 ;; esac\n"
        try plant(remote.bashHome + "/.bashrc", bashrc, mode: "644", ownedLike: remote.bashHome)
        let install = try remote.qxub(["agent", "install", "--platform", "bashbox"])
        #expect(install.exit == .exited(69), "\(install.exit) \(install.stderrText)")
        #expect(
            install.stderrText.contains(
                "qxub: error: installing qxub-agent on bashbox failed: the remote side exited with status 3"
            ),
            "\(install.stderrText)"
        )
        #expect(install.stderrText.contains("bashrc: leaving early"), "\(install.stderrText)")
        #expect(install.stderrText.contains("a login file"), "\(install.stderrText)")
    }

    @Test("agent install --dir into a directory it cannot write: the remote side's words and status, never a bare 141")
    func installUnwritableDir() throws {
        let remote = try remote("install-unwritable")
        let readOnly = remote.bashHome + "/readonly"
        try FileSystem.createDirectories(readOnly)
        _ = try runCollectingOutput(["chown", "--reference=" + remote.bashHome, readOnly])
        _ = try runCollectingOutput(["chmod", "555", readOnly])
        let install = try remote.qxub(["agent", "install", "--platform", "bashbox", "--dir", readOnly + "/agent"])
        #expect(install.exit == .exited(69), "\(install.exit) \(install.stderrText)")
        #expect(
            install.stderrText.contains(
                "qxub: error: installing qxub-agent on bashbox failed: the remote side exited with status"
            ),
            "\(install.stderrText)"
        )
        #expect(install.stderrText.contains("Permission denied"), "\(install.stderrText)")
        #expect(install.stderrText.contains("qxub-install: cannot create \(readOnly)/agent"), "\(install.stderrText)")
    }
}

extension RemoteTests {
    @Test("agent install --dir on a full filesystem (a 1 MB tmpfs): No space left on device and the status, never 141")
    func installFullDir() throws {
        let remote = try remote("install-full")
        let full = remote.bashHome + "/full"
        try FileSystem.createDirectories(full)
        let mount = try runCollectingOutput(["mount", "-t", "tmpfs", "-o", "size=1m", "qxub-test-full", full])
        #expect(mount.exit == .exited(0), "this test mounts a tmpfs as root: \(mount.stderrText)")
        defer { _ = try? runCollectingOutput(["umount", full]) }
        _ = try runCollectingOutput(["chown", "--reference=" + remote.bashHome, full])
        let install = try remote.qxub(["agent", "install", "--platform", "bashbox", "--dir", full])
        #expect(install.exit == .exited(69), "\(install.exit) \(install.stderrText)")
        #expect(
            install.stderrText.contains(
                "qxub: error: installing qxub-agent on bashbox failed: the remote side exited with status 9"
            ),
            "\(install.stderrText)"
        )
        #expect(install.stderrText.contains("No space left on device"), "\(install.stderrText)")
        #expect(
            install.stderrText.contains("qxub-install: cannot write the agent into \(full)"),
            "\(install.stderrText)"
        )
    }
}
