import QxubSystem
import Synchronization
import Testing

/// Real components started by the project's own scripts in Tests/Support, once per test run.
enum Components {
    static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = FileSystem.directoryName(path) }
        return path
    }()

    private static let slurmResult = Mutex<Result<[String: String], ComponentError>?>(nil)

    /// Starts the single-node Slurm (idempotent) and returns the environment its clients need.
    static func slurm() throws -> [String: String] {
        try slurmResult.withLock { cached in
            if let cached { return try cached.get() }
            let script = repositoryRoot + "/Tests/Support/slurm.sh"
            let result: Result<[String: String], ComponentError>
            do {
                let start = try runCollectingOutput(["bash", script, "start"], timeout: 600)
                if start.exit == .exited(0) {
                    let env = try runCollectingOutput(["bash", script, "env"], timeout: 30)
                    result = .success(parseExports(env.stdoutText))
                } else {
                    result = .failure(
                        ComponentError(
                            message:
                                "Tests/Support/slurm.sh start failed (\(start.exit)):\n\(start.stdoutText)\n\(start.stderrText)"
                        )
                    )
                }
            } catch {
                result = .failure(ComponentError(message: "cannot run Tests/Support/slurm.sh: \(error)"))
            }
            cached = result
            return try result.get()
        }
    }

    /// An sshd started by Tests/Support/sshd.sh: the shared one (limits raised for the suite), or one with
    /// its own state directory, users and homes.
    enum SSHD: String, CaseIterable, Sendable {
        case shared
        /// sshd's default MaxSessions (10) and MaxStartups (10:30:100), as on a cluster.
        case defaultLimits = "default-limits"
        /// MaxSessions 0: a master logs in, every session is refused (its users are those of `defaultLimits`).
        case refusingSessions = "refusing"
        /// Inside the real OpenPBS's network namespace (Tests/Support/openpbs.sh), for laptop → login node tests.
        case pbs

        /// sshd.sh's settings for this instance.
        var environment: [String] {
            switch self {
            case .shared: return []
            case .pbs:
                return [
                    "QXUB_SSHD_DIR=/tmp/qxub-sshd-pbs", "QXUB_SSHD_USER_PREFIX=qxubp",
                    "QXUB_SSHD_HOMES=/tmp/qxub-homes-pbs",
                ]
            case .defaultLimits, .refusingSessions:
                // Named after the caller's own instance when it has one (QXUB_SSHD_DIR, _USER_PREFIX, _HOMES), so
                // that test runs side by side each have their own; the defaults otherwise.
                let directory = Environment.get("QXUB_SSHD_DIR") ?? "/tmp/qxub-sshd"
                let users = (Environment.get("QXUB_SSHD_USER_PREFIX").map { $0 + "l" }) ?? "qxubl"
                let homes = Environment.get("QXUB_SSHD_HOMES") ?? "/tmp/qxub-homes"
                let common = [
                    "QXUB_SSHD_DIR=\(directory)-\(rawValue)", "QXUB_SSHD_USER_PREFIX=\(users)",
                    "QXUB_SSHD_HOMES=\(homes)-limits",
                ]
                return common + (self == .defaultLimits ? ["QXUB_SSHD_LIMITS=default"] : ["QXUB_SSHD_MAX_SESSIONS=0"])
            }
        }
    }

    private static let sshdResults = Mutex<[SSHD: Result<[String: String], ComponentError>]>([:])

    /// Starts a loopback sshd with its bash and tcsh test users (idempotent); returns its environment.
    static func sshd(_ instance: SSHD = .shared) throws -> [String: String] {
        try sshdResults.withLock { results in
            if let cached = results[instance] { return try cached.get() }
            let script = repositoryRoot + "/Tests/Support/sshd.sh"
            // The shared instance honours the caller's QXUB_SSHD_*; the others are fully described here.
            let environment =
                instance == .shared
                ? Environment.all() : Environment.all().filter { !$0.hasPrefix("QXUB_SSHD_") } + instance.environment
            let result: Result<[String: String], ComponentError>
            do {
                // The PBS instance runs where PBS is: inside its namespace.
                let prefix =
                    instance == .pbs ? ["ip", "netns", "exec", try RealPBS.environment()["QXUB_PBS_NETNS"] ?? ""] : []
                let start = try runCollectingOutput(
                    prefix + ["bash", script, "start"],
                    environment: environment,
                    timeout: 300
                )
                if start.exit == .exited(0) {
                    let env = try runCollectingOutput(
                        prefix + ["bash", script, "env"],
                        environment: environment,
                        timeout: 30
                    )
                    result = .success(parseExports(env.stdoutText))
                } else {
                    result = .failure(
                        ComponentError(
                            message:
                                "Tests/Support/sshd.sh start (\(instance.rawValue)) failed (\(start.exit)):\n\(start.stdoutText)\n\(start.stderrText)"
                        )
                    )
                }
            } catch {
                result = .failure(ComponentError(message: "cannot run Tests/Support/sshd.sh: \(error)"))
            }
            results[instance] = result
            return try result.get()
        }
    }

    /// The PBS Pro emulator's bin directory (kept in Tests/Support/pbs-emulator).
    static var pbsEmulatorBin: String { repositoryRoot + "/Tests/Support/pbs-emulator/bin" }

    static func parseExports(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("export ") {
            let assignment = line.dropFirst("export ".count)
            guard let equals = assignment.firstIndex(of: "=") else { continue }
            var value = String(assignment[assignment.index(after: equals)...])
            if value.hasPrefix("'") && value.hasSuffix("'") && value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            values[String(assignment[..<equals])] = value
        }
        return values
    }
}

struct ComponentError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
