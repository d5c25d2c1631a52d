/// The kind of a frame, carried in byte 4 of the header.
///
/// Numbers are stable on the wire: never renumber, only add. A receiver that meets a number it does
/// not know answers with an ``ErrorCode/unknownRequest`` error (for requests) and carries on.
package struct FrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }

    // Session control (channel 0).
    package static let hello = FrameType(rawValue: 0x01)
    package static let goodbye = FrameType(rawValue: 0x02)
    package static let ping = FrameType(rawValue: 0x03)
    package static let pong = FrameType(rawValue: 0x04)
    package static let error = FrameType(rawValue: 0x05)

    // Requests from the client, and their replies.
    package static let submit = FrameType(rawValue: 0x10)
    package static let submitted = FrameType(rawValue: 0x11)
    package static let watch = FrameType(rawValue: 0x12)
    package static let unwatch = FrameType(rawValue: 0x13)
    package static let cancel = FrameType(rawValue: 0x14)
    package static let cancelResult = FrameType(rawValue: 0x15)
    package static let statusQuery = FrameType(rawValue: 0x16)
    package static let statusReport = FrameType(rawValue: 0x17)
    package static let historyQuery = FrameType(rawValue: 0x18)
    package static let historyReport = FrameType(rawValue: 0x19)

    // Job events from the agent, on the job's channel.
    package static let output = FrameType(rawValue: 0x20)
    package static let jobState = FrameType(rawValue: 0x21)
    package static let jobEnd = FrameType(rawValue: 0x22)

    // An interactive job's terminal, from the client, on the job's watch channel (never answered).
    package static let terminalInput = FrameType(rawValue: 0x30)
    package static let terminalResize = FrameType(rawValue: 0x31)

    package var description: String {
        switch self {
        case .hello: "hello"
        case .goodbye: "goodbye"
        case .ping: "ping"
        case .pong: "pong"
        case .error: "error"
        case .submit: "submit"
        case .submitted: "submitted"
        case .watch: "watch"
        case .unwatch: "unwatch"
        case .cancel: "cancel"
        case .cancelResult: "cancel-result"
        case .statusQuery: "status-query"
        case .statusReport: "status-report"
        case .historyQuery: "history-query"
        case .historyReport: "history-report"
        case .output: "output"
        case .jobState: "job-state"
        case .jobEnd: "job-end"
        case .terminalInput: "terminal-input"
        case .terminalResize: "terminal-resize"
        default: "type-0x" + String(rawValue, radix: 16)
        }
    }
}
