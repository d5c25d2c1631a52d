import QxubSystem

/// The real scheduler output recorded in ../shared/fixtures (beside the repository).
enum Fixtures {
    static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = FileSystem.directoryName(path) }
        return path
    }()

    static let directory = FileSystem.directoryName(repositoryRoot) + "/shared/fixtures"

    /// The text of a fixture; a missing one is a test failure, never a skip.
    static func text(_ scheduler: String, _ name: String) -> String {
        let path = directory + "/" + scheduler + "/" + name
        guard let text = FileSystem.readText(path) else {
            fatalError("missing fixture \(path): the tests need ../shared/fixtures beside the repository")
        }
        return text
    }
}
