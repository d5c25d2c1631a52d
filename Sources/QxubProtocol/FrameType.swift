/// The kind of a frame, carried in byte 4 of the header.
///
/// Numbers are stable on the wire: never renumber, only add. A receiver that meets a number it does
/// not know answers with an ``ErrorCode/unknownRequest`` error (for requests) and carries on.
public struct FrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    // Session control (channel 0).
    public static let hello = FrameType(rawValue: 0x01)
    public static let goodbye = FrameType(rawValue: 0x02)
    public static let ping = FrameType(rawValue: 0x03)
    public static let pong = FrameType(rawValue: 0x04)
    public static let error = FrameType(rawValue: 0x05)

    // Requests from the client, and their replies.
    public static let submit = FrameType(rawValue: 0x10)
    public static let submitted = FrameType(rawValue: 0x11)
    public static let watch = FrameType(rawValue: 0x12)
    public static let unwatch = FrameType(rawValue: 0x13)
    public static let cancel = FrameType(rawValue: 0x14)
    public static let cancelResult = FrameType(rawValue: 0x15)
    public static let statusQuery = FrameType(rawValue: 0x16)
    public static let statusReport = FrameType(rawValue: 0x17)
    public static let historyQuery = FrameType(rawValue: 0x18)
    public static let historyReport = FrameType(rawValue: 0x19)

    // Job events from the agent, on the job's channel.
    public static let output = FrameType(rawValue: 0x20)
    public static let jobState = FrameType(rawValue: 0x21)
    public static let jobEnd = FrameType(rawValue: 0x22)

    public var description: String {
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
        default: "type-0x" + String(rawValue, radix: 16)
        }
    }
}
