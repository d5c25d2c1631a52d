import QxubProtocol

/// Failures of scheduler work, with a message and a hint a user can act on.
public struct SchedulerError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var hint: String

    public init(_ code: ErrorCode, _ message: String, hint: String = "") {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.isEmpty ? message : "\(message) (\(hint))" }
}
