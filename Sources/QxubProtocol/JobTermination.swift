/// How a job ended. Outcomes are values: a failed job is data, not a thrown error.
package enum JobTermination: WireCodable, Hashable {
    /// Why a scheduler ended a job.
    package enum SchedulerReason: UInt8, Hashable, Sendable, CustomStringConvertible {
        case walltime = 1
        case memory = 2
        /// Deleted by someone else (or by us from another process) while it ran or waited.
        case deleted = 3
        case nodeFailure = 4
        case other = 5

        package var description: String {
            switch self {
            case .walltime: "walltime exceeded"
            case .memory: "memory limit exceeded"
            case .deleted: "deleted"
            case .nodeFailure: "node failure"
            case .other: "killed by the scheduler"
            }
        }
    }

    /// The command exited with this status.
    case exited(Int32)
    /// The command was killed by this signal.
    case signaled(Int32)
    /// The scheduler ended the job; `ranFirst` is false when it never started.
    case killedByScheduler(SchedulerReason, detail: String, ranFirst: Bool)
    /// Cancelled at the user's request through qxub.
    case cancelled(ranFirst: Bool)
    /// Neither the job's records nor the scheduler can tell.
    case unknown(String)
    /// The command exited with this status, but its exit record could not be written (a full disk or quota):
    /// the job script left a trace that needs no data blocks. `detail` says so. On the wire this is kind 5
    /// (unknown) with the status in field 2, so an older peer reads it as unknown with the same detail.
    case exitUnrecorded(Int32, detail: String)

    package func encode(to writer: inout WireWriter) {
        switch self {
        case .exited(let code):
            writer.varint(1, 1 as UInt64)
            writer.optionalSigned(2, code)
        case .signaled(let signal):
            writer.varint(1, 2 as UInt64)
            writer.optionalSigned(2, signal)
        case .killedByScheduler(let reason, let detail, let ranFirst):
            writer.varint(1, 3 as UInt64)
            writer.varint(3, UInt64(reason.rawValue))
            writer.string(4, detail)
            writer.bool(5, ranFirst)
        case .cancelled(let ranFirst):
            writer.varint(1, 4 as UInt64)
            writer.bool(5, ranFirst)
        case .unknown(let detail):
            writer.varint(1, 5 as UInt64)
            writer.string(4, detail)
        case .exitUnrecorded(let code, let detail):
            writer.varint(1, 5 as UInt64)
            writer.optionalSigned(2, code)
            writer.string(4, detail)
        }
    }

    package init(from reader: inout WireReader) throws(ProtocolError) {
        var kind: UInt64 = 0
        var code: Int32 = 0
        var hasCode = false
        var reason: UInt8 = 0
        var detail = ""
        var ranFirst = false
        while let field = try reader.next() {
            switch field.number {
            case 1: kind = try field.uint64()
            case 2:
                code = try field.int32()
                hasCode = true
            case 3: reason = UInt8(exactly: try field.uint64()) ?? 0
            case 4: detail = try field.string()
            case 5: ranFirst = try field.bool()
            default: break
            }
        }
        switch kind {
        case 1: self = .exited(code)
        case 2: self = .signaled(code)
        case 3:
            self = .killedByScheduler(SchedulerReason(rawValue: reason) ?? .other, detail: detail, ranFirst: ranFirst)
        case 4: self = .cancelled(ranFirst: ranFirst)
        case 5 where hasCode && !detail.isEmpty: self = .exitUnrecorded(code, detail: detail)
        default: self = .unknown(detail.isEmpty ? "unrecognised job end (kind \(kind))" : detail)
        }
    }
}

extension JobTermination {
    /// qxub's own exit statuses for the ways a job can end (docs/exit-codes.md). `ExitCodes` in QxubClient
    /// names them for the client; they live here so that the agent records the same status it would return.
    package enum ExitStatus {
        package static let unavailable: Int32 = 69
        package static let nodeFailure: Int32 = 75
        package static let walltime: Int32 = 124
        package static let interrupted: Int32 = 130
        package static let memory: Int32 = 137
        package static let deleted: Int32 = 143
    }

    /// The status qxub exits with for this end: the command's own status, 128+N for a signal, else the
    /// status qxub chooses for the scheduler's or the user's doing.
    package var exitStatus: Int32 {
        switch self {
        case .exited(let code), .exitUnrecorded(let code, _):
            // A shell exits with its status modulo 256.
            return Int32(UInt8(truncatingIfNeeded: code))
        case .signaled(let signal):
            // A signal number from the wire is data: an impossible one must not overflow (or exit 0).
            return (1...127).contains(signal) ? 128 + signal : ExitStatus.unavailable
        case .killedByScheduler(let reason, _, _):
            switch reason {
            case .walltime: return ExitStatus.walltime
            case .memory: return ExitStatus.memory
            case .deleted, .other: return ExitStatus.deleted
            case .nodeFailure: return ExitStatus.nodeFailure
            }
        case .cancelled: return ExitStatus.interrupted
        case .unknown: return ExitStatus.unavailable
        }
    }
}
