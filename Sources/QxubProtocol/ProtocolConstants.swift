/// Fixed numbers of the qxub wire protocol. See docs/protocol.md.
package enum ProtocolConstants {
    /// Written first by each side, before its hello frame.
    ///
    /// `0x89` catches 7-bit stripping, `\r\n` catches line-ending translation (a pty in the way),
    /// `0x1A` stops `type` on DOS; the same trick as PNG's signature.
    package static let magic: [UInt8] = [0x89, 0x51, 0x58, 0x55, 0x42, 0x0D, 0x0A, 0x1A]  // "\x89QXUB\r\n\x1A"

    /// The protocol versions this build speaks.
    package static let versions: ClosedRange<UInt32> = 1...1

    /// Bytes of the fixed frame header.
    package static let headerSize = 10

    /// The largest payload a receiver accepts before it has seen the peer's hello.
    package static let preHelloMaxPayload = 64 * 1024

    /// The largest payload this build announces that it accepts (plain or compressed, before and after inflating).
    package static let defaultMaxPayload = 1024 * 1024

    /// A peer must accept at least this much, or it could not carry one output chunk.
    package static let minimumMaxPayload = 64 * 1024 + 1024

    /// Output read from a job file is sent in chunks of at most this size.
    package static let outputChunkSize = 64 * 1024

    /// How far the client scans for the agent's magic before it gives up (login-shell banners land here).
    package static let preambleScanLimit = 64 * 1024

    /// Payloads smaller than this are sent uncompressed: a sync flush alone costs about 5 bytes.
    package static let compressionThreshold = 64

    /// Capability name: this side compresses frames with one deflate stream per direction.
    package static let capabilityDeflate = "deflate"

    /// Capability name (client): this side pings at least every ``heartbeatInterval`` seconds, so the
    /// agent may end a session that falls silent (the client's machine died or lost its network).
    package static let capabilityHeartbeat = "heartbeat"

    /// Capability name (client): the user asked for `-v`; the agent mirrors its log lines on its stderr.
    package static let capabilityVerbose = "verbose"
    /// An agent that lists it honours `Submit.token`: a retried submission gets the first attempt's job.
    /// Clients retry a submission whose answer was lost only with such an agent.
    package static let capabilitySubmitToken = "submit-token"

    /// Capability name (client): this side collects a status or history reply sent as several reports
    /// (each with `more` but the last), so the agent may split replies larger than one frame.
    package static let capabilitySplitReplies = "split-replies"

    /// Capability name (agent): this side runs interactive jobs (``JobSpec/terminal``) and takes
    /// ``TerminalInput`` and ``TerminalResize`` on a watched interactive job's channel.
    package static let capabilityInteractive = "interactive"

    /// Capability name (agent): this side answers ``StatusQuery/usage`` with each finished scheduler job's
    /// ``SchedulerUsage`` (the scheduler's own records: `qstat -xf` resources_used, `sacct`).
    package static let capabilityUsage = "usage"

    /// Seconds between a client's pings.
    package static let heartbeatInterval = 10.0
}
