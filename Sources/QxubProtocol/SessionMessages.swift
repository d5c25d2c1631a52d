// Session-level messages (channel 0): hello, goodbye, ping/pong, error.

/// The first frame from each side: versions, software, capabilities and limits.
package struct Hello: WireCodable, Hashable {
    /// Lowest and highest protocol versions this side speaks.
    package var versions: ClosedRange<UInt32>
    /// For example "qxub 0.1.0" or "qxub-agent 0.1.0".
    package var software: String
    package var capabilities: [String]
    /// The largest frame payload this side accepts.
    package var maxPayload: UInt32
    /// "linux-x86_64" and the like: lets the client refuse a mismatched agent.
    package var platform: String
    package var hostname: String
    /// The scheduler the agent found ("pbspro", "slurm", "local"); empty from the client.
    package var scheduler: String
    /// From the client: where the agent keeps job state and output for this session (the platform's
    /// `state_root`, `{user}`, `{project}` and a leading `~/` expanded by the agent); empty: the agent's default.
    package var stateRoot: String = ""

    package init(
        versions: ClosedRange<UInt32> = ProtocolConstants.versions,
        software: String,
        capabilities: [String] = [ProtocolConstants.capabilityDeflate],
        maxPayload: UInt32 = UInt32(ProtocolConstants.defaultMaxPayload),
        platform: String = "",
        hostname: String = "",
        scheduler: String = ""
    ) {
        self.versions = versions
        self.software = software
        self.capabilities = capabilities
        self.maxPayload = maxPayload
        self.platform = platform
        self.hostname = hostname
        self.scheduler = scheduler
    }

    package func encode(to writer: inout WireWriter) {
        writer.varint(1, versions.lowerBound)
        writer.varint(2, versions.upperBound)
        writer.string(3, software)
        writer.strings(4, capabilities)
        writer.varint(5, maxPayload)
        writer.string(6, platform)
        writer.string(7, hostname)
        writer.string(8, scheduler)
        if !stateRoot.isEmpty { writer.string(9, stateRoot) }
    }

    package init(from reader: inout WireReader) throws(ProtocolError) {
        var low: UInt32 = 0
        var high: UInt32 = 0
        self.init(versions: 0...0, software: "", capabilities: [], maxPayload: 0)
        while let field = try reader.next() {
            switch field.number {
            case 1: low = try field.uint32()
            case 2: high = try field.uint32()
            case 3: software = try field.string()
            case 4: capabilities.append(try field.string())
            case 5: maxPayload = try field.uint32()
            case 6: platform = try field.string()
            case 7: hostname = try field.string()
            case 8: scheduler = try field.string()
            case 9: stateRoot = try field.string()
            default: break
            }
        }
        guard low <= high else {
            throw .malformedPayload(type: .hello, reason: "lowest version \(low) is above highest \(high)")
        }
        versions = low...high
    }
}

/// Says the sender is closing the session on purpose.
package struct Goodbye: WireCodable, Hashable {
    package var reason: String
    package init(reason: String = "") { self.reason = reason }
    package func encode(to writer: inout WireWriter) { writer.string(1, reason) }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { reason = try field.string() }
        }
    }
}

/// A heartbeat or a round-trip probe; answered by a ``Pong`` with the same nonce.
package struct Ping: WireCodable, Hashable {
    package var nonce: UInt64
    package init(nonce: UInt64) { self.nonce = nonce }
    package func encode(to writer: inout WireWriter) { writer.varint(1, nonce) }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(nonce: 0)
        while let field = try reader.next() {
            if field.number == 1 { nonce = try field.uint64() }
        }
    }
}

/// The answer to a ``Ping``.
package typealias Pong = Ping

/// Stable error codes that cross the wire. An unknown number decodes to ``unknown(_:)``.
package enum ErrorCode: Hashable, Sendable, CustomStringConvertible {
    case unknownRequest
    case malformedRequest
    case unknownJob
    case submitFailed
    case schedulerUnavailable
    case cancelFailed
    case internalError
    case unknown(UInt32)

    package init(rawValue: UInt32) {
        switch rawValue {
        case 1: self = .unknownRequest
        case 2: self = .malformedRequest
        case 3: self = .unknownJob
        case 4: self = .submitFailed
        case 5: self = .schedulerUnavailable
        case 6: self = .cancelFailed
        case 7: self = .internalError
        default: self = .unknown(rawValue)
        }
    }

    package var rawValue: UInt32 {
        switch self {
        case .unknownRequest: 1
        case .malformedRequest: 2
        case .unknownJob: 3
        case .submitFailed: 4
        case .schedulerUnavailable: 5
        case .cancelFailed: 6
        case .internalError: 7
        case .unknown(let value): value
        }
    }

    package var description: String {
        switch self {
        case .unknownRequest: "unknown-request"
        case .malformedRequest: "malformed-request"
        case .unknownJob: "unknown-job"
        case .submitFailed: "submit-failed"
        case .schedulerUnavailable: "scheduler-unavailable"
        case .cancelFailed: "cancel-failed"
        case .internalError: "internal-error"
        case .unknown(let value): "error-\(value)"
        }
    }
}

/// A failed request (or a session-level problem when `requestID` is 0).
package struct ErrorMessage: WireCodable, Hashable, Error {
    package var requestID: UInt32
    package var code: ErrorCode
    package var message: String
    /// What the user can do about it, e.g. "run `qxub agent install --platform gadi`".
    package var hint: String

    package init(requestID: UInt32, code: ErrorCode, message: String, hint: String = "") {
        self.requestID = requestID
        self.code = code
        self.message = message
        self.hint = hint
    }

    package func encode(to writer: inout WireWriter) {
        writer.varint(1, requestID)
        writer.varint(2, code.rawValue)
        writer.string(3, message)
        writer.string(4, hint)
    }

    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(requestID: 0, code: .unknown(0), message: "")
        while let field = try reader.next() {
            switch field.number {
            case 1: requestID = try field.uint32()
            case 2: code = ErrorCode(rawValue: try field.uint32())
            case 3: message = try field.string()
            case 4: hint = try field.string()
            default: break
            }
        }
    }
}
