import QxubProtocol
import QxubScheduler
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The agent's files under the user's home: one directory per job, and an index by job id.
///
/// ```
/// ~/.qxub/jobs/20261125-103000-3f9a2c/   job.sh, meta, started, exit, cancelled, pid, out, err, joblog
/// ~/.qxub/by-id/128.gadi-pbs -> ../jobs/20261125-103000-3f9a2c
/// ```
/// Everything is plain files written atomically (no SQLite, no locks), so it is safe on NFS and Lustre
/// and any login node of the cluster can follow any job.
package struct JobStore: Sendable {
    package let root: String

    package init(root: String) {
        self.root = root
    }

    /// A new, empty job directory (mode 0700).
    package func createJobDirectory() throws -> String {
        try FileSystem.createDirectories(root + "/jobs")
        try FileSystem.createDirectories(root + "/by-id")
        for _ in 0..<20 {
            let path = root + "/jobs/" + Self.timestamp() + "-" + Self.randomHex(6)
            if mkdir(path, 0o700) == 0 { return path }
            if currentErrno() != EEXIST { throw SystemError("mkdir", path) }
        }
        throw SystemError("mkdir", root + "/jobs", errno: EEXIST)
    }

    /// A job directory's path as it would be created now (for dry runs, which create nothing).
    package func plannedJobDirectory() -> String {
        root + "/jobs/" + Self.timestamp() + "-" + Self.randomHex(6)
    }

    /// Records the scheduler's id for a job directory.
    package func link(jobID: String, to directory: String) throws {
        try FileSystem.writeAtomically(directory + "/jobid", jobID + "\n")
        try FileSystem.symlink(Self.linkTarget(directory), at: indexPath(jobID))
    }

    /// Records the client's submission token for a job directory, before the scheduler is asked (see
    /// ``Submit/token``); false when the token is taken (by another agent, or by ours on an NFS retry).
    package func link(token: String, to directory: String) throws -> Bool {
        try FileSystem.createDirectories(root + "/by-token")
        // symlink(2) itself, not FileSystem.symlink (which replaces): it fails if the name exists, so the
        // first agent to record the token owns the submission.
        guard Glibc.symlink(Self.linkTarget(directory), root + "/by-token/" + token) == 0 else {
            if currentErrno() == EEXIST { return false }
            throw SystemError("symlink", root + "/by-token/" + token)
        }
        return true
    }

    /// Where the token's link points, whether or not this host sees that directory yet (NFS).
    package func tokenTarget(_ token: String) -> String? {
        resolve(link: root + "/by-token/" + token)
    }

    /// The directory of the submission with this token, or nil.
    package func directory(forToken token: String) -> String? {
        tokenTarget(token).flatMap { FileSystem.isDirectory($0) ? $0 : nil }
    }

    /// The directory of a job submitted through qxub, or nil.
    package func directory(forJobID jobID: String) -> String? {
        resolve(link: indexPath(jobID)).flatMap { FileSystem.isDirectory($0) ? $0 : nil }
    }

    /// The id as the scheduler wrote it: PBS users type `354` for `354.vm` (and `354[]` for `354[].vm`), as
    /// qstat and qdel accept; a short id names the one job of the index whose id starts with `354.`. Nil when
    /// no job, or more than one (two PBS servers), has it.
    package func canonicalJobID(_ jobID: String) -> String? {
        var resolver = JobIDResolver(store: self)
        return resolver.canonical(jobID)
    }

    /// The job an id names, as the client typed it (`354` for `354.vm`): its id as the scheduler wrote it, its
    /// directory, description, backend and files. The one way from an id to a job; nil when no job submitted
    /// through qxub has it here.
    package func job(id: String, defaultKind: SchedulerKind) -> StoredJob? {
        var resolver = JobIDResolver(store: self)
        return resolver.job(id: id, defaultKind: defaultKind)
    }

    /// Resolves many ids (a status query of 30,000): the index is listed once, not once per short id.
    package struct JobIDResolver {
        let store: JobStore
        /// Index names by their part before the first dot (`354` → [`354.vm`]), listed on first need.
        private var byShortID: [String: [String]]?

        package init(store: JobStore) {
            self.store = store
        }

        /// As ``JobStore/job(id:defaultKind:)``.
        package mutating func job(id: String, defaultKind: SchedulerKind) -> StoredJob? {
            guard let jobID = canonical(id), let directory = store.directory(forJobID: jobID) else {
                return subjob(id: id, defaultKind: defaultKind)
            }
            let (meta, kind, paths) = store.job(directory: directory, defaultKind: defaultKind)
            return StoredJob(jobID: jobID, directory: directory, meta: meta, kind: kind, paths: paths)
        }

        /// A subjob of an array job submitted through qxub (`354[3].vm`, `354[3]`, Slurm `354_3`): the array's
        /// directory, with the subjob's own records and output files.
        private mutating func subjob(id: String, defaultKind: SchedulerKind) -> StoredJob? {
            guard let (arrayID, index) = ArrayRange.split(subjobID: id), let arrayJobID = canonical(arrayID),
                let directory = store.directory(forJobID: arrayJobID)
            else { return nil }
            let (meta, kind, paths) = store.job(directory: directory, defaultKind: defaultKind)
            guard meta["array"] != nil else { return nil }
            return StoredJob(
                jobID: ArrayRange.subjobID(of: arrayJobID, index: index),
                directory: directory,
                meta: meta,
                kind: kind,
                paths: paths.subjob(index, ownJobLog: kind == .local)
            )
        }

        /// As ``JobStore/canonicalJobID(_:)``.
        package mutating func canonical(_ jobID: String) -> String? {
            if FileSystem.readLink(store.indexPath(jobID)) != nil { return jobID }
            guard !jobID.isEmpty, !jobID.contains("."), jobID.first?.isNumber == true else { return nil }
            if byShortID == nil {
                var names: [String: [String]] = [:]
                for name in FileSystem.listDirectory(store.root + "/by-id") {
                    guard let dot = name.firstIndex(of: ".") else { continue }
                    names[String(name[..<dot]), default: []].append(name)
                }
                byShortID = names
            }
            let matches = byShortID?[String(jobID.map { $0 == "/" ? "_" : $0 })] ?? []
            return matches.count == 1 ? matches[0] : nil
        }
    }

    /// Index links (by-id, by-token) point at `../jobs/NAME`, so the store can move as a whole.
    private static func linkTarget(_ directory: String) -> String {
        "../jobs/" + (directory.split(separator: "/").last.map(String.init) ?? directory)
    }

    /// An index link's job directory as `<root>/jobs/NAME` (absolute targets as they are).
    private func resolve(link: String) -> String? {
        guard let target = FileSystem.readLink(link) else { return nil }
        return target.hasPrefix("../")
            ? root + "/" + target.dropFirst(3)
            : target.hasPrefix("/") ? target : FileSystem.directoryName(link) + "/" + target
    }

    /// `<root>/history.tsv`: one line per submission from any machine, appended with one `write` (safe on
    /// NFS and Lustre: no locking, no database, no mmap).
    package var historyPath: String { root + "/history.tsv" }

    package func appendHistory(jobID: String, backend: String, name: String, directory: String, submitHost: String) {
        func clean(_ text: String) -> String { String(text.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 }) }
        let line =
            [
                String(Int(MonotonicClock.wallNow())), clean(jobID), backend, clean(name), clean(directory),
                clean(submitHost),
            ].joined(separator: "\t") + "\n"
        let fd = open(historyPath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { FileDescriptor.close(fd) }
        // A writer that died mid-line (a killed agent, a full quota) leaves a torn last line: start on a
        // fresh one so the torn part can never swallow this record.
        var last: UInt8 = 0x0A
        let size = FileSystem.size(historyPath) ?? 0
        if size > 0, pread(fd, &last, 1, off_t(size - 1)) != 1 { last = 0x0A }
        try? FileDescriptor.writeAll(fd, (last == 0x0A ? "" : "\n") + line)
    }

    /// How much of history.tsv a query reads at most, from its end: 10,000 entries (the largest query) of
    /// up to 1.6 KiB each. Memory stays bounded however long the file grows.
    package static let historyWindow: UInt64 = 16 << 20

    /// The newest `limit` submissions: the file is read backwards a MiB at a time until it holds `limit`
    /// whole lines, or ``historyWindow`` bytes have been read.
    package func history(limit: Int) -> [HistoryEntry] {
        let fd = open(historyPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { FileDescriptor.close(fd) }
        let size = FileSystem.size(historyPath) ?? 0
        var start = size
        var chunks: [[UInt8]] = []
        var newlines = 0
        // One newline more than `limit`: the line before the first whole one may be cut by the window.
        while start > 0 && newlines <= limit && size - start < Self.historyWindow {
            let from = start - min(start, 1 << 20, Self.historyWindow - (size - start))
            guard let chunk = try? FileSystem.read(fd: fd, offset: from, count: Int(start - from)) else { return [] }
            newlines += chunk.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            chunks.append(chunk)
            start = from
        }
        let bytes = Array(chunks.reversed().joined())
        var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        if start > 0, !lines.isEmpty { lines.removeFirst() }  // a partial first line
        var entries: [HistoryEntry] = []
        for line in lines.reversed() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            // Six fields (a later agent may append more) with a known backend: anything else is a torn line.
            guard fields.count >= 6, let when = UInt64(fields[0]), SchedulerKind(name: fields[2]) != nil else {
                continue
            }
            // The agent's decided end (a walltime kill, a cancel) wins over the job's own record.
            func status(_ record: String) -> Int32? {
                FileSystem.readText(fields[4] + "/" + record).flatMap { text in
                    text.split(separator: " ").first.flatMap { Int32(String($0).trimmingWhitespace()) }
                }
            }
            let exit = status("end") ?? status("exit") ?? killedStatus(directory: fields[4], backend: fields[2])
            entries.append(
                HistoryEntry(
                    jobID: fields[1],
                    name: fields[3],
                    backend: fields[2],
                    submittedAt: when,
                    stateDirectory: fields[4],
                    submitHost: fields[5],
                    exitStatus: exit
                )
            )
            if entries.count >= limit { break }
        }
        return entries
    }

    /// A job nobody followed to its end (`--terse`) and that left no record: the scheduler's kill line in its
    /// job log (a walltime kill) still tells how it ended.
    private func killedStatus(directory: String, backend: String) -> Int32? {
        guard let kind = SchedulerKind(name: backend), kind != .local else { return nil }
        let paths = job(directory: directory, defaultKind: kind).paths
        return SchedulerBackend(kind: kind).killVerdict(jobLogAt: paths.joblog)?.exitStatus
    }

    /// A job's description, backend and files (its `--out`, `--err` and `--joblog` where it named them): the
    /// one place that reads `meta` into paths.
    package func job(
        directory: String,
        defaultKind: SchedulerKind
    ) -> (meta: JobMeta, kind: SchedulerKind, paths: JobPaths) {
        let meta = JobMeta(parsing: FileSystem.readText(directory + "/meta") ?? "")
        let kind = meta["backend"].flatMap(SchedulerKind.init(name:)) ?? defaultKind
        return (
            meta, kind,
            JobPaths(stateDirectory: directory, stdout: meta["stdout"], stderr: meta["stderr"], joblog: meta["joblog"])
        )
    }

    /// Keeps the decided end with the job (for `history --remote` and later status queries); the first end
    /// decided stays.
    package func recordEnd(_ termination: JobTermination, paths: JobPaths) {
        guard !FileSystem.exists(paths.endRecord) else { return }
        let word: String
        switch termination {
        case .exited: word = "exited"
        case .signaled: word = "signaled"
        case .killedByScheduler(let reason, _, _): word = "\(reason)".replacingAll(" ", with: "-")
        case .cancelled: word = "cancelled"
        case .unknown: word = "unknown"
        case .exitUnrecorded: word = "exited-unrecorded"
        }
        try? FileSystem.writeAtomically(
            paths.endRecord,
            "\(termination.exitStatus) \(Int(MonotonicClock.wallNow())) \(word)\n"
        )
    }

    func indexPath(_ jobID: String) -> String {
        root + "/by-id/" + String(jobID.map { $0 == "/" ? "_" : $0 })
    }

    static func timestamp() -> String {
        let now = LocalTime()
        return now.compactDate + "-" + now.compactTime
    }

    static func randomHex(_ count: Int) -> String {
        let digits = Array("0123456789abcdef")
        return String((0..<count).map { _ in digits[Int.random(in: 0..<16)] })
    }
}

/// A job submitted through qxub, as its directory describes it (``JobStore/job(id:defaultKind:)``).
package struct StoredJob: Hashable, Sendable {
    /// The id as the scheduler wrote it (`354.vm` where the client asked for `354`).
    package var jobID: String
    package var directory: String
    package var meta: JobMeta
    package var kind: SchedulerKind
    package var paths: JobPaths

    /// The walltime asked for, in seconds.
    package var walltime: UInt64? { meta["walltime"].flatMap { UInt64($0) } }
}

/// The `key=value` description of a submission kept with the job (for attach and history).
package struct JobMeta: Hashable, Sendable {
    package var values: [String: String]

    package init(values: [String: String] = [:]) {
        self.values = values
    }

    package subscript(key: String) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// One `key=value` per line; backslash and newline escaped.
    package func serialized() -> String {
        values.keys.sorted().map { key in
            let value = values[key]!.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
            return key + "=" + value + "\n"
        }.joined()
    }

    package init(parsing text: String) {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            var value = ""
            var escaped = false
            for character in line[line.index(after: equals)...] {
                if escaped {
                    value.append(character == "n" ? "\n" : character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else {
                    value.append(character)
                }
            }
            values[String(line[..<equals])] = value
        }
        self.values = values
    }
}

/// The records a job script writes.
package struct JobRecords: Hashable, Sendable {
    /// From `started`: when and where.
    package var startedHost: String?
    /// From `exit`: the command's status and an optional note ("setup", "pre").
    package var exitStatus: Int32?
    package var exitNote: String
    package var cancelled: Bool
    /// When the job started and ended (seconds since the epoch, the execution host's clock).
    package var startedAt: UInt64?
    package var endedAt: UInt64?

    package init(paths: JobPaths) {
        startedHost = nil
        exitStatus = nil
        exitNote = ""
        if let text = FileSystem.readText(paths.startedRecord) {
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            startedAt = fields.first.flatMap { UInt64($0) }
            startedHost = fields.count > 1 ? String(fields[1]) : ""
        }
        if let text = FileSystem.readText(paths.exitRecord) {
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            exitStatus = fields.first.flatMap { Int32($0) }
            endedAt = fields.count > 1 ? UInt64(fields[1]) : nil
            exitNote = fields.count > 2 ? String(fields[2]) : ""
        }
        // A subjob is cancelled with its array too (`qdel ID[]`, `scancel ID`, Ctrl-C on a followed array).
        cancelled =
            FileSystem.exists(paths.cancelRecord)
            || (!paths.recordSuffix.isEmpty && FileSystem.exists(paths.stateDirectory + "/cancelled"))
    }

    /// The end of a job whose exit record could not be written (a full disk or quota): the job script then
    /// leaves an empty `exit.unwritable.STATUS` (no data blocks needed). Read only once the job has gone
    /// without a record, so following a running job never lists its directory.
    package static func unwrittenExit(_ paths: JobPaths) -> JobTermination? {
        let prefix = "exit.unwritable."  // next to JobPaths.exitRecord, named by JobScript's qxub_record
        let statuses = FileSystem.listDirectory(paths.stateDirectory).compactMap { name -> Int32? in
            name.hasPrefix(prefix) ? Int32(name.dropFirst(prefix.count)) : nil
        }
        guard let status = statuses.first else { return nil }
        return .exitUnrecorded(
            status,
            detail: "the job exited \(status), but its exit record could not be written "
                + "(disk full or over quota in \(paths.stateDirectory)?)"
        )
    }
}
