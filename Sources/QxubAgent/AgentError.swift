import QxubProtocol
import QxubScheduler

/// A request the agent could not carry out: a stable code, a message a user can act on, and a hint.
///
/// The job service throws it (or hands it to a reply); only ``JobHarness`` turns it into an `error` frame,
/// with the request's id.
package struct AgentError: Error, Hashable, Sendable, CustomStringConvertible {
    package var code: ErrorCode
    package var message: String
    package var hint: String

    package init(_ code: ErrorCode, _ message: String, hint: String = "") {
        self.code = code
        self.message = message
        self.hint = hint
    }

    package init(_ error: SchedulerError) {
        self.init(error.code, error.message, hint: error.hint)
    }

    package var description: String { hint.isEmpty ? message : "\(message) (\(hint))" }
}
