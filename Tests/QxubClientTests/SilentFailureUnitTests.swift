import QxubClient
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The pure parts of issue 13's item 6 and item 5: template variables, output paths, configuration spellings,
/// history filters and the definition fetch's back-off.
@Suite("Silent failures, unit by unit")
struct SilentFailureUnitTests {
    @Test("an unknown {variable} is refused with the known names and a hint; {{x}} and known ones resolve")
    func unknownVariable() throws {
        let variables = TemplateVariables(user: "u", project: nil, name: nil, queue: nil, templates: ["logs": "/l"])
        #expect(try variables.resolveKnown("{logs}/{user}/{{keep}}") == "/l/u/{{keep}}")
        let table: [(String, String, String)] = [
            ("{log_dir}/x", "log_dir", "give --log-dir DIR, or set templates.log_dir in your configuration"),
            ("/s/{project}", "project", "give -P PROJECT, or set defaults.project (or $PROJECT)"),
            (
                "{other}", "other",
                "define it under templates: in your configuration, or write {{other}} to keep it as it is"
            ),
        ]
        for (text, name, hint) in table {
            #expect(
                throws: ClientError(
                    "unknown template variable {\(name)} in '\(text)'; known: {date}, {logs}, {time}, {timestamp}, {user}",
                    hint: hint,
                    exitCode: 64
                )
            ) { try variables.resolveKnown(text) }
        }
    }

    @Test("output paths: writable ones pass; a file as directory, a directory as file, an unwritable file do not")
    func outputPaths() throws {
        let directory = "/tmp/failures-outpaths-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        try FileSystem.createDirectories(directory)
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        try FileSystem.writeAtomically(directory + "/file", "x")
        #expect(OutputPathCheck.problem(directory + "/new/deeper/out") == nil)
        #expect(OutputPathCheck.problem(directory + "/file") == nil)
        #expect(OutputPathCheck.problem(directory + "/file/out") == "\(directory)/file is not a directory")
        #expect(OutputPathCheck.problem(directory) == "it is a directory")
        #expect(
            OutputPathCheck.problem("/proc/1/nosuch/out")?.hasPrefix("the directory /proc/1 is not writable") == true
        )
        #expect(
            throws: ClientError(
                "cannot write --err \(directory)/file/err: \(directory)/file is not a directory",
                hint: "choose a path you can write, or create its directory first",
                exitCode: 78
            )
        ) { try OutputPathCheck.check([("--out", nil), ("--err", directory + "/file/err")]) }
    }

    @Test("defaults.walltime/memory/ncpus are synonyms; of two spellings the higher layer wins, in one layer the main")
    func configurationSpellings() throws {
        func layered(_ user: [String: String], _ project: [String: String]) -> Configuration {
            var configuration = Configuration()
            configuration.add(
                .map(["defaults": .map(user.mapValues(ConfigValue.string))]),
                from: .init(name: "user", path: "/u")
            )
            configuration.add(
                .map(["defaults": .map(project.mapValues(ConfigValue.string))]),
                from: .init(name: "project", path: "/p")
            )
            return configuration
        }
        let table: [(String, Configuration, UInt64?, UInt32?, UInt64?)] = [
            ("synonyms alone", layered([:], ["memory": "2GB", "ncpus": "3", "walltime": "1h"]), 2, 3, 3600),
            ("`time` as --time", layered([:], ["time": "30m"]), nil, nil, 1800),
            (
                "synonym in the higher layer", layered(["mem": "8GB", "cpus": "1"], ["memory": "2GB", "ncpus": "3"]), 2,
                3, nil
            ),
            ("main key in the higher layer", layered(["memory": "2GB"], ["mem": "8GB"]), 8, nil, nil),
            ("both in one layer: the main key", layered([:], ["memory": "2GB", "mem": "8GB"]), 8, nil, nil),
        ]
        for (name, configuration, memory, cpus, seconds) in table {
            var model = ResourceModel()
            model.fill(configuration: configuration, listInEffect: true)
            let resources = try model.resolved()
            #expect(resources.memoryBytes == memory.map { $0 << 30 }, "\(name)")
            #expect(resources.cpus == cpus, "\(name)")
            #expect(resources.walltimeSeconds == seconds, "\(name)")
        }
        var bad = ResourceModel()
        bad.fill(configuration: layered([:], ["ncpus": "-1"]), listInEffect: true)
        #expect(
            throws: ClientError(
                "defaults.ncpus is '-1', not a positive whole number",
                hint: "fix it with `qxub config set defaults.ncpus 4`",
                exitCode: 64
            )
        ) { try bad.resolved() }
    }

    @Test("a history made by an older qxub (schema v1) opens, keeps its jobs, and gains tags and paths")
    func historyMigration() throws {
        let directory = "/tmp/failures-history-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        try FileSystem.createDirectories(directory)
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        let path = directory + "/history.sqlite"
        let sql = """
            CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
            INSERT INTO grdb_migrations VALUES ('v1');
            CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, platform TEXT NOT NULL,
              backend TEXT NOT NULL, name TEXT NOT NULL, command TEXT NOT NULL, working_directory TEXT NOT NULL,
              state_directory TEXT NOT NULL, submitted_at REAL NOT NULL, ended_at REAL, exit_code INTEGER,
              status TEXT NOT NULL);
            INSERT INTO jobs (job_id, platform, backend, name, command, working_directory, state_directory,
              submitted_at, status) VALUES ('old-1', 'local', 'local', 'old', 'true', '/w', '/s', 1, 'submitted');
            """
        let made = try runCollectingOutput([
            "python3", "-c", "import sqlite3,sys; sqlite3.connect(sys.argv[1]).executescript(sys.argv[2])", path, sql,
        ])
        try #require(made.exit == .exited(0), "\(made.stderrText)")
        let history = try HistoryStore(path: path)
        let old = try #require(try history.find("old-1"))
        #expect(old.name == "old" && old.tags.isEmpty && old.stdoutPath.isEmpty)
        try history.recordSubmission(
            jobID: "new-1",
            platform: "local",
            backend: "local",
            name: "align-1",
            command: "true",
            workingDirectory: "/w",
            stateDirectory: "/s2",
            stdoutPath: "/o",
            tags: ["rule=align", "run=7"]
        )
        try history.recordSubmission(
            jobID: "new-2",
            platform: "gadi",
            backend: "pbspro",
            name: "sort-1",
            command: "true",
            workingDirectory: "/w",
            stateDirectory: "/s3",
            tags: ["rule=sort"]
        )
        let new = try #require(try history.find("new-1"))
        #expect(new.stdoutPath == "/o" && new.tags == ["rule=align", "run=7"])
        let table: [(HistoryStore.Filter, [String])] = [
            (.init(), ["new-2", "new-1", "old-1"]),
            (.init(tag: "rule=align"), ["new-1"]),
            (.init(tag: "rule"), ["new-2", "new-1"]),
            (.init(tag: "rule="), []),
            (.init(name: "*-1"), ["new-2", "new-1"]),
            (.init(name: "old"), ["old-1"]),
            (.init(platform: "gadi", tag: "rule"), ["new-2"]),
        ]
        for (filter, ids) in table {
            #expect(try history.recent(limit: 10, matching: filter).map(\.jobID) == ids, "\(filter)")
        }
        #expect(try history.recent(limit: 10, matching: .init(tag: "run")).first?.tags == ["rule=align", "run=7"])
    }

    @Test("after a failed fetch the URL is left alone for 10 minutes, then tried again")
    func definitionBackOff() throws {
        let cache = "/tmp/failures-cache-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        defer { _ = try? runCollectingOutput(["rm", "-rf", cache]) }
        // Nothing listens on port 1 of the loopback: the fetch fails at once.
        let url = "http://127.0.0.1:1/x.yaml"
        let now = MonotonicClock.wallNow()
        func failure(at time: Double) -> String? {
            do {
                _ = try DefinitionCache.file(for: url, directory: cache, now: time)
                return nil
            } catch {
                return error.message
            }
        }
        let first = try #require(failure(at: now))
        #expect(first.hasSuffix("; not retried for 10 min"), "\(first)")
        #expect(!first.contains("the fetch failed"), "the first run fetched: \(first)")
        let soon = try #require(failure(at: now + 9 * 60))
        #expect(soon.contains(": the fetch failed 9 min ago ("), "within the back-off, no fetch: \(soon)")
        let later = try #require(failure(at: now + 11 * 60))
        #expect(!later.contains("the fetch failed"), "after the back-off, fetched again: \(later)")
    }
}
