import QxubAgent
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("JobStore: the agent's files under the user's home")
struct JobStoreTests {
    @Test("a job directory is private, and a job id finds it through the index (ids with slashes too)")
    func directoriesAndIndex() throws {
        let store = JobStore(root: try temporaryDirectory())
        let directory = try store.createJobDirectory()
        var info = stat()
        #expect(stat(directory, &info) == 0)
        #expect(
            info.st_mode & 0o777 == 0o700,
            "job directories hold scripts and output: other users must not read them"
        )
        try store.link(jobID: "12345.gadi-pbs", to: directory)
        try store.link(jobID: "9[1]/x", to: directory)
        #expect(store.directory(forJobID: "12345.gadi-pbs") == directory)
        #expect(store.directory(forJobID: "9[1]/x") != nil)
        #expect(store.directory(forJobID: "12345") == nil, "a prefix is not an id")
        #expect(FileSystem.readText(directory + "/jobid") == "9[1]/x\n")
    }

    @Test("a short PBS id (354 for 354.vm) names the one job whose id it starts; two servers' 354s name none")
    func shortIDs() throws {
        let store = JobStore(root: try temporaryDirectory())
        let first = try store.createJobDirectory()
        try store.link(jobID: "354.vm", to: first)
        try store.link(jobID: "3540.vm", to: try store.createJobDirectory())
        try store.link(jobID: "77", to: try store.createJobDirectory())
        #expect(store.canonicalJobID("354") == "354.vm")
        #expect(store.canonicalJobID("354.vm") == "354.vm")
        #expect(store.canonicalJobID("77") == "77", "a Slurm id is its own")
        #expect(store.canonicalJobID("35") == nil, "a prefix of the number is not the id")
        #expect(store.canonicalJobID("999") == nil)
        #expect(store.canonicalJobID("vm") == nil)
        try store.link(jobID: "354.other", to: try store.createJobDirectory())
        #expect(store.canonicalJobID("354") == nil, "ambiguous between two servers: the full id is needed")
    }

    @Test("the history shows the end the agent decided (a walltime kill) over the job's own record")
    func decidedEnd() throws {
        let store = JobStore(root: try temporaryDirectory())
        let directory = try store.createJobDirectory()
        store.appendHistory(jobID: "5.vm", backend: "pbspro", name: "w", directory: directory, submitHost: "laptop")
        #expect(store.history(limit: 10).first?.exitStatus == nil)
        try FileSystem.writeAtomically(directory + "/exit", "143 1700000000 term\n")
        #expect(store.history(limit: 10).first?.exitStatus == 143)
        try FileSystem.writeAtomically(directory + "/end", "124 1700000001 walltime-exceeded\n")
        #expect(store.history(limit: 10).first?.exitStatus == 124)
    }

    @Test("a --terse job that nobody followed and that PBS killed for its walltime: the job log's kill line")
    func killedWithoutRecords() throws {
        let store = JobStore(root: try temporaryDirectory())
        let directory = try store.createJobDirectory()
        store.appendHistory(jobID: "6.vm", backend: "pbspro", name: "w", directory: directory, submitHost: "laptop")
        try FileSystem.writeAtomically(
            directory + "/joblog",
            "qxub 0.1.0: job 6.vm\n=>> PBS: job killed: walltime 4 exceeded limit 3\n"
        )
        #expect(store.history(limit: 10).first?.exitStatus == 124)
        let local = try store.createJobDirectory()
        store.appendHistory(jobID: "local-1", backend: "local", name: "l", directory: local, submitHost: "laptop")
        try FileSystem.writeAtomically(local + "/joblog", "=>> PBS: job killed: walltime 4 exceeded limit 3\n")
        #expect(
            store.history(limit: 10).first?.exitStatus == nil,
            "a local job's log is its own text, not a scheduler's"
        )
    }

    @Test("history: newest first, tabs and newlines in names cannot break a line, exits come from the job's record")
    func historyLines() throws {
        let store = JobStore(root: try temporaryDirectory())
        let first = try store.createJobDirectory()
        let second = try store.createJobDirectory()
        store.appendHistory(
            jobID: "1.pbs",
            backend: "pbspro",
            name: "align\tsample\n2",
            directory: first,
            submitHost: "laptop"
        )
        store.appendHistory(
            jobID: "2.pbs",
            backend: "pbspro",
            name: "sort",
            directory: second,
            submitHost: "gadi-login-03"
        )
        try FileSystem.writeAtomically(first + "/exit", "7 1764652800\n")
        let entries = store.history(limit: 10)
        #expect(entries.map(\.jobID) == ["2.pbs", "1.pbs"])
        #expect(entries.last?.name == "align sample 2")
        #expect(entries.last?.exitStatus == 7)
        #expect(entries.first?.exitStatus == nil, "no exit record yet: still running or unknown")
        #expect(entries.first?.submitHost == "gadi-login-03")
        #expect(store.history(limit: 1).map(\.jobID) == ["2.pbs"])
    }

    @Test("history survives a torn last line and garbage lines (a crash mid-append on NFS)")
    func tornHistory() throws {
        let store = JobStore(root: try temporaryDirectory())
        let directory = try store.createJobDirectory()
        store.appendHistory(jobID: "1.pbs", backend: "pbspro", name: "ok", directory: directory, submitHost: "h")
        let fd = open(store.historyPath, O_WRONLY | O_APPEND)
        try FileDescriptor.writeAll(fd, "not a history line\n1764652800\t2.pb")
        FileDescriptor.close(fd)
        store.appendHistory(jobID: "3.pbs", backend: "slurm", name: "after", directory: directory, submitHost: "h")
        let entries = store.history(limit: 10)
        #expect(
            entries.map(\.jobID) == ["3.pbs", "1.pbs"],
            "a torn line is never reported as a job, and never swallows the next one"
        )
        #expect(entries.first?.backend == "slurm" && entries.first?.name == "after")
    }

    @Test("reading the history reads as far back as the limit asks, at most its last 16 MiB, whatever its size")
    func boundedHistory() throws {
        let store = JobStore(root: try temporaryDirectory())
        let directory = try store.createJobDirectory()
        // About 20 MiB of history in few writes: 15,360 lines of 1.3 KiB.
        let line = "1764652800\tJOB\tslurm\t" + String(repeating: "n", count: 1200) + "\t" + directory + "\thost\n"
        let fd = open(store.historyPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        for block in 0..<30 {
            var text = ""
            for index in 0..<512 { text += line.replacingAll("JOB", with: "\(block * 512 + index)") }
            try FileDescriptor.writeAll(fd, text)
        }
        FileDescriptor.close(fd)
        // 10,000 entries are 13 MiB: more than the one MiB read before, within the window.
        let tenThousand = store.history(limit: 10_000)
        #expect(tenThousand.count == 10_000)
        #expect(tenThousand.first?.jobID == "\(30 * 512 - 1)" && tenThousand.last?.jobID == "\(30 * 512 - 10_000)")
        let newest = store.history(limit: 100_000)
        #expect(newest.first?.jobID == "\(30 * 512 - 1)")
        let windowLines = Int(JobStore.historyWindow) / (line.utf8.count + 2)  // ids of 5 digits for JOB
        #expect(
            newest.count < 30 * 512 && newest.count >= windowLines * 99 / 100,
            "only the last 16 MiB is read: \(newest.count) entries"
        )
        #expect(newest.allSatisfy { $0.name.count == 1200 }, "no partial first line is reported")
    }

    @Test("job metadata keeps newlines, backslashes and equals signs in values")
    func metaRoundTrip() {
        var meta = JobMeta()
        meta["command"] = "python -c 'a=1\nprint(a)' \\ end"
        meta["name"] = "x=y"
        let parsed = JobMeta(parsing: meta.serialized())
        #expect(parsed == meta)
        #expect(meta.serialized().split(separator: "\n").count == 2, "one line per key")
    }
}
