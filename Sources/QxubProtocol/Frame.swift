/// One unit on the wire: a fixed 10-byte header and a payload.
///
/// ```
///  0               1               2               3
///  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
/// +---------------------------------------------------------------+
/// |             payload length on the wire (u32, BE)              |
/// +---------------+---------------+-------------------------------+
/// |  type (u8)    |  flags (u8)   |   channel (u32, BE) ...       |
/// +---------------+---------------+-------------------------------+
/// |   ... channel                 |   payload (length bytes) ...  |
/// +-------------------------------+-------------------------------+
/// ```
///
/// `flags` bit 0 (``Flags/compressed``) means the payload is the output of the sender's deflate stream
/// after a sync flush; all other bits must be zero. Channel 0 is the session; each watched job gets its
/// own channel so many jobs interleave on one session.
package struct Frame: Hashable, Sendable {
    /// Header flag bits.
    package struct Flags: OptionSet, Hashable, Sendable {
        package var rawValue: UInt8
        package init(rawValue: UInt8) { self.rawValue = rawValue }
        package static let compressed = Flags(rawValue: 0x01)
        /// Every bit this build understands.
        package static let known: Flags = [.compressed]
    }

    package var type: FrameType
    package var channel: UInt32
    /// The plain payload (after inflating, on the receiving side).
    package var payload: [UInt8]

    package init(type: FrameType, channel: UInt32 = 0, payload: [UInt8] = []) {
        self.type = type
        self.channel = channel
        self.payload = payload
    }
}
