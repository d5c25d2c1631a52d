import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Keeps every job the remote benchmark submits to Slurm from running, and proves it.
///
/// Slurm 22.05's `sbatch` does not read `SBATCH_HOLD`, so the "held" jobs of the earlier set-up ran
/// during the measurement and loaded the machine it measured. The default partition is set DOWN for the
/// run instead: `sbatch` still accepts jobs into it (it is not INACTIVE) and the scheduler starts none.
/// ``check(expected:)`` asks `squeue` that every job the run submitted is PENDING, held or behind the down
/// partition, and throws otherwise. At the end the run's jobs are cancelled before the partition is back UP.
final class SlurmHold {
    let partition: String
    let user: String
    private let environment: [String]
    /// Jobs of `user` that existed before the run (from earlier runs or tests): not ours to judge.
    private let before: Set<String>
    private var restored = false

    /// Sets the default partition (or `partition`) DOWN. Needs the test cluster's admin (root for
    /// `Tests/Support/slurm.sh`) and `SLURM_CONF` of the cluster the remote user submits to.
    init(user: String, partition: String?, environment: [String]) throws {
        self.user = user
        self.environment = environment
        guard environment.contains(where: { $0.hasPrefix("SLURM_CONF=") }) else {
            throw SystemError(
                "bench",
                "the slurm rows need SLURM_CONF of the cluster the remote user submits to: "
                    + "eval \"$(bash Tests/Support/slurm.sh env)\" first",
                errno: EINVAL
            )
        }
        if let partition {
            self.partition = partition
        } else {
            let names = try Self.run(["sinfo", "-h", "-o", "%P"], environment).split(separator: "\n")
            guard let marked = names.first(where: { $0.hasSuffix("*") }) else {
                throw SystemError("bench", "sinfo names no default partition: give --partition", errno: EINVAL)
            }
            self.partition = String(marked.dropLast())
        }
        before = Set(try Self.jobs(of: user, environment).map(\.id))
        _ = try Self.run(["scontrol", "update", "PartitionName=" + self.partition, "State=DOWN"], environment)
        let state = try Self.run(["sinfo", "-h", "-p", self.partition, "-o", "%a"], environment)
        guard state.trimmingWhitespace() == "down" else {
            throw SystemError("bench", "partition \(self.partition) is '\(state)' after State=DOWN", errno: EIO)
        }
    }

    /// Throws unless exactly `expected` jobs of the run are known to Slurm and every one of them is
    /// PENDING because it is held or its partition is down (none ran, none is about to).
    func check(expected: Int) throws {
        let jobs = try Self.jobs(of: user, environment).filter { !before.contains($0.id) }
        let running = jobs.filter { !($0.state == "PENDING" && ["PartitionDown", "JobHeldUser"].contains($0.reason)) }
        guard jobs.count == expected, running.isEmpty else {
            let sample = running.prefix(5).map { "\($0.id) \($0.state) (\($0.reason))" }.joined(separator: ", ")
            throw SystemError(
                "bench",
                "the hold does not hold: squeue shows \(jobs.count) jobs of \(user) from this run (expected "
                    + "\(expected)), \(running.count) not pending behind the down partition: \(sample)",
                errno: EIO
            )
        }
    }

    /// Cancels the run's jobs, then sets the partition UP again (so that none of them starts).
    func release() {
        guard !restored else { return }
        restored = true
        _ = try? Self.run(["scancel", "-u", user, "-p", partition], environment)
        _ = try? Self.run(["scontrol", "update", "PartitionName=" + partition, "State=UP"], environment)
    }

    deinit { release() }

    private static func jobs(
        of user: String,
        _ environment: [String]
    ) throws -> [(
        id: String, state: String, reason: String
    )] {
        try run(["squeue", "-h", "-t", "all", "-u", user, "-o", "%i|%T|%r"], environment)
            .split(separator: "\n")
            .map { line in
                let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                return (fields[0], fields.count > 1 ? fields[1] : "", fields.count > 2 ? fields[2] : "")
            }
    }

    private static func run(_ command: [String], _ environment: [String]) throws -> String {
        let result = try runCollectingOutput(command, environment: environment)
        guard result.exit == .exited(0) else {
            throw SystemError("bench", command.joined(separator: " ") + ": " + result.stderrText, errno: EIO)
        }
        return String(decoding: result.stdout, as: UTF8.self)
    }
}
