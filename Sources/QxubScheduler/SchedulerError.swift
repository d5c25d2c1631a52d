import QxubProtocol

/// Failures of scheduler work, with a message and a hint a user can act on.
package struct SchedulerError: Error, Hashable, Sendable, CustomStringConvertible {
    package var code: ErrorCode
    package var message: String
    package var hint: String

    package init(_ code: ErrorCode, _ message: String, hint: String = "") {
        self.code = code
        self.message = message
        self.hint = hint
    }

    package var description: String { hint.isEmpty ? message : "\(message) (\(hint))" }
}
