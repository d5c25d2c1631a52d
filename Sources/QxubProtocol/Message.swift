/// A decoded frame payload: what one side says to the other.
package enum Message: Hashable, Sendable {
    case hello(Hello)
    case goodbye(Goodbye)
    case ping(Ping)
    case pong(Pong)
    case error(ErrorMessage)
    case submit(Submit)
    case submitted(Submitted)
    case watch(Watch)
    case unwatch(JobRequest)
    case cancel(JobRequest)
    case cancelResult(CancelResult)
    case statusQuery(StatusQuery)
    case statusReport(StatusReport)
    case historyQuery(HistoryQuery)
    case historyReport(HistoryReport)
    case output(Output)
    case jobState(JobState)
    case jobEnd(JobTermination)
    case terminalInput(TerminalInput)
    case terminalResize(TerminalResize)
    /// A frame type this build does not know; `requestID` is its field 1 when that is a number, else 0.
    case unknown(FrameType, requestID: UInt32)

    package var frameType: FrameType {
        switch self {
        case .hello: .hello
        case .goodbye: .goodbye
        case .ping: .ping
        case .pong: .pong
        case .error: .error
        case .submit: .submit
        case .submitted: .submitted
        case .watch: .watch
        case .unwatch: .unwatch
        case .cancel: .cancel
        case .cancelResult: .cancelResult
        case .statusQuery: .statusQuery
        case .statusReport: .statusReport
        case .historyQuery: .historyQuery
        case .historyReport: .historyReport
        case .output: .output
        case .jobState: .jobState
        case .jobEnd: .jobEnd
        case .terminalInput: .terminalInput
        case .terminalResize: .terminalResize
        case .unknown(let type, _): type
        }
    }

    /// The frame that carries this message on `channel`.
    package func frame(channel: UInt32 = 0) -> Frame {
        let payload: [UInt8]
        switch self {
        case .hello(let value): payload = value.wireBytes()
        case .goodbye(let value): payload = value.wireBytes()
        case .ping(let value): payload = value.wireBytes()
        case .pong(let value): payload = value.wireBytes()
        case .error(let value): payload = value.wireBytes()
        case .submit(let value): payload = value.wireBytes()
        case .submitted(let value): payload = value.wireBytes()
        case .watch(let value): payload = value.wireBytes()
        case .unwatch(let value): payload = value.wireBytes()
        case .cancel(let value): payload = value.wireBytes()
        case .cancelResult(let value): payload = value.wireBytes()
        case .statusQuery(let value): payload = value.wireBytes()
        case .statusReport(let value): payload = value.wireBytes()
        case .historyQuery(let value): payload = value.wireBytes()
        case .historyReport(let value): payload = value.wireBytes()
        case .output(let value): payload = value.wireBytes()
        case .jobState(let value): payload = value.wireBytes()
        case .jobEnd(let value): payload = value.wireBytes()
        case .terminalInput(let value): payload = value.wireBytes()
        case .terminalResize(let value): payload = value.wireBytes()
        case .unknown(_, let requestID):
            var writer = WireWriter()
            writer.varint(1, requestID)
            payload = writer.bytes
        }
        return Frame(type: frameType, channel: channel, payload: payload)
    }

    /// Decodes a frame's payload according to its type.
    package init(frame: Frame) throws(ProtocolError) {
        let bytes = frame.payload[...]
        let type = frame.type
        switch type {
        case .hello: self = .hello(try Hello(wireBytes: bytes, type: type))
        case .goodbye: self = .goodbye(try Goodbye(wireBytes: bytes, type: type))
        case .ping: self = .ping(try Ping(wireBytes: bytes, type: type))
        case .pong: self = .pong(try Pong(wireBytes: bytes, type: type))
        case .error: self = .error(try ErrorMessage(wireBytes: bytes, type: type))
        case .submit: self = .submit(try Submit(wireBytes: bytes, type: type))
        case .submitted: self = .submitted(try Submitted(wireBytes: bytes, type: type))
        case .watch: self = .watch(try Watch(wireBytes: bytes, type: type))
        case .unwatch: self = .unwatch(try JobRequest(wireBytes: bytes, type: type))
        case .cancel: self = .cancel(try JobRequest(wireBytes: bytes, type: type))
        case .cancelResult: self = .cancelResult(try CancelResult(wireBytes: bytes, type: type))
        case .statusQuery: self = .statusQuery(try StatusQuery(wireBytes: bytes, type: type))
        case .statusReport: self = .statusReport(try StatusReport(wireBytes: bytes, type: type))
        case .historyQuery: self = .historyQuery(try HistoryQuery(wireBytes: bytes, type: type))
        case .historyReport: self = .historyReport(try HistoryReport(wireBytes: bytes, type: type))
        case .output: self = .output(try Output(wireBytes: bytes, type: type))
        case .jobState: self = .jobState(try JobState(wireBytes: bytes, type: type))
        case .jobEnd: self = .jobEnd(try JobTermination(wireBytes: bytes, type: type))
        case .terminalInput: self = .terminalInput(try TerminalInput(wireBytes: bytes, type: type))
        case .terminalResize: self = .terminalResize(try TerminalResize(wireBytes: bytes, type: type))
        default:
            self = .unknown(type, requestID: Message.requestID(inPayload: frame.payload))
        }
    }

    /// Field 1 as a request id, wherever it stands in the payload; 0 when absent or unreadable.
    package static func requestID(inPayload payload: [UInt8]) -> UInt32 {
        var reader = WireReader(payload[...], type: .error)
        while let field = try? reader.next() {
            if field.number == 1, let id = try? field.uint32() { return id }
        }
        return 0
    }

    /// Whether this type is a request the receiver must answer (replies and events are never answered,
    /// so two peers can never bounce errors at each other).
    package static func isRequest(_ type: FrameType) -> Bool {
        switch type {
        case .submit, .watch, .unwatch, .cancel, .statusQuery, .historyQuery, .ping: true
        case .hello, .goodbye, .pong, .error, .submitted, .cancelResult, .statusReport, .historyReport, .output,
            .jobState, .jobEnd, .terminalInput, .terminalResize:
            false
        default: true  // an unknown type: assume a newer peer's request, and answer it
        }
    }
}
