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
