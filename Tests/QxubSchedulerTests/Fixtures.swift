import QxubProtocol
import QxubSystem

/// The real scheduler output recorded in Tests/Fixtures (in the repository: a fresh clone needs nothing beside it).
enum Fixtures {
    static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = FileSystem.directoryName(path) }
        return path
    }()

    static let directory = repositoryRoot + "/Tests/Fixtures"

    /// The text of a fixture; a missing one is a test failure, never a skip.
    static func text(_ scheduler: String, _ name: String) -> String {
        let path = directory + "/" + scheduler + "/" + name
        guard let text = FileSystem.readText(path) else {
            fatalError("missing fixture \(path): Tests/Fixtures is part of the repository")
        }
        return text
    }
}

extension Fixtures {
    /// A recorded command's run: `NAME.stdout`, `NAME.stderr` and `NAME.rc` (its decimal exit status).
    static func run(_ scheduler: String, _ name: String) -> CollectedRun {
        let rc = text(scheduler, name + ".rc").trimmingWhitespace()
        guard let status = Int32(rc) else { fatalError("\(scheduler)/\(name).rc is not an exit status: \(rc)") }
        return CollectedRun(
            exit: .exited(status),
            stdout: Array(text(scheduler, name + ".stdout").utf8),
            stderr: Array(text(scheduler, name + ".stderr").utf8)
        )
    }

    /// The command a recording ran (`NAME.argv`: one argument per line).
    static func argv(_ scheduler: String, _ name: String) -> [String] {
        text(scheduler, name + ".argv").split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(
            String.init
        )
    }

    /// `ids.txt` (or `file`) of a recording: scenario name → the job id it got.
    static func ids(_ scheduler: String, file: String = "ids.txt") -> [String: String] {
        var ids: [String: String] = [:]
        for line in text(scheduler, file).split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { ids[parts[0]] = parts[1] }
        }
        return ids
    }
}

extension JobTermination {
    /// The reason and detail of a kill by the scheduler (nil for every other end).
    var schedulerKill: (reason: JobTermination.SchedulerReason, detail: String)? {
        if case .killedByScheduler(let reason, let detail, _) = self { (reason, detail) } else { nil }
    }
}
