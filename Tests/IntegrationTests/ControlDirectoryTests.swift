import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The ssh control directory on a machine shared with other users (issue 9, item 1): qxub runs as a victim
/// user (setpriv), a second local user plays the attacker, against the real sshd of Tests/Support/sshd.sh.
/// Both users are created with useradd, as sshd.sh creates its own: these tests need root.
@Suite("The ssh control directory on a machine shared with other users", .serialized)
struct ControlDirectoryTests {
    struct LocalUser {
        let name: String
        let uid: uid_t
        let gid: gid_t

        /// `command` run as this user, through `sh -c`.
        func run(_ command: String) throws -> CollectedRun {
            try runCollectingOutput(asUser + ["/bin/sh", "-c", command], timeout: 30)
        }

        var asUser: [String] { ["setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--"] }
    }

    /// A local user without a login (created if missing).
    static func localUser(_ name: String) throws -> LocalUser {
        if try runCollectingOutput(["getent", "passwd", name]).exit != .exited(0) {
            let add = try runCollectingOutput(
                [
                    "useradd", "--home-dir", "/nonexistent", "--no-create-home", "--shell", "/bin/sh", "--user-group",
                    name,
                ])
            try #require(add.exit == .exited(0), "useradd \(name): \(add.stderrText)")
        }
        let ids = try runCollectingOutput(["id", "-u", name]).stdoutText.trimmingWhitespaceForTests()
        let group = try runCollectingOutput(["id", "-g", name]).stdoutText.trimmingWhitespaceForTests()
        return LocalUser(name: name, uid: try #require(uid_t(ids)), gid: try #require(gid_t(group)))
    }

    struct Laptop {
        let sandbox: Sandbox
        let victim: LocalUser
        let attacker: LocalUser
        let sshConfig: String
        /// A directory like /tmp: anyone may create in it, only the owner may remove (mode 1777).
        let shared: String

        var sshCalls: [String] {
            (FileSystem.readText(sandbox.directory + "/ssh-calls.log") ?? "").split(separator: "\n").map(String.init)
        }

        func qxub(_ arguments: [String]) throws -> CollectedRun { try sandbox.qxub(arguments, timeout: 90) }

        /// The `control socket` line of `qxub doctor`: where qxub put (or would put) the platform's socket.
        func controlSocket() throws -> (String, CollectedRun) {
            let run = try qxub(["doctor", "--platform", "bashbox"])
            let line = run.stdoutText.split(separator: "\n").first { $0.hasPrefix("control socket") } ?? ""
            let path = line.dropFirst("control socket".count).drop { $0 == " " }.prefix { $0 != " " }
            return (String(path), run)
        }

        /// Closes the master qxub opened at `socket` when the test ends.
        func closeMaster(_ socket: String) {
            sandbox.cleanup.append(["ssh", "-F", sshConfig, "-o", "ControlPath=" + socket, "-O", "exit", "qxub-bash"])
        }
    }

    /// A laptop whose qxub runs as the victim, with platform bashbox on the test sshd; every ssh it runs is
    /// logged (`sshCalls`). No QXUB_CONTROL_DIR, XDG_RUNTIME_DIR or XDG_STATE_HOME unless a test sets one.
    func laptop(_ label: String, sshWrapper: String? = nil) throws -> Laptop {
        try #require(getuid() == 0, "these tests create local users (useradd) and run qxub as one: run them as root")
        let ssh = try Components.sshd()
        let prefix = String(ssh["QXUB_TEST_SSH_BASH_USER"]!.dropLast("bash".count))
        let victim = try Self.localUser(prefix + "victim")
        let attacker = try Self.localUser(prefix + "attacker")
        let sandbox = try Sandbox("cmdir-" + label)
        let directory = sandbox.directory
        // The victim's own copy of the client key (sshd.sh's is root's, mode 0600).
        let original = ssh["QXUB_TEST_SSH_CONFIG"]!
        let key = FileSystem.directoryName(original) + "/id_ed25519"
        try FileSystem.writeAtomically(directory + "/id_ed25519", try #require(FileSystem.read(key)), mode: 0o600)
        let config = (FileSystem.readText(original) ?? "").replacingAll(
            "IdentityFile " + key,
            with: "IdentityFile " + directory + "/id_ed25519"
        )
        try FileSystem.writeAtomically(directory + "/ssh_config", config, mode: 0o644)
        try FileSystem.createDirectories(directory + "/config/qxub")
        try FileSystem.writeAtomically(
            directory + "/config/qxub/config.yaml",
            """
            platforms:
              bashbox:
                remote:
                  host: qxub-bash
                  ssh_config: \(directory)/ssh_config
            """
        )
        let log = directory + "/ssh-calls.log"
        try FileSystem.writeAtomically(
            directory + "/bin/ssh",
            sshWrapper ?? "#!/bin/sh\necho \"$*\" >> \(log)\nexec /usr/bin/ssh \"$@\"\n",
            mode: 0o755
        )
        sandbox.environment["XDG_CONFIG_HOME"] = directory + "/config"
        sandbox.environment["QXUB_SHIM"] = Components.repositoryRoot + "/shim/qxub-shim"
        sandbox.environment["LOGNAME"] = victim.name
        sandbox.environment["USER"] = victim.name
        for name in ["XDG_RUNTIME_DIR", "XDG_STATE_HOME", "SSH_AUTH_SOCK"] { sandbox.environment[name] = nil }
        _ = try runCollectingOutput(["chown", "-R", "\(victim.uid):\(victim.gid)", directory])
        sandbox.commandPrefix = victim.asUser
        let shared = directory + "-shared"
        try FileSystem.createDirectories(shared, mode: 0o755)
        chmod(shared, 0o1777)
        sandbox.cleanup.append(["rm", "-rf", shared])
        return Laptop(
            sandbox: sandbox,
            victim: victim,
            attacker: attacker,
            sshConfig: directory + "/ssh_config",
            shared: shared
        )
    }

    @Test("a symbolic link at the control path (another user's) is refused with a clear message, and nothing is sent")
    func symlinkRefused() throws {
        let laptop = try laptop("symlink")
        // The attacker points the victim's control path at one of the victim's own private directories.
        let target = laptop.sandbox.directory + "/home/private"
        #expect(try laptop.victim.run("mkdir -m 700 \(target)").exit == .exited(0))
        let control = laptop.shared + "/cm"
        #expect(try laptop.attacker.run("ln -s \(target) \(control)").exit == .exited(0))
        laptop.sandbox.environment["QXUB_CONTROL_DIR"] = control
        let run = try laptop.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "echo s3cret"])
        #expect(run.exit == .exited(69), "\(run.stderrText)")
        #expect(
            run.stderrText.contains(
                "qxub: error: the ssh control directory \(control) is a symbolic link (to \(target)): another user may be "
                    + "trying to take over your ssh sessions"
            ),
            "\(run.stderrText)"
        )
        #expect(
            run.stderrText.contains("hint: ") && run.stderrText.contains("set QXUB_CONTROL_DIR to a private directory")
        )
        #expect(laptop.sshCalls.isEmpty, "nothing was sent, not even an ssh started: \(laptop.sshCalls)")
        #expect(FileSystem.listDirectory(target).isEmpty, "nothing was made in the directory the link points at")
    }

    @Test("a control directory that belongs to another user is refused, and nothing is sent")
    func foreignOwnerRefused() throws {
        let laptop = try laptop("foreign")
        let control = laptop.shared + "/cm"
        #expect(try laptop.attacker.run("mkdir -m 700 \(control)").exit == .exited(0))
        laptop.sandbox.environment["QXUB_CONTROL_DIR"] = control
        let run = try laptop.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "echo s3cret"])
        #expect(run.exit == .exited(69), "\(run.stderrText)")
        #expect(
            run.stderrText.contains(
                "the ssh control directory \(control) belongs to user \(laptop.attacker.name) (uid \(laptop.attacker.uid)), not to you"
            ),
            "\(run.stderrText)"
        )
        #expect(laptop.sshCalls.isEmpty, "\(laptop.sshCalls)")
    }

    @Test("a control directory others may write into is refused; one they may only read is made private and used")
    func modes() throws {
        let laptop = try laptop("modes")
        let control = laptop.sandbox.directory + "/home/cm"
        #expect(try laptop.victim.run("mkdir \(control) && chmod 770 \(control)").exit == .exited(0))
        laptop.sandbox.environment["QXUB_CONTROL_DIR"] = control
        let writable = try laptop.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "true"])
        #expect(writable.exit == .exited(69), "\(writable.stderrText)")
        #expect(
            writable.stderrText.contains(
                "the ssh control directory \(control) can be written by other users (mode 770): a socket in it may be someone else's"
            ),
            "\(writable.stderrText)"
        )
        #expect(laptop.sshCalls.isEmpty, "\(laptop.sshCalls)")

        // Readable only (a mkdir under umask 022): nobody else could have put anything in it.
        chmod(control, 0o755)
        laptop.closeMaster(control + "/bashbox")
        let (socket, doctor) = try laptop.controlSocket()
        #expect(socket == control + "/bashbox", "\(doctor.stdoutText) \(doctor.stderrText)")
        var info = stat()
        #expect(stat(control, &info) == 0 && info.st_mode & 0o777 == 0o700, "mode set to 700")
        #expect(
            doctor.stdoutText.contains("master connection") && doctor.stdoutText.contains("live"),
            "\(doctor.stdoutText)"
        )
    }

    @Test(
        "the default place: $XDG_RUNTIME_DIR/qxub if it is yours, else ~/.local/state/qxub/HOST, within the socket limit"
    )
    func defaultLocation() throws {
        let laptop = try laptop("default")
        let host = String(Environment.hostname().split(separator: ".").first ?? "")
        // A runtime directory of the victim's.
        let runtime = laptop.sandbox.directory + "/home/run"
        #expect(try laptop.victim.run("mkdir -m 700 \(runtime)").exit == .exited(0))
        laptop.sandbox.environment["XDG_RUNTIME_DIR"] = runtime
        laptop.closeMaster(runtime + "/qxub/bashbox")
        let (first, run) = try laptop.controlSocket()
        #expect(first == runtime + "/qxub/bashbox", "\(run.stdoutText) \(run.stderrText)")
        #expect(SocketProbe.isSocket(first), "the master's socket is there")

        // A runtime directory that is not the victim's (anyone's /tmp) is passed over for the state directory,
        // in a home of a usual length (the sandbox's is too long: see longHome).
        laptop.sandbox.environment["XDG_RUNTIME_DIR"] = laptop.shared
        let home = "/tmp/qxub-home-\(getpid())"
        #expect(try laptop.victim.run("rm -rf \(home) && mkdir -m 755 \(home)").exit == .exited(0))
        laptop.sandbox.cleanup.append(["rm", "-rf", home])
        laptop.sandbox.environment["HOME"] = home
        let state = home + "/.local/state/qxub/" + host
        laptop.closeMaster(state + "/bashbox")
        let (second, again) = try laptop.controlSocket()
        #expect(second == state + "/bashbox", "\(again.stdoutText) \(again.stderrText)")
        #expect(SocketProbe.isSocket(second))
        var info = stat()
        #expect(lstat(state, &info) == 0 && info.st_uid == laptop.victim.uid && info.st_mode & 0o777 == 0o700)
        #expect(FileSystem.listDirectory(laptop.shared).isEmpty, "nothing made in the foreign runtime directory")
    }

    @Test("a home too long for a socket path: a private directory with an unpredictable name under /tmp, kept")
    func longHome() throws {
        let laptop = try laptop("longhome")
        let home = laptop.sandbox.directory + "/home/" + String(repeating: "h", count: 70)
        #expect(try laptop.victim.run("mkdir -p \(home)").exit == .exited(0))
        laptop.sandbox.environment["HOME"] = home
        let (socket, run) = try laptop.controlSocket()
        laptop.closeMaster(socket)
        let directory = FileSystem.directoryName(socket)
        laptop.sandbox.cleanup.append(["rm", "-rf", directory])
        #expect(
            directory.hasPrefix("/tmp/qxub-\(laptop.victim.uid)-")
                && directory.count == "/tmp/qxub-\(laptop.victim.uid)-XXXXXX".count,
            "\(run.stdoutText) \(run.stderrText)"
        )
        #expect(socket.utf8.count + 17 <= 103, "room for ssh's temporary name within macOS's 104 bytes: \(socket)")
        var info = stat()
        #expect(
            lstat(directory, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR && info.st_uid == laptop.victim.uid
                && info.st_mode & 0o777 == 0o700
        )
        #expect(SocketProbe.isSocket(socket))
        let (again, _) = try laptop.controlSocket()
        #expect(again == socket, "the same directory next time (its name is remembered in the state directory)")
    }

    @Test("the control directory swapped while the master starts: refused, nothing sent through it")
    func swapAfterStart() throws {
        let control = "CONTROL"
        // An ssh that, once the master is up, swaps the directory for a link to it (as a user who can write the
        // parent directory could).
        let wrapper = """
            #!/bin/sh
            echo "$*" >> "$(dirname "$0")/../ssh-calls.log"
            case " $* " in
              *" -N "*) /usr/bin/ssh "$@"; rc=$?; mv \(control) \(control).real && ln -s \(control).real \(control); exit $rc ;;
            esac
            exec /usr/bin/ssh "$@"
            """
        let laptop = try laptop("swap", sshWrapper: wrapper)
        let path = laptop.sandbox.directory + "/home/cm"
        let script = wrapper.replacingAll(control, with: path)
        try FileSystem.writeAtomically(laptop.sandbox.directory + "/bin/ssh", script, mode: 0o755)
        _ = try runCollectingOutput(["chown", "\(laptop.victim.uid)", laptop.sandbox.directory + "/bin/ssh"])
        laptop.sandbox.environment["QXUB_CONTROL_DIR"] = path
        laptop.closeMaster(path + ".real/bashbox")
        let run = try laptop.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "echo s3cret"])
        #expect(run.exit == .exited(69), "\(run.stderrText)")
        #expect(
            run.stderrText.contains(
                "the ssh control directory \(path) changed while the ssh master started (now a symbolic link to \(path).real)"
            ),
            "\(run.stderrText)"
        )
        #expect(laptop.sshCalls.contains { $0.contains(" -N ") }, "the master was started: \(laptop.sshCalls)")
        #expect(
            !laptop.sshCalls.contains { $0.contains("qxub-shim") },
            "no session went through it: \(laptop.sshCalls)"
        )
    }
}

enum SocketProbe {
    /// Whether `path` is a Unix socket (not following a link).
    static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}
