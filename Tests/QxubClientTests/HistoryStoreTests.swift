import QxubClient
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Job history in SQLite")
struct HistoryStoreTests {
    func store() throws -> (HistoryStore, String) {
        let directory = "/tmp/qxub-history-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        return (try HistoryStore(path: directory + "/history.sqlite"), directory)
    }

    @Test("10,000 records: nothing lost, the newest first, prefixes find jobs")
    func manyRecords() throws {
        let (history, directory) = try store()
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        for index in 0..<10_000 {
            try history.recordSubmission(
                jobID: "\(100_000 + index).gadi-pbs",
                platform: index % 2 == 0 ? "gadi" : "local",
                backend: "pbspro",
                name: "job\(index)",
                command: "echo \(index)",
                workingDirectory: "/w",
                stateDirectory: "/s/\(index)"
            )
        }
        #expect(try history.count() == 10_000)
        let recent = try history.recent(limit: 3)
        #expect(recent.map(\.jobID) == ["109999.gadi-pbs", "109998.gadi-pbs", "109997.gadi-pbs"])
        #expect(try history.recent(limit: 5, platform: "gadi").allSatisfy { $0.platform == "gadi" })
        try history.recordEnd(jobID: "109999.gadi-pbs", platform: "local", exitCode: 3, status: "failed")
        let found = try #require(try history.find("109999"))
        #expect(found.exitCode == 3 && found.status == "failed")
        #expect(try history.find("10") == nil, "an ambiguous prefix finds nothing")
        #expect(try history.find("1%") == nil, "LIKE wildcards are literal")
        #expect(try history.find("1*") == nil, "GLOB wildcards are literal")
    }

    @Test("each id's platform in one read: exact ids, unique prefixes, and nothing for ids it does not have")
    func platformsOfIDs() throws {
        let (history, directory) = try store()
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        for (id, platform) in [("128.gadi-pbs", "gadi"), ("local-7", "local"), ("129.gadi-pbs", "gadi")] {
            try history.recordSubmission(
                jobID: id,
                platform: platform,
                backend: "pbspro",
                name: "n",
                command: "c",
                workingDirectory: "/w",
                stateDirectory: "/s"
            )
        }
        let platforms = try history.platforms(of: ["128", "local-7", "12", "nosuch", "1[2]8*"])
        #expect(platforms == ["128": "gadi", "local-7": "local"])
    }

    @Test("a file that is not a database is a clear error")
    func corrupt() throws {
        let directory = "/tmp/qxub-history-bad-\(getpid())"
        try FileSystem.createDirectories(directory)
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        try FileSystem.writeAtomically(directory + "/history.sqlite", String(repeating: "not sqlite ", count: 100))
        let expected = ClientError(
            "cannot open the job history \(directory)/history.sqlite: SQLite error 26: file is not a database - while "
                + "executing `PRAGMA synchronous = NORMAL`",
            hint: "move it aside, or set QXUB_HISTORY_DB",
            exitCode: ExitCodes.internalError
        )
        #expect(throws: expected) { try HistoryStore(path: directory + "/history.sqlite") }
    }

    @Test("a deferred store creates nothing until its first record, then records and reads as an opened one")
    func deferredOpen() throws {
        let directory = "/tmp/qxub-history-deferred-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        let history = HistoryStore(deferredPath: directory + "/history.sqlite")
        #expect(!FileSystem.exists(directory), "nothing is opened or created before the first use")
        try history.recordSubmission(
            jobID: "7.gadi-pbs",
            platform: "gadi",
            backend: "pbspro",
            name: "n",
            command: "true",
            workingDirectory: "/w",
            stateDirectory: "/s"
        )
        #expect(try history.recent(limit: 5).map(\.jobID) == ["7.gadi-pbs"])
        #expect(try HistoryStore(path: directory + "/history.sqlite").count() == 1)
    }

    @Test("a store that holds its records writes nothing until writeHeld, then each submission once, in order")
    func heldRecords() throws {
        let directory = "/tmp/qxub-history-held-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        let history = HistoryStore(deferredPath: directory + "/history.sqlite", holdingRecords: true)
        for id in ["1.gadi-pbs", "2.gadi-pbs"] {
            try history.recordSubmission(
                jobID: id,
                platform: "gadi",
                backend: "pbspro",
                name: "n",
                command: "true",
                workingDirectory: "/w",
                stateDirectory: "/s"
            )
        }
        #expect(!FileSystem.exists(directory), "nothing is written before writeHeld")
        try history.writeHeld()
        try history.writeHeld()
        #expect(
            try HistoryStore(path: directory + "/history.sqlite").recent(limit: 5).map(\.jobID) == [
                "2.gadi-pbs", "1.gadi-pbs",
            ]
        )
    }

    @Test("a deferred store that cannot open fails its first use with the error an opened one gives")
    func deferredCorrupt() throws {
        let directory = "/tmp/qxub-history-deferred-bad-\(getpid())"
        try FileSystem.createDirectories(directory)
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        try FileSystem.writeAtomically(directory + "/history.sqlite", String(repeating: "not sqlite ", count: 100))
        let history = HistoryStore(deferredPath: directory + "/history.sqlite")
        let expected = ClientError(
            "cannot open the job history \(directory)/history.sqlite: SQLite error 26: file is not a database - while "
                + "executing `PRAGMA synchronous = NORMAL`",
            hint: "move it aside, or set QXUB_HISTORY_DB",
            exitCode: ExitCodes.internalError
        )
        #expect(throws: expected) {
            try history.recordEnd(jobID: "7.gadi-pbs", platform: "gadi", exitCode: 0, status: "succeeded")
        }
    }
}
