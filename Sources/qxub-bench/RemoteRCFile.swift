import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The remote test user's `~/.bashrc` for the run: saved first, replaced by the benchmark's own (the
/// cluster's `SLURM_CONF`, and for some rows a `sleep 0.1` standing in for module and conda init), and
/// put back as it was at the end.
final class RemoteRCFile {
    private let ssh: [String]
    private let environment: [String]
    /// The file as it was; nil when there was none.
    private let original: [UInt8]?
    private var restored = false

    init(ssh: [String], environment: [String]) throws {
        self.ssh = ssh
        self.environment = environment
        let saved = try Self.run(
            ssh + ["if [ -e ~/.bashrc ]; then printf y; cat ~/.bashrc; else printf n; fi"],
            nil,
            environment
        )
        guard let marker = saved.first, marker == UInt8(ascii: "y") || marker == UInt8(ascii: "n") else {
            throw SystemError(
                "bench",
                "cannot read the remote ~/.bashrc: the login prints before the command",
                errno: EIO
            )
        }
        original = marker == UInt8(ascii: "y") ? Array(saved.dropFirst()) : nil
    }

    func write(_ text: String) throws {
        _ = try Self.run(ssh + ["cat > ~/.bashrc"], Array(text.utf8), environment)
    }

    func restore() {
        guard !restored else { return }
        restored = true
        if let original {
            _ = try? Self.run(ssh + ["cat > ~/.bashrc"], original, environment)
        } else {
            _ = try? Self.run(ssh + ["rm -f ~/.bashrc"], nil, environment)
        }
    }

    deinit { restore() }

    private static func run(_ command: [String], _ stdin: [UInt8]?, _ environment: [String]) throws -> [UInt8] {
        let result = try runCollectingOutput(command, environment: environment, stdinBytes: stdin ?? [])
        guard result.exit == .exited(0) else {
            throw SystemError("bench", command.suffix(1).joined() + ": " + result.stderrText, errno: EIO)
        }
        return result.stdout
    }
}
