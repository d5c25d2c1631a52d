// Requests from the client and the agent's answers. Field 1 of every request is its request id, so a
// peer that does not know a request type can still answer it with an error naming that id.

/// Submit one job.
package struct Submit: WireCodable, Hashable {
    package var requestID: UInt32
    package var spec: JobSpec
    /// Render the script and the submission command, submit nothing (`qxub exec --dry`).
    package var dryRun: Bool
    /// Chosen by the client once per job (16-64 lowercase hex digits) and sent again with every retry of
    /// the same submission: an agent that already has a job for it answers with that job instead of
    /// submitting a second one (a connection lost between submit and submitted loses no job, and makes
    /// none twice). Empty: no retries.
    package var token: String
    package init(requestID: UInt32, spec: JobSpec, dryRun: Bool = false, token: String = "") {
        self.requestID = requestID
        self.spec = spec
        self.dryRun = dryRun
        self.token = token
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.message(2, spec)
        writer.bool(3, dryRun)
        writer.string(4, token)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, spec: JobSpec(name: "", command: .shell(""), workingDirectory: ""))
        var sawSpec = false
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2:
                spec = try field.message()
                sawSpec = true
            case 3: dryRun = try field.bool()
            case 4: token = try field.string()
            default: break
            }
        }
        guard sawSpec else { throw .malformedPayload(type: .submit, reason: "no job spec") }
        guard token.isEmpty || Self.isValidToken(token) else {
            throw .malformedPayload(type: .submit, reason: "the submission token is not 16-64 lowercase hex digits")
        }
    }
}

extension Submit {
    /// A fresh token: 32 hex digits from the system's random source.
    package static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: (0..<32).map { _ in digits[Int(generator.next() % 16)] }, as: UTF8.self)
    }

    /// 16-64 lowercase hex digits (it names a file on the agent's host).
    package static func isValidToken(_ token: String) -> Bool {
        (16...64).contains(token.utf8.count)
            && token.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// The reply to ``Submit``: the scheduler accepted the job.
package struct Submitted: WireCodable, Hashable {
    package var requestID: UInt32
    package var jobID: String
    /// The backend that took it: "local", "slurm" or "pbspro".
    package var backend: String
    /// Where the job's script, status records and (by default) output live on the agent's host.
    package var stateDirectory: String
    /// The job script (always for a dry run).
    package var script: String
    /// The submission command as an argv (empty for the local backend).
    package var command: [String]
    /// Things the user should know (an option this scheduler ignores, say).
    package var warnings: [String]
    /// A dry run's word on the room where job state lives ("12 GB free under /scratch/a00/ab1234/.qxub"),
    /// which `qxub doctor` shows; empty otherwise.
    package var room: String = ""
    /// A dry run's word on the disk quota there ("9.1 GiB of 10 GiB used on /home (lquota)"); empty when the
    /// agent read none.
    package var quota: String = ""
    package init(
        requestID: UInt32,
        jobID: String,
        backend: String,
        stateDirectory: String = "",
        script: String = "",
        command: [String] = [],
        warnings: [String] = [],
        room: String = "",
        quota: String = ""
    ) {
        self.requestID = requestID
        self.jobID = jobID
        self.backend = backend
        self.stateDirectory = stateDirectory
        self.script = script
        self.command = command
        self.warnings = warnings
        self.room = room
        self.quota = quota
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.string(2, jobID)
        writer.string(3, backend)
        writer.string(4, stateDirectory)
        writer.string(5, script)
        writer.strings(6, command)
        writer.strings(7, warnings)
        if !room.isEmpty { writer.string(8, room) }
        if !quota.isEmpty { writer.string(9, quota) }
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, jobID: "", backend: "")
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: jobID = try field.string()
            case 3: backend = try field.string()
            case 4: stateDirectory = try field.string()
            case 5: script = try field.string()
            case 6: command.append(try field.string())
            case 7: warnings.append(try field.string())
            case 8: room = try field.string()
            case 9: quota = try field.string()
            default: break
            }
        }
    }
}

/// Follow a job on the frame's channel, resuming its output at the given byte offsets.
package struct Watch: WireCodable, Hashable {
    package var requestID: UInt32
    package var jobID: String
    package var stdoutOffset: UInt64
    package var stderrOffset: UInt64
    /// Stream the job log (the scheduler's own output, with qxub's audit block) as stdout instead.
    package var joblog: Bool
    /// Non-zero: start stdout at most this many bytes before its end, if that is past `stdoutOffset` (an
    /// interactive job's terminal, taken back by `qxub attach`, replays its recent output only).
    package var stdoutTail: UInt64 = 0
    package init(
        requestID: UInt32,
        jobID: String,
        stdoutOffset: UInt64 = 0,
        stderrOffset: UInt64 = 0,
        joblog: Bool = false
    ) {
        self.requestID = requestID
        self.jobID = jobID
        self.stdoutOffset = stdoutOffset
        self.stderrOffset = stderrOffset
        self.joblog = joblog
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.string(2, jobID)
        writer.varint(3, stdoutOffset)
        writer.varint(4, stderrOffset)
        writer.bool(5, joblog)
        if stdoutTail > 0 { writer.varint(6, stdoutTail) }
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, jobID: "")
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: jobID = try field.string()
            case 3: stdoutOffset = try field.int63()
            case 4: stderrOffset = try field.int63()
            case 5: joblog = try field.bool()
            case 6: stdoutTail = try field.int63()
            default: break
            }
        }
    }
}

/// A request that names one job: ``FrameType/cancel``, ``FrameType/unwatch``.
package struct JobRequest: WireCodable, Hashable {
    package var requestID: UInt32
    package var jobID: String
    package init(requestID: UInt32, jobID: String) {
        self.requestID = requestID
        self.jobID = jobID
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.string(2, jobID)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, jobID: "")
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: jobID = try field.string()
            default: break
            }
        }
    }
}

/// The reply to a cancel: the scheduler accepted it (the job's end arrives later as ``JobTermination``).
package struct CancelResult: WireCodable, Hashable {
    package var requestID: UInt32
    package var jobID: String
    /// False when the job had already finished: nothing was cancelled.
    package var wasActive: Bool
    package init(requestID: UInt32, jobID: String, wasActive: Bool) {
        self.requestID = requestID
        self.jobID = jobID
        self.wasActive = wasActive
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.string(2, jobID)
        writer.bool(3, wasActive)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, jobID: "", wasActive: false)
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: jobID = try field.string()
            case 3: wasActive = try field.bool()
            default: break
            }
        }
    }
}

/// Status of many jobs in one request (one scheduler query on the agent's side).
package struct StatusQuery: WireCodable, Hashable {
    package var requestID: UInt32
    package var jobIDs: [String]
    /// Also ask the scheduler what each finished job used (``JobStatus/schedulerUsage``; an agent with
    /// ``ProtocolConstants/capabilityUsage``).
    package var usage: Bool
    package init(requestID: UInt32, jobIDs: [String], usage: Bool = false) {
        self.requestID = requestID
        self.jobIDs = jobIDs
        self.usage = usage
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.strings(2, jobIDs)
        if usage { writer.bool(3, true) }
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, jobIDs: [])
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: jobIDs.append(try field.string())
            case 3: usage = try field.bool()
            default: break
            }
        }
    }
    /// `jobIDs` in runs whose queries each fit `maxPayload` bytes (a client sends one query per run).
    package static func runs(of jobIDs: [String], maxPayload: Int) -> [Range<Int>] {
        ReplySplitter.runs(
            sizes: jobIDs.map { ReplySplitter.fieldSize(field: 2, length: $0.utf8.count) },
            maxPayload: maxPayload
        )
    }
}

/// One job's line in a ``StatusReport``.
package struct JobStatus: WireCodable, Hashable {
    package var jobID: String
    package var state: JobState
    package var termination: JobTermination?
    /// When the job started and ended (seconds since the epoch, from its records; 0 when unknown).
    package var startedAt: UInt64
    package var endedAt: UInt64
    /// The scheduler's record of what the job used, when the query asked for it (``StatusQuery/usage``)
    /// and the job is a finished scheduler job.
    package var schedulerUsage: SchedulerUsage?
    package init(
        jobID: String,
        state: JobState,
        termination: JobTermination? = nil,
        startedAt: UInt64 = 0,
        endedAt: UInt64 = 0,
        schedulerUsage: SchedulerUsage? = nil
    ) {
        self.jobID = jobID
        self.state = state
        self.termination = termination
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.schedulerUsage = schedulerUsage
    }
    package func encode(to writer: inout WireWriter) {
        writer.string(1, jobID)
        writer.message(2, state)
        writer.message(3, termination)
        writer.varint(4, startedAt)
        writer.varint(5, endedAt)
        writer.message(6, schedulerUsage)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(jobID: "", state: JobState(phase: .unknown))
        while let field = try reader.next() {
            switch field.number {
            case 1: jobID = try field.string()
            case 2: state = try field.message()
            case 3: termination = try field.message()
            case 4: startedAt = try field.int63()
            case 5: endedAt = try field.int63()
            case 6: schedulerUsage = try field.message()
            default: break
            }
        }
    }
}

/// The reply to ``StatusQuery``: one entry per job asked about, in the same order.
///
/// A reply larger than the peer's maximum frame comes as several reports with the same request id, each
/// with `more` but the last (for a client that announced ``ProtocolConstants/capabilitySplitReplies``).
package struct StatusReport: WireCodable, Hashable {
    package var requestID: UInt32
    package var jobs: [JobStatus]
    /// More reports follow for this request.
    package var more: Bool
    package init(requestID: UInt32, jobs: [JobStatus], more: Bool = false) {
        self.requestID = requestID
        self.jobs = jobs
        self.more = more
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.messages(2, jobs)
        writer.bool(3, more)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, jobs: [])
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: jobs.append(try field.message())
            case 3: more = try field.bool()
            default: break
            }
        }
    }

    /// The reply as reports whose payloads each fit `maxPayload` bytes (one report when it all fits).
    package static func split(requestID: UInt32, jobs: [JobStatus], maxPayload: Int) -> [StatusReport] {
        let runs = ReplySplitter.runs(of: jobs, field: 2, maxPayload: maxPayload)
        return runs.enumerated().map { index, run in
            StatusReport(requestID: requestID, jobs: Array(jobs[run]), more: index < runs.count - 1)
        }
    }
}

/// Bytes of a job's stdout or stderr, starting at `offset` in that stream.
package struct Output: WireCodable, Hashable {
    package enum Stream: UInt8, Hashable, Sendable {
        case stdout = 0
        case stderr = 1
    }
    package var stream: Stream
    package var offset: UInt64
    package var data: [UInt8]
    package init(stream: Stream, offset: UInt64, data: [UInt8]) {
        self.stream = stream
        self.offset = offset
        self.data = data
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, UInt64(stream.rawValue))
        writer.varint(2, offset)
        writer.bytes(3, data)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(stream: .stdout, offset: 0, data: [])
        while let field = try reader.next() {
            switch field.number {
            case 1:
                guard let raw = UInt8(exactly: try field.uint64()), let stream = Stream(rawValue: raw) else {
                    throw .malformedPayload(type: .output, reason: "unknown stream")
                }
                self.stream = stream
            case 2: offset = try field.int63()
            case 3: data = try field.bytes()
            default: break
            }
        }
        // The receiver adds the two (where the next chunk starts): the sum must be a file offset too.
        guard UInt64(data.count) <= UInt64(Int64.max) - offset else {
            throw .malformedPayload(type: .output, reason: "offset \(offset) plus \(data.count) bytes is past 2^63-1")
        }
    }
}

/// Where a job is in its life: queued → running on a host → finished.
package struct JobState: WireCodable, Hashable {
    package enum Phase: UInt8, Hashable, Sendable, CustomStringConvertible {
        case unknown = 0
        case queued = 1
        case held = 2
        case running = 3
        case finished = 4
        package var description: String {
            switch self {
            case .unknown: "unknown"
            case .queued: "queued"
            case .held: "held"
            case .running: "running"
            case .finished: "finished"
            }
        }
    }
    /// The detail of an unknown job that the agent has no record of (an id nobody submitted through it).
    package static let notAQxubJob = "not a qxub job here"

    package var phase: Phase
    /// The execution host, once running.
    package var host: String
    /// The scheduler's own word for the state (e.g. "PENDING", "R"), for display.
    package var detail: String
    /// The job is interactive: its stdout is a terminal's, and it takes ``TerminalInput`` on its channel.
    package var terminal: Bool
    /// Why the scheduler keeps a queued job waiting, in its words ("Insufficient ncpus", "Priority"), when it
    /// says; empty otherwise.
    package var reason: String
    package init(phase: Phase, host: String = "", detail: String = "", terminal: Bool = false, reason: String = "") {
        self.phase = phase
        self.host = host
        self.detail = detail
        self.terminal = terminal
        self.reason = reason
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, UInt64(phase.rawValue))
        writer.string(2, host)
        writer.string(3, detail)
        if terminal { writer.bool(4, true) }
        writer.string(5, reason)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(phase: .unknown)
        while let field = try reader.next() {
            switch field.number {
            case 1: phase = UInt8(exactly: try field.uint64()).flatMap(Phase.init(rawValue:)) ?? .unknown
            case 2: host = try field.string()
            case 3: detail = try field.string()
            case 4: terminal = try field.bool()
            case 5: reason = try field.string()
            default: break
            }
        }
    }
}

/// The agent's own record of submissions on its cluster (from any machine), newest first.
package struct HistoryQuery: WireCodable, Hashable {
    package var requestID: UInt32
    package var limit: UInt32
    package init(requestID: UInt32, limit: UInt32) {
        self.requestID = requestID
        self.limit = limit
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.varint(2, limit)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, limit: 0)
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: limit = try field.uint32()
            default: break
            }
        }
    }
}

/// One submission in the agent's history.
package struct HistoryEntry: WireCodable, Hashable {
    package var jobID: String
    package var name: String
    package var backend: String
    /// Seconds since the epoch.
    package var submittedAt: UInt64
    package var stateDirectory: String
    package var submitHost: String
    /// The job's exit status from its record, when it has one.
    package var exitStatus: Int32?
    package init(
        jobID: String,
        name: String,
        backend: String,
        submittedAt: UInt64,
        stateDirectory: String,
        submitHost: String,
        exitStatus: Int32? = nil
    ) {
        self.jobID = jobID
        self.name = name
        self.backend = backend
        self.submittedAt = submittedAt
        self.stateDirectory = stateDirectory
        self.submitHost = submitHost
        self.exitStatus = exitStatus
    }
    package func encode(to writer: inout WireWriter) {
        writer.string(1, jobID)
        writer.string(2, name)
        writer.string(3, backend)
        writer.varint(4, submittedAt)
        writer.string(5, stateDirectory)
        writer.string(6, submitHost)
        writer.optionalSigned(7, exitStatus)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(jobID: "", name: "", backend: "", submittedAt: 0, stateDirectory: "", submitHost: "")
        while let field = try reader.next() {
            switch field.number {
            case 1: jobID = try field.string()
            case 2: name = try field.string()
            case 3: backend = try field.string()
            case 4: submittedAt = try field.int63()
            case 5: stateDirectory = try field.string()
            case 6: submitHost = try field.string()
            case 7: exitStatus = try field.int32()
            default: break
            }
        }
    }
}

/// The reply to ``HistoryQuery``; split as ``StatusReport`` is when it is larger than a frame.
package struct HistoryReport: WireCodable, Hashable {
    package var requestID: UInt32
    package var entries: [HistoryEntry]
    /// More reports follow for this request.
    package var more: Bool
    package init(requestID: UInt32, entries: [HistoryEntry], more: Bool = false) {
        self.requestID = requestID
        self.entries = entries
        self.more = more
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.messages(2, entries)
        writer.bool(3, more)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, entries: [])
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: entries.append(try field.message())
            case 3: more = try field.bool()
            default: break
            }
        }
    }

    /// The reply as reports whose payloads each fit `maxPayload` bytes (one report when it all fits).
    package static func split(requestID: UInt32, entries: [HistoryEntry], maxPayload: Int) -> [HistoryReport] {
        let runs = ReplySplitter.runs(of: entries, field: 2, maxPayload: maxPayload)
        return runs.enumerated().map { index, run in
            HistoryReport(requestID: requestID, entries: Array(entries[run]), more: index < runs.count - 1)
        }
    }
}

/// Bytes typed on the client's terminal for an interactive job, sent on the job's watch channel. Never
/// answered: terminal input is a stream, like output the other way.
package struct TerminalInput: WireCodable, Hashable {
    /// Always 0 (field 1 is a request id in every client frame; nothing answers this one).
    package var requestID: UInt32 = 0
    package var data: [UInt8]
    package init(data: [UInt8]) { self.data = data }
    package func encode(to writer: inout WireWriter) {
        writer.bytes(2, data)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(data: [])
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: data = try field.bytes()
            default: break
            }
        }
    }
}

/// The client's terminal has a new size (SIGWINCH): applied to an interactive job's terminal, whose
/// foreground process then gets its own SIGWINCH. Sent on the job's watch channel, never answered.
package struct TerminalResize: WireCodable, Hashable {
    package var requestID: UInt32 = 0
    package var rows: UInt16
    package var columns: UInt16
    package init(rows: UInt16, columns: UInt16) {
        self.rows = rows
        self.columns = columns
    }
    package func encode(to writer: inout WireWriter) {
        writer.varint(2, UInt64(rows))
        writer.varint(3, UInt64(columns))
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(rows: 0, columns: 0)
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: rows = UInt16(clamping: try field.uint64())
            case 3: columns = UInt16(clamping: try field.uint64())
            default: break
            }
        }
        guard rows > 0, columns > 0 else {
            throw .malformedPayload(type: .terminalResize, reason: "a terminal needs at least one row and column")
        }
    }
}
