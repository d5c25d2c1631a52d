import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A platform's `state_root`: where job state and output live on the cluster, and the refusal of a submission
/// into a full filesystem (issue 13, "Where job output lives on a real cluster").
@Suite("state_root: where job output lives", .serialized)
struct StateRootTests {
    /// A sandbox whose platform `here` (the local agent) keeps its jobs under `stateRoot`; `USER` is fixed so
    /// that `{user}` has one value.
    func sandbox(_ label: String, stateRoot: String, project: String? = "a00") throws -> (Sandbox, String) {
        let sandbox = try Sandbox(label)
        sandbox.environment["USER"] = "qxtester"
        let config = sandbox.directory + "/config.yaml"
        try FileSystem.writeAtomically(
            config,
            "defaults:\n  platform: here\n" + (project.map { "  project: \($0)\n" } ?? "")
                + "platforms:\n  here:\n    state_root: \(stateRoot)\n"
        )
        return (sandbox, config)
    }

    /// Mounts a 1 MB tmpfs at `directory` (the tests run as root); unmounted by the returned cleanup.
    func smallFilesystem(_ directory: String) throws {
        try FileSystem.createDirectories(directory, mode: 0o755)
        let mount = try runCollectingOutput(["mount", "-t", "tmpfs", "-o", "size=1m", "qxub-test-small", directory])
        try #require(mount.exit == .exited(0), "this test mounts a 1 MB tmpfs as root: \(mount.stderrText)")
    }

    @Test("a state root with under 64 MB free refuses the job before submission: message, exit 125, no job")
    func fullStateRootRefuses() throws {
        let small = "/tmp/stateroot-small-\(getpid())"
        try smallFilesystem(small)
        defer {
            _ = try? runCollectingOutput(["umount", "-l", small])
            _ = try? runCollectingOutput(["rmdir", small])
        }
        let (sandbox, config) = try sandbox("fullroot", stateRoot: small + "/{project}/{user}/.qxub")
        let run = try sandbox.qxub(["exec", "--config", config, "--backend", "local", "--", "echo never"])
        let root = small + "/a00/qxtester/.qxub"
        #expect(
            run.stderrText
                == "qxub: error: the job's output directory \(root) has 1 MB free (under the 64 MB qxub needs): "
                + "the job was not submitted\n  hint: free space there, or set the platform's state_root "
                + "(platforms.NAME.state_root in qxub's config) to a filesystem with room, such as "
                + "/scratch/{project}/{user}/.qxub\n"
        )
        #expect(run.exit == .exited(125))
        #expect(run.stdoutText.isEmpty)
        // Nothing was submitted: no job directory, nothing in either history.
        #expect(!FileSystem.exists(root + "/jobs"))
        let history = try sandbox.qxub(["history", "--config", config])
        #expect(!history.stdoutText.contains("local-"), "\(history.stdoutText)")
        #expect(sandbox.jobDirectories.isEmpty)
    }

    @Test(
        "{project} and {user} expand: defaults.project, else the agent's PROJECT; {user} is the agent's user",
        arguments: [("a00" as String?, nil as String?, "a00"), (nil, "zz99", "zz99")]
    )
    func expands(configured: String?, environment: String?, expected: String) throws {
        let base = "/tmp/stateroot-expand-\(getpid())"
        defer { _ = try? runCollectingOutput(["rm", "-rf", base]) }
        let (sandbox, config) = try sandbox("expand", stateRoot: base + "/{project}/{user}/.qxub", project: configured)
        sandbox.environment["PROJECT"] = environment
        let run = try sandbox.qxub(["exec", "--config", config, "--backend", "local", "--terse", "--", "echo hi"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let jobID = run.stdoutText.trimmingWhitespaceForTests()
        let root = base + "/\(expected)/qxtester/.qxub"
        // The job's directory and its index link live in the expanded root, not in QXUB_STATE_DIR.
        #expect(FileSystem.isDirectory(root + "/by-id"), "\(FileSystem.listDirectory(base))")
        #expect(FileSystem.listDirectory(root + "/jobs").count == 1)
        #expect(sandbox.jobDirectories.isEmpty)
        // Follow-ups find the job through the same root.
        #expect(
            sandbox.wait {
                (try? sandbox.qxub(["status", "--config", config, jobID]))?.stdoutText.contains("finished") == true
            }
        )
    }

    @Test("a state root naming {project} with no project anywhere is refused, not made literally")
    func missingProject() throws {
        let base = "/tmp/stateroot-noproject-\(getpid())"
        defer { _ = try? runCollectingOutput(["rm", "-rf", base]) }
        let (sandbox, config) = try sandbox("noproject", stateRoot: base + "/{project}/.qxub", project: nil)
        sandbox.environment["PROJECT"] = nil
        let run = try sandbox.qxub(["exec", "--config", config, "--backend", "local", "--", "echo never"])
        #expect(run.exit == .exited(125))
        #expect(
            run.stderrText.hasPrefix(
                "qxub: error: the state root \(base)/{project}/.qxub uses {project}, which has no value on "
            ),
            "\(run.stderrText)"
        )
        #expect(!FileSystem.exists(base + "/{project}"))
    }

    @Test("the platform definition's state_root applies when the config gives none")
    func fromDefinition() throws {
        let base = "/tmp/stateroot-definition-\(getpid())"
        defer { _ = try? runCollectingOutput(["rm", "-rf", base]) }
        let sandbox = try Sandbox("definition")
        sandbox.environment["USER"] = "qxtester"
        let definition = sandbox.directory + "/here.yaml"
        try FileSystem.writeAtomically(
            definition,
            "platform:\n  name: here\n  state_root: \(base)/{user}/.qxub\n  queues:\n    - name: normal\n"
        )
        let config = sandbox.directory + "/config.yaml"
        try FileSystem.writeAtomically(
            config,
            "defaults:\n  platform: here\nplatforms:\n  here:\n    definition: \(definition)\n"
        )
        let run = try sandbox.qxub(["exec", "--config", config, "--backend", "local", "--", "echo hi"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(FileSystem.listDirectory(base + "/qxtester/.qxub/jobs").count == 1)
    }

    @Test("doctor says where job output goes and how much room there is")
    func doctor() throws {
        let small = "/tmp/stateroot-doctor-\(getpid())"
        try smallFilesystem(small)
        defer {
            _ = try? runCollectingOutput(["umount", "-l", small])
            _ = try? runCollectingOutput(["rmdir", small])
        }
        let (sandbox, config) = try sandbox("doctorroot", stateRoot: small + "/{project}/{user}/.qxub")
        let run = try sandbox.qxub(["doctor", "--config", config])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let root = small + "/a00/qxtester/.qxub"
        let lines = run.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.contains("job output            \(root)/jobs/ (script, records and output of each job)"))
        #expect(lines.contains("free space            1 MB free at \(root)"), "\(run.stdoutText)")
    }
}
