import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// `qxub agent install/status/uninstall` for a remote platform, through the same ssh connection as the
/// sessions (no scp, no internet on the cluster).
package struct AgentInstaller: Sendable {
    package let launcher: SSHLauncher
    /// Which agent and shim to send, and how long a login may take.
    package let settings: ClientSettings

    package init(platform: String, remote: Platform.Remote, settings: ClientSettings) {
        launcher = SSHLauncher(platform: platform, remote: remote)
        self.settings = settings
    }

    /// The static agent to send, and the shim beside it (``ClientSettings/shim`` overrides).
    func artifacts() throws(ClientError) -> (agent: String, shim: String) {
        let agent = try AgentLocator.localAgent(explicit: settings.agent)
        let candidates = [settings.shim, FileSystem.directoryName(agent) + "/qxub-shim"].compactMap { $0 }
        guard let shim = candidates.first(where: FileSystem.exists) else {
            throw ClientError(
                "cannot find qxub-shim next to \(agent)",
                hint: "reinstall with install/install.sh",
                exitCode: ExitCodes.unavailable
            )
        }
        return (agent, shim)
    }

    /// "linux-x86_64" or "linux-aarch64", read from the ELF header of `binary`.
    static func binaryPlatform(_ bytes: [UInt8]) -> String? {
        guard bytes.count > 20, bytes[0...3] == [0x7F, 0x45, 0x4C, 0x46] else { return nil }
        switch UInt16(bytes[18]) | UInt16(bytes[19]) << 8 {
        case 0x3E: return "linux-x86_64"
        case 0xB7: return "linux-aarch64"
        case 0x15: return "linux-ppc64le"
        default: return nil
        }
    }

    /// Whether an ELF64 executable names a program interpreter (PT_INTERP: the dynamic loader).
    static func needsDynamicLoader(_ bytes: [UInt8]) -> Bool {
        func little(_ offset: Int, _ size: Int) -> Int {
            guard offset + size <= bytes.count else { return 0 }
            return (0..<size).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
        }
        guard bytes.count > 64, bytes[4] == 2, bytes[5] == 1 else { return false }  // ELF64, little-endian
        let table = little(32, 8)
        let entrySize = little(54, 2)
        let count = little(56, 2)
        guard entrySize > 0 else { return false }
        return (0..<count).contains { little(table + $0 * entrySize, 4) == 3 }  // PT_INTERP
    }

    static func sha256(_ path: String) throws(ClientError) -> String {
        for command in [["sha256sum", path], ["shasum", "-a", "256", path]] {
            if let run = try? runCollectingOutput(command, timeout: 60), run.exit == .exited(0),
                let digest = run.stdoutText.split(separator: " ").first, digest.count == 64
            {
                return String(digest)
            }
        }
        throw ClientError(
            "cannot compute the agent's sha256 (neither sha256sum nor shasum works here)",
            exitCode: ExitCodes.unavailable
        )
    }

    /// What a successful install says: its own line, and what the remote side wrote to stderr (login files
    /// that greet or warn), to be shown as such before that line rather than instead of it.
    package struct Installed: Sendable {
        /// `installed qxub-agent VERSION (PLATFORM, protocol A-B) in DIR on HOST`.
        package var line: String
        /// The remote side's stderr lines as text, or "" when it wrote none.
        package var remoteStderr: String
        package var platform: String

        /// The remote side's stderr, indented under a line that names it, or "" when there was none.
        package var remoteStderrReport: String {
            guard !remoteStderr.isEmpty else { return "" }
            let lines = remoteStderr.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
            return "qxub: \(platform)'s stderr during the install:\n" + lines.joined(separator: "\n") + "\n"
        }
    }

    /// Sends the agent into `directory` (default `~/.qxub/agent`) under its version; older versions stay.
    package func install(directory: String?) throws(ClientError) -> Installed {
        let (agentPath, shimPath) = try artifacts()
        guard let agent = FileSystem.read(agentPath, limit: 64 << 20), let shim = FileSystem.read(shimPath) else {
            throw ClientError("cannot read \(agentPath) or \(shimPath)", exitCode: ExitCodes.unavailable)
        }
        guard let platform = Self.binaryPlatform(agent) else {
            throw ClientError(
                "\(agentPath) is not a Linux executable qxub can install",
                hint: "build it with install/build-agent.sh",
                exitCode: ExitCodes.unavailable
            )
        }
        guard !Self.needsDynamicLoader(agent) else {
            // A dynamically linked agent (`swift build` without -static-executable) runs here, as qxub's
            // local agent, but needs this machine's C library on the cluster: old login nodes cannot run it.
            throw ClientError(
                "\(agentPath) is dynamically linked, so it would not run on a cluster with an older C library",
                hint:
                    "send the static agent: `bash install/build-agent.sh`, then QXUB_AGENT=.build-static/qxub-agent (install/install.sh installs that one)",
                exitCode: ExitCodes.unavailable
            )
        }
        let digest = try Self.sha256(agentPath)
        let versions = ProtocolConstants.versions
        // Everything install creates is private to the user (umask 077, directories 0700), and the modes of
        // what exists are repaired on every install: with umask 007 and a project group as primary group, a
        // group member could otherwise replace the shim and run code as the user (SSHLauncher.trustCheck
        // refuses such files). A failed step says what failed; the remote side's own words come with it.
        let script = """
            set -e
            umask 077
            v=\(shellQuote(QxubVersion.current)); platform=\(shellQuote(platform)); want=\(digest)
            dir=\(shellQuote(directory ?? ""))
            [ -n "$dir" ] || dir="$HOME/.qxub/agent"
            machine="$(uname -s | tr 'A-Z' 'a-z')-$(uname -m)"
            tmp=; shimtmp=; lock=
            cleanup() { rm -f "$tmp" "$shimtmp"; [ -z "$lock" ] || rmdir "$lock" 2>/dev/null || true; }
            trap cleanup EXIT
            if [ "$machine" != "$platform" ]; then
              echo "qxub-install: refused: $(hostname) is $machine but this agent is built for $platform"; exit 3
            fi
            mkdir -p "$HOME/.qxub/bin" || { echo "qxub-install: cannot create $HOME/.qxub/bin (a full or read-only home?)"; exit 7; }
            mkdir -p "$dir" || { echo "qxub-install: cannot create $dir: choose a directory you can write with --dir"; exit 7; }
            for d in "$HOME/.qxub" "$HOME/.qxub/bin" "$dir" "$dir"/[0-9]*/; do
              [ -e "$d" ] || continue
              [ -O "$d" ] || { echo "qxub-install: refused: $d belongs to another user: remove it, or install elsewhere with --dir"; exit 8; }
              chmod 700 "$d"
            done
            for f in "$HOME/.qxub/bin/qxub-shim" "$HOME/.qxub/agent-dir" "$dir"/[0-9]*/qxub-agent; do
              if [ -e "$f" ] && [ -O "$f" ]; then chmod go-w "$f"; fi
            done
            n=0
            until mkdir "$dir/.install-lock" 2>/dev/null; do
              n=$((n + 1))
              [ "$n" -lt 30 ] || { echo "qxub-install: $dir/.install-lock is held by another install (remove it if none runs)"; exit 4; }
              sleep 1
            done
            lock="$dir/.install-lock"
            shimtmp="$HOME/.qxub/bin/.qxub-shim.$$"
            dd bs=1 count=\(shim.count) of="$shimtmp" 2>/dev/null || { echo "qxub-install: cannot write $shimtmp (a full home?)"; exit 9; }
            tmp="$dir/.upload.$$"
            cat > "$tmp" || { echo "qxub-install: cannot write the agent into $dir (full? see the message above): use --dir elsewhere"; exit 9; }
            got=$( (sha256sum "$tmp" 2>/dev/null || shasum -a 256 "$tmp") | cut -d' ' -f1)
            [ "$got" = "$want" ] || { echo "qxub-install: checksum mismatch ($got, expected $want): the upload was damaged"; exit 5; }
            chmod 700 "$tmp"
            "$tmp" --version >/dev/null 2>&1 || { echo "qxub-install: the agent cannot run from $dir (a noexec or full filesystem?): use --dir on another filesystem"; exit 6; }
            mkdir -p "$dir/$v"
            chmod 700 "$dir/$v"
            mv -f "$tmp" "$dir/$v/qxub-agent"
            tmp=
            printf '%s %s\\n' \(versions.lowerBound) \(versions.upperBound) > "$dir/$v/protocol"
            printf '%s\\n' "$platform" > "$dir/$v/platform"
            chmod 600 "$shimtmp" "$dir/$v/protocol" "$dir/$v/platform"
            mv -f "$shimtmp" "$HOME/.qxub/bin/qxub-shim"
            shimtmp=
            if [ "$dir" = "$HOME/.qxub/agent" ]; then rm -f "$HOME/.qxub/agent-dir"; else printf '%s\\n' "$dir" > "$HOME/.qxub/agent-dir"; fi
            echo "qxub-install: installed qxub-agent $v ($platform, protocol \(versions.lowerBound)-\(versions.upperBound)) in $dir/$v on $(hostname)"
            """
        let scriptBytes = Array(script.utf8)
        // The login shell (bash, zsh or tcsh) runs this one line; the script arrives on stdin, then the shim
        // and the binary. dd reads the script and the shim byte-exactly; cat takes the rest.
        let command = "sh -c 'eval \"$(dd bs=1 count=\(scriptBytes.count) 2>/dev/null)\"'"
        let sent = scriptBytes + shim + agent
        let run = try remote(command, stdin: sent, timeout: 600)
        let success = run.stdoutText.split(separator: "\n").last { $0.hasPrefix("qxub-install: installed ") }
        guard run.exit == .exited(0), let success else {
            throw Self.installFailure(platform: launcher.platform, run: run, sent: sent.count)
        }
        return Installed(
            line: String(success.dropFirst("qxub-install: ".count)),
            remoteStderr: run.stderrText.trimmingWhitespace(),
            platform: launcher.platform
        )
    }

    /// Why an install failed, in the remote side's words, with its exit status and how far it read: a
    /// remote side that stopped reading early (a login file that exits, a full home, an unwritable --dir)
    /// is reported, never a bare "Broken pipe".
    static func installFailure(platform: String, run: CollectedRun, sent: Int) -> ClientError {
        let output = (run.stdoutText + run.stderrText).trimmingWhitespace()
        let status: String
        switch run.exit {
        case .exited(255): status = "ssh failed (exit status 255)"
        case .exited(let code): status = "the remote side exited with status \(code)"
        case .signaled(let signal): status = "ssh was killed by signal \(signal)"
        }
        // ssh takes what fits in its channel window whether or not the remote side reads it: this is an upper
        // bound of what the installer read.
        let read = run.stdinAccepted < sent ? " after ssh took \(run.stdinAccepted) of \(sent) bytes" : ""
        let said = output.isEmpty ? " and said nothing" : ": " + output
        let hint: String
        if output.containsText("but this agent is built for") {
            hint = "install qxub's agent built for that architecture"
        } else if output.containsText("qxub-install: ") {
            hint =
                "as the message says; `qxub doctor --platform \(platform)` checks the agent directory's room and exec permission"
        } else {
            // The installer never reached a step of its own: the login shell ended or read stdin first, or a
            // command it needs failed (its message is above).
            hint =
                "a login file (~/.bashrc, ~/.cshrc, ~/.tcshrc) probably exits or reads stdin in non-interactive "
                + "shells: guard that part with `[ -t 1 ]` (csh: `if ($?prompt)`); otherwise the remote side's message says what failed"
        }
        return ClientError(
            "installing qxub-agent on \(platform) failed: \(status)\(read)\(said)",
            hint: hint,
            exitCode: ExitCodes.unavailable
        )
    }

    /// What is installed on the cluster.
    package func status() throws(ClientError) -> String {
        let run = try remote(SSHLauncher.shimCommand("status"), stdin: nil, timeout: 60)
        if let refusal = SSHLauncher.trustRefusal(run.stdoutText, platform: launcher.platform) { throw refusal }
        guard run.exit == .exited(0) else {
            throw ClientError(
                "no qxub-agent is installed on \(launcher.platform)",
                hint: "run `qxub agent install --platform \(launcher.platform)`",
                exitCode: ExitCodes.unavailable
            )
        }
        return run.stdoutText
    }

    /// What `qxub doctor` reports of the cluster side: whether the agent's directory can hold and run
    /// programs (a noexec home) and how much room its filesystem has left (a full home).
    package struct DirectoryCheck: Sendable {
        package var directory: String
        package var executable: Bool
        package var freeKilobytes: Int?
    }

    package func checkDirectory() throws(ClientError) -> DirectoryCheck {
        let script = """
            d=$(cat "$HOME/.qxub/agent-dir" 2>/dev/null || echo "$HOME/.qxub/agent")
            mkdir -p "$d" 2>/dev/null
            t="$d/.doctor.$$"
            if printf '#!/bin/sh\nexit 0\n' > "$t" 2>/dev/null && chmod 755 "$t" 2>/dev/null && "$t" 2>/dev/null; then x=yes; else x=no; fi
            rm -f "$t"
            free=$(df -Pk "$d" 2>/dev/null | awk 'NR == 2 { print $4 }')
            echo "qxub-doctor: $x ${free:-?} $d"
            """
        let run = try remote("sh -s", stdin: Array(script.utf8), timeout: 60)
        guard let line = run.stdoutText.split(separator: "\n").last(where: { $0.hasPrefix("qxub-doctor: ") }) else {
            throw ClientError(
                "cannot check the agent's directory on \(launcher.platform): \(run.stderrText.trimmingWhitespace())",
                exitCode: ExitCodes.unavailable
            )
        }
        let fields = line.dropFirst("qxub-doctor: ".count).split(separator: " ", maxSplits: 2).map(String.init)
        guard fields.count == 3 else {
            throw ClientError("unexpected answer from \(launcher.platform): \(line)", exitCode: ExitCodes.unavailable)
        }
        return DirectoryCheck(directory: fields[2], executable: fields[0] == "yes", freeKilobytes: Int(fields[1]))
    }

    /// Removes every installed agent and the shim (job records stay). Only what `install` wrote goes: a
    /// `--dir` may be a shared or project directory holding other files.
    package func uninstall() throws(ClientError) -> String {
        let script = """
            d=$(cat "$HOME/.qxub/agent-dir" 2>/dev/null || echo "$HOME/.qxub/agent")
            n=0
            for p in "$d"/*; do
              v=${p##*/}
              case $v in ''|*[!0-9.]*|.*|*.|*..*) continue ;; esac
              [ -f "$p/qxub-agent" ] || continue
              rm -f "$p/qxub-agent" "$p/protocol" "$p/platform"
              rmdir "$p" 2>/dev/null || echo "kept $p: it holds other files" >&2
              n=$((n + 1))
            done
            rmdir "$d/.install-lock" 2>/dev/null; rmdir "$d" 2>/dev/null
            rm -f "$HOME/.qxub/bin/qxub-shim" "$HOME/.qxub/agent-dir"
            echo "removed $n agent version(s) from $d, and the shim; job records in ~/.qxub/jobs stay"
            """
        // On stdin: a login shell of the csh family cannot take a multi-line argument.
        let run = try remote("sh -s", stdin: Array(script.utf8), timeout: 60)
        guard run.exit == .exited(0) else {
            throw ClientError(
                "uninstalling on \(launcher.platform) failed: \(run.stderrText)",
                exitCode: ExitCodes.unavailable
            )
        }
        return run.stdoutText.trimmingWhitespace()
    }

    /// Runs one command on the cluster over the shared connection.
    func remote(_ command: String, stdin: [UInt8]?, timeout: Double) throws(ClientError) -> CollectedRun {
        var controlPath = try launcher.controlPath()
        try launcher.ensureMaster(controlPath: controlPath)
        // These commands may run for minutes (an upload), so a master that hangs (its socket answers, its
        // network is gone) is found first, in the time a session gets to start, and replaced.
        let probe = try? runCollectingOutput(
            launcher.baseArguments(controlPath: controlPath) + [
                "-o", "BatchMode=yes", "-T", launcher.remote.host, "true",
            ],
            timeout: settings.timing.helloTimeout
        )
        if probe == nil || probe?.exit == .signaled(SIGKILL) {
            launcher.discardMaster(controlPath: controlPath)
            controlPath = try launcher.controlPath()
            try launcher.ensureMaster(controlPath: controlPath)
        }
        let arguments =
            launcher.baseArguments(controlPath: controlPath) + [
                "-o", "BatchMode=yes", "-T", launcher.remote.host, command,
            ]
        // The upload (8 MB on stdin) is fed while ssh's output is read, all within one timeout. ssh stays in
        // our process group, so a Ctrl-C ends the upload with qxub.
        var configuration = ProcessRunner.Configuration(
            arguments,
            stdin: stdin ?? [],
            timeout: timeout,
            outputLimit: 1 << 20
        )
        configuration.ownProcessGroup = false
        do {
            return try ProcessRunner.run(configuration)
        } catch {
            throw ClientError("cannot run ssh: \(error)", exitCode: ExitCodes.unavailable)
        }
    }
}
