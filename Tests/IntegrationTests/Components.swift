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
                    result = .failure(ComponentError(message: "Tests/Support/slurm.sh start failed (\(start.exit)):\n\(start.stdoutText)\n\(start.stderrText)"))
                }
            } catch {
                result = .failure(ComponentError(message: "cannot run Tests/Support/slurm.sh: \(error)"))
            }
            cached = result
            return try result.get()
        }
    }

    private static let sshdResult = Mutex<Result<[String: String], ComponentError>?>(nil)

    /// Starts the loopback sshd with its bash and tcsh test users (idempotent); returns its environment.
    static func sshd() throws -> [String: String] {
        try sshdResult.withLock { cached in
            if let cached { return try cached.get() }
            let script = repositoryRoot + "/Tests/Support/sshd.sh"
            let result: Result<[String: String], ComponentError>
            do {
                let start = try runCollectingOutput(["bash", script, "start"], timeout: 300)
                if start.exit == .exited(0) {
                    result = .success(parseExports(try runCollectingOutput(["bash", script, "env"], timeout: 30).stdoutText))
                } else {
                    result = .failure(ComponentError(message: "Tests/Support/sshd.sh start failed (\(start.exit)):\n\(start.stdoutText)\n\(start.stderrText)"))
                }
            } catch {
                result = .failure(ComponentError(message: "cannot run Tests/Support/sshd.sh: \(error)"))
            }
            cached = result
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
            if value.hasPrefix("'") && value.hasSuffix("'") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            values[String(assignment[..<equals])] = value
        }
        return values
    }
}

struct ComponentError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
