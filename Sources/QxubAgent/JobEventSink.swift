import QxubProtocol

/// Where a watched job's frames go (its channel of the session), and how much is still queued for the
/// client: the follow loop holds output back above a bound, the files being the buffer.
package protocol JobEventSink: AnyObject {
    func send(_ message: Message, channel: UInt32)
    var pendingOutputBytes: Int { get }
}

extension AgentSession: JobEventSink {}
