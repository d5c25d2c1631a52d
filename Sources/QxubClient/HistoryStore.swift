import GRDB
import QxubSystem
import Synchronization

/// Every submission, local or remote, in a local SQLite database (`~/.local/share/qxub/history.sqlite`).
///
/// One small transaction per submission and per job end: history stays fast with many thousands of
/// records (the Python qxub rewrites a YAML file on every call and wipes it past about 150). Rollback
/// journal, no WAL and no mmap, so a home directory on NFS or Lustre is safe.
package final class HistoryStore: Sendable {
    package struct Record: Sendable, Hashable {
        package var id: Int64
        package var jobID: String
        package var platform: String
        package var backend: String
        package var name: String
        package var command: String
        package var workingDirectory: String
        package var stateDirectory: String
        package var submittedAt: Double
        package var endedAt: Double?
        package var exitCode: Int?
        package var status: String
        /// The files the job writes: empty when the job kept the default (its state directory).
        package var stdoutPath = ""
        package var stderrPath = ""
        package var joblogPath = ""
        /// `--tag` pairs as `KEY=VALUE`, in the order given.
        package var tags: [String] = []
    }

    /// Which records a listing shows (every condition given must hold).
    package struct Filter: Sendable, Hashable {
        package var platform: String?
        /// `KEY=VALUE` (that pair) or `KEY` (any value).
        package var tag: String?
        /// The job's name, or a shell pattern (`align-*`).
        package var name: String?

        package init(platform: String? = nil, tag: String? = nil, name: String? = nil) {
            self.platform = platform
            self.tag = tag
            self.name = name
        }
    }

    /// The open database; nil until first use for a store made with ``init(deferredPath:holdingRecords:)``.
    private let opened: Mutex<DatabaseQueue?>
    /// Submissions recorded but not yet written (a store that holds its records; see ``writeHeld()``).
    private let held = Mutex<[Submission]>([])
    private let holdsRecords: Bool

    private struct Submission {
        var jobID, platform, backend, name, command, workingDirectory, stateDirectory: String
        var submittedAt: Double
        var stdoutPath = "", stderrPath = "", joblogPath = ""
        var tags: [String] = []
    }
    package let path: String

    /// `QXUB_HISTORY_DB`, else `$XDG_DATA_HOME/qxub/history.sqlite`, else `~/.local/share/qxub/history.sqlite`.
    package static var defaultPath: String {
        if let explicit = Environment.get("QXUB_HISTORY_DB"), !explicit.isEmpty { return explicit }
        let base =
            Environment.get("XDG_DATA_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? (Environment.get("HOME") ?? "/tmp")
            + "/.local/share"
        return base + "/qxub/history.sqlite"
    }

    /// Opens (and if need be creates) the database now, so that a command that shows the history fails
    /// at once when it cannot be read.
    package init(path: String = HistoryStore.defaultPath) throws(ClientError) {
        self.path = path
        opened = Mutex(try Self.open(path))
        holdsRecords = false
    }

    /// Opens the database at its first use: `qxub exec` records a submission only after the job id is
    /// out, so opening it (GRDB's set-up and the schema check) stays off the path to the id.
    /// - Parameter holdingRecords: keep submissions in memory until ``writeHeld()`` (a warm fork of `qxub exec
    ///   --terse` reports its exit status first, then writes them, off the path of the qxub that waits).
    package init(deferredPath path: String, holdingRecords: Bool = false) {
        self.path = path
        opened = Mutex(nil)
        holdsRecords = holdingRecords
    }

    /// Writes the submissions held so far.
    package func writeHeld() throws {
        for submission in held.withLock({ records in
            defer { records.removeAll() }
            return records
        }) {
            try insert(submission)
        }
    }

    private func queue() throws(ClientError) -> DatabaseQueue {
        try opened.withLock { (queue: inout DatabaseQueue?) throws(ClientError) -> DatabaseQueue in
            if let queue { return queue }
            let fresh = try Self.open(path)
            queue = fresh
            return fresh
        }
    }

    private static func open(_ path: String) throws(ClientError) -> DatabaseQueue {
        do {
            try FileSystem.createDirectories(FileSystem.directoryName(path), mode: 0o700)
            var configuration = GRDB.Configuration()
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA mmap_size = 0")
                // History is a record, not a ledger: one sync per commit is plenty.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(
                    sql: """
                        CREATE TABLE jobs (
                            id INTEGER PRIMARY KEY AUTOINCREMENT,
                            job_id TEXT NOT NULL,
                            platform TEXT NOT NULL,
                            backend TEXT NOT NULL,
                            name TEXT NOT NULL,
                            command TEXT NOT NULL,
                            working_directory TEXT NOT NULL,
                            state_directory TEXT NOT NULL,
                            submitted_at REAL NOT NULL,
                            ended_at REAL,
                            exit_code INTEGER,
                            status TEXT NOT NULL
                        );
                        CREATE INDEX jobs_job_id ON jobs(job_id);
                        CREATE INDEX jobs_submitted_at ON jobs(submitted_at);
                        """
                )
            }
            // v2: output paths and tags (`--tag`), for `history show` and `history --tag`. Older databases gain
            // the columns with empty values; older qxubs ignore them.
            migrator.registerMigration("v2") { db in
                try db.execute(
                    sql: """
                        ALTER TABLE jobs ADD COLUMN stdout_path TEXT NOT NULL DEFAULT '';
                        ALTER TABLE jobs ADD COLUMN stderr_path TEXT NOT NULL DEFAULT '';
                        ALTER TABLE jobs ADD COLUMN joblog_path TEXT NOT NULL DEFAULT '';
                        CREATE TABLE job_tags (
                            job INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                            key TEXT NOT NULL,
                            value TEXT NOT NULL
                        );
                        CREATE INDEX job_tags_key ON job_tags(key, value);
                        CREATE INDEX job_tags_job ON job_tags(job);
                        """
                )
            }
            try migrator.migrate(queue)
            return queue
        } catch {
            throw ClientError(
                "cannot open the job history \(path): \(error)",
                hint: "move it aside, or set QXUB_HISTORY_DB",
                exitCode: ExitCodes.internalError
            )
        }
    }

    /// Records a submission; returns its row id.
    @discardableResult
    package func recordSubmission(
        jobID: String,
        platform: String,
        backend: String,
        name: String,
        command: String,
        workingDirectory: String,
        stateDirectory: String,
        stdoutPath: String = "",
        stderrPath: String = "",
        joblogPath: String = "",
        tags: [String] = []
    ) throws -> Int64 {
        let submission = Submission(
            jobID: jobID,
            platform: platform,
            backend: backend,
            name: name,
            command: command,
            workingDirectory: workingDirectory,
            stateDirectory: stateDirectory,
            submittedAt: MonotonicClock.wallNow(),
            stdoutPath: stdoutPath,
            stderrPath: stderrPath,
            joblogPath: joblogPath,
            tags: tags
        )
        if holdsRecords {
            held.withLock { $0.append(submission) }
            return 0
        }
        return try insert(submission)
    }

    @discardableResult
    private func insert(_ submission: Submission) throws -> Int64 {
        try queue().write { db in
            try db.execute(
                sql:
                    "INSERT INTO jobs (job_id, platform, backend, name, command, working_directory, state_directory, submitted_at, status, stdout_path, stderr_path, joblog_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'submitted', ?, ?, ?)",
                arguments: [
                    submission.jobID, submission.platform, submission.backend, submission.name, submission.command,
                    submission.workingDirectory, submission.stateDirectory, submission.submittedAt,
                    submission.stdoutPath, submission.stderrPath, submission.joblogPath,
                ]
            )
            let row = db.lastInsertedRowID
            for tag in submission.tags {
                let pair = Self.split(tag)
                try db.execute(
                    sql: "INSERT INTO job_tags (job, key, value) VALUES (?, ?, ?)",
                    arguments: [row, pair.key, pair.value ?? ""]
                )
            }
            return row
        }
    }

    /// Records how a job ended (the newest record with that id on that platform).
    package func recordEnd(jobID: String, platform: String, exitCode: Int32, status: String) throws {
        try queue().write { db in
            try db.execute(
                sql:
                    "UPDATE jobs SET ended_at = ?, exit_code = ?, status = ? WHERE id = (SELECT id FROM jobs WHERE job_id = ? AND platform = ? ORDER BY id DESC LIMIT 1)",
                arguments: [MonotonicClock.wallNow(), Int(exitCode), status, jobID, platform]
            )
        }
    }

    /// The newest records first.
    package func recent(limit: Int, platform: String? = nil) throws -> [Record] {
        try recent(limit: limit, matching: Filter(platform: platform))
    }

    /// The newest records that pass `filter` first.
    package func recent(limit: Int, matching filter: Filter) throws -> [Record] {
        try queue().read { db in
            var conditions: [String] = []
            var arguments: [(any DatabaseValueConvertible)?] = []
            if let platform = filter.platform {
                conditions.append("platform = ?")
                arguments.append(platform)
            }
            if let name = filter.name {
                conditions.append("name GLOB ?")
                arguments.append(name)
            }
            if let tag = filter.tag {
                let pair = Self.split(tag)
                if let value = pair.value {
                    conditions.append("id IN (SELECT job FROM job_tags WHERE key = ? AND value = ?)")
                    arguments += [pair.key, value]
                } else {
                    conditions.append("id IN (SELECT job FROM job_tags WHERE key = ?)")
                    arguments.append(pair.key)
                }
            }
            arguments.append(limit)
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT * FROM jobs"
                    + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
                    + " ORDER BY id DESC LIMIT ?",
                arguments: StatementArguments(arguments)
            )
            var records = rows.map(Self.record)
            // The tags of all these records in one read (`status` reads thousands of records this way).
            if let oldest = records.last?.id {
                var tags: [Int64: [String]] = [:]
                for row in try Row.fetchAll(
                    db,
                    sql: "SELECT job, key, value FROM job_tags WHERE job >= ? ORDER BY rowid",
                    arguments: [oldest]
                ) {
                    tags[row["job"], default: []].append((row["key"] as String) + "=" + (row["value"] as String))
                }
                for index in records.indices { records[index].tags = tags[records[index].id] ?? [] }
            }
            return records
        }
    }

    /// `KEY=VALUE` as its parts; `KEY` alone has no value.
    private static func split(_ tag: String) -> (key: String, value: String?) {
        guard let equals = tag.firstIndex(of: "=") else { return (tag, nil) }
        return (String(tag[..<equals]), String(tag[tag.index(after: equals)...]))
    }

    private static func withTags(_ db: Database, _ record: Record) throws -> Record {
        var record = record
        record.tags = try Row.fetchAll(
            db,
            sql: "SELECT key, value FROM job_tags WHERE job = ? ORDER BY rowid",
            arguments: [record.id]
        ).map { row in (row["key"] as String) + "=" + (row["value"] as String) }
        return record
    }

    /// A job by id, or by a unique prefix of its id ("128" finds "128.gadi-pbs").
    package func find(_ jobID: String) throws -> Record? {
        try queue().read { db in try Self.lookup(db, jobID) }
    }

    /// The platform of each id the history has (by id or unique prefix, as ``find(_:)``), in one read:
    /// `qxub status` of thousands of ids asks this once.
    package func platforms(of jobIDs: [String]) throws -> [String: String] {
        try queue().read { db in
            var platforms: [String: String] = [:]
            for id in jobIDs where platforms[id] == nil {
                if let record = try Self.lookup(db, id) { platforms[id] = record.platform }
            }
            return platforms
        }
    }

    /// The newest record with this id, else the one record whose id starts with it.
    private static func lookup(_ db: Database, _ jobID: String) throws -> Record? {
        if let row = try Row.fetchOne(
            db,
            sql: "SELECT * FROM jobs WHERE job_id = ? ORDER BY id DESC LIMIT 1",
            arguments: [jobID]
        ) {
            return try withTags(db, record(row))
        }
        // GLOB, not LIKE: it is case-sensitive, so SQLite answers a prefix from the job_id index.
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT * FROM jobs WHERE job_id GLOB ? ORDER BY id DESC LIMIT 2",
            arguments: [globPrefix(jobID)]
        )
        return rows.count == 1 ? try withTags(db, record(rows[0])) : nil
    }

    /// Jobs submitted and not yet seen to end, newest first (optionally on one platform).
    package func unfinished(platform: String? = nil) throws -> [Record] {
        try recent(limit: 100_000, platform: platform).filter { $0.endedAt == nil }
    }

    package func count() throws -> Int {
        try queue().read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs") ?? 0 }
    }

    /// A GLOB pattern matching ids that start with `text` (its `*`, `?` and `[` taken literally).
    static func globPrefix(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "*" || character == "?" || character == "[" {
                escaped += "[\(character)]"
            } else {
                escaped.append(character)
            }
        }
        return escaped + "*"
    }

    static func record(_ row: Row) -> Record {
        Record(
            id: row["id"],
            jobID: row["job_id"],
            platform: row["platform"],
            backend: row["backend"],
            name: row["name"],
            command: row["command"],
            workingDirectory: row["working_directory"],
            stateDirectory: row["state_directory"],
            submittedAt: row["submitted_at"],
            endedAt: row["ended_at"],
            exitCode: row["exit_code"],
            status: row["status"],
            stdoutPath: row["stdout_path"],
            stderrPath: row["stderr_path"],
            joblogPath: row["joblog_path"]
        )
    }
}
