import QxubSystem

/// One frame between an agent and a terminal keeper: `[type: UInt8][length: UInt32 big-endian][payload]`.
///
/// Agent to keeper: `I` (terminal input) and `W` (window size); keeper to agent: `N` (new output was appended
/// to the job's `out` file). The output itself never travels here: the agent tails the file as for a batch job.
package enum KeeperFrame: Hashable, Sendable {
    /// `I`: bytes typed on the user's terminal, for the pseudo-terminal's master.
    case input([UInt8])
    /// `W`: rows and columns, UInt16 big-endian each.
    case resize(WindowSize)
    /// `N`: new output is in the file (empty payload).
    case output

    package static let inputType = UInt8(ascii: "I")
    package static let resizeType = UInt8(ascii: "W")
    package static let outputType = UInt8(ascii: "N")
    /// The largest payload a frame may carry; a longer one is a bad frame (input is sent in such chunks).
    package static let maxPayload = 1 << 16
    static let headerSize = 5

    /// The frame's bytes on the wire.
    package var encoded: [UInt8] {
        let (type, payload): (UInt8, [UInt8])
        switch self {
        case .input(let bytes): (type, payload) = (Self.inputType, bytes)
        case .resize(let size):
            (type, payload) = (
                Self.resizeType,
                [UInt8(size.rows >> 8), UInt8(size.rows & 0xFF), UInt8(size.columns >> 8), UInt8(size.columns & 0xFF)]
            )
        case .output: (type, payload) = (Self.outputType, [])
        }
        let length = UInt32(payload.count)
        return [
            type, UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF),
        ]
            + payload
    }

    /// Terminal input as frames of at most ``maxPayload`` bytes each.
    package static func inputFrames(_ bytes: [UInt8]) -> [UInt8] {
        var frames: [UInt8] = []
        var start = 0
        while start < bytes.count {
            let end = min(start + maxPayload, bytes.count)
            frames += KeeperFrame.input(Array(bytes[start..<end])).encoded
            start = end
        }
        return frames
    }
}

/// Splits a byte stream into ``KeeperFrame``s; a frame it cannot read is an error, after which the stream
/// is useless (the connection is closed).
package struct KeeperFrameDecoder {
    /// Why a frame could not be read.
    package enum Failure: Error, Hashable, Sendable {
        case unknownType(UInt8)
        /// A length the type does not allow (`W` is 4 bytes, `N` empty, `I` at most ``KeeperFrame/maxPayload``).
        case badLength(type: UInt8, length: UInt32)
    }

    private var buffer: [UInt8] = []
    private var start = 0

    package init() {}

    /// Bytes received and not yet part of a whole frame.
    package var pendingBytes: Int { buffer.count - start }

    package mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, nil until one has arrived.
    package mutating func next() throws(Failure) -> KeeperFrame? {
        guard pendingBytes >= KeeperFrame.headerSize else { return nil }
        let type = buffer[start]
        let length =
            UInt32(buffer[start + 1]) << 24 | UInt32(buffer[start + 2]) << 16 | UInt32(buffer[start + 3]) << 8
            | UInt32(buffer[start + 4])
        switch type {
        case KeeperFrame.inputType:
            guard length <= KeeperFrame.maxPayload else { throw .badLength(type: type, length: length) }
        case KeeperFrame.resizeType:
            guard length == 4 else { throw .badLength(type: type, length: length) }
        case KeeperFrame.outputType:
            guard length == 0 else { throw .badLength(type: type, length: length) }
        default:
            throw .unknownType(type)
        }
        guard pendingBytes >= KeeperFrame.headerSize + Int(length) else { return nil }
        let payloadStart = start + KeeperFrame.headerSize
        let payload = Array(buffer[payloadStart..<(payloadStart + Int(length))])
        start = payloadStart + Int(length)
        if start > 1 << 16 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        switch type {
        case KeeperFrame.inputType:
            return .input(payload)
        case KeeperFrame.resizeType:
            let rows = UInt16(payload[0]) << 8 | UInt16(payload[1])
            let columns = UInt16(payload[2]) << 8 | UInt16(payload[3])
            return .resize(WindowSize(rows: rows, columns: columns))
        default:
            return .output
        }
    }
}
