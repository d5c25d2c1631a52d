/// Turns frames into bytes for one direction of a session.
///
/// Compression is off until both hellos say ``ProtocolConstants/capabilityDeflate``; then payloads of at
/// least ``ProtocolConstants/compressionThreshold`` bytes go through one shared deflate stream.
package struct FrameEncoder {
    private var deflater: Deflater?
    /// The largest payload the peer accepts (from its hello).
    package var peerMaxPayload: Int

    package init(peerMaxPayload: Int = ProtocolConstants.preHelloMaxPayload) {
        self.peerMaxPayload = peerMaxPayload
    }

    /// Starts compressing payloads from the next frame on.
    package mutating func enableCompression() throws(ProtocolError) {
        if deflater == nil { deflater = try Deflater() }
    }

    package var isCompressing: Bool { deflater != nil }

    /// Appends the encoded `frame` to `buffer`.
    package mutating func encode(_ frame: Frame, into buffer: inout [UInt8]) throws(ProtocolError) {
        var flags: Frame.Flags = []
        var payload = frame.payload
        if payload.count > peerMaxPayload {
            throw .outgoingTooLarge(size: payload.count, maximum: peerMaxPayload)
        }
        if let deflater, payload.count >= ProtocolConstants.compressionThreshold {
            payload = try deflater.compress(payload)
            flags.insert(.compressed)
            // Deflate can grow incompressible data by a few bytes; the stream has consumed it, so it must be sent.
            if payload.count > peerMaxPayload {
                throw .outgoingTooLarge(size: payload.count, maximum: peerMaxPayload)
            }
        }
        FrameHeader(length: UInt32(payload.count), type: frame.type, flags: flags, channel: frame.channel)
            .write(into: &buffer)
        buffer.append(contentsOf: payload)
    }

    /// Encodes one frame into a fresh buffer.
    package mutating func encode(_ frame: Frame) throws(ProtocolError) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(ProtocolConstants.headerSize + frame.payload.count)
        try encode(frame, into: &buffer)
        return buffer
    }
}

/// The fixed 10-byte header (see ``Frame``).
package struct FrameHeader: Hashable, Sendable {
    package var length: UInt32
    package var type: FrameType
    package var flags: Frame.Flags
    package var channel: UInt32

    package init(length: UInt32, type: FrameType, flags: Frame.Flags, channel: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.channel = channel
    }

    package func write(into buffer: inout [UInt8]) {
        buffer.append(UInt8(truncatingIfNeeded: length >> 24))
        buffer.append(UInt8(truncatingIfNeeded: length >> 16))
        buffer.append(UInt8(truncatingIfNeeded: length >> 8))
        buffer.append(UInt8(truncatingIfNeeded: length))
        buffer.append(type.rawValue)
        buffer.append(flags.rawValue)
        buffer.append(UInt8(truncatingIfNeeded: channel >> 24))
        buffer.append(UInt8(truncatingIfNeeded: channel >> 16))
        buffer.append(UInt8(truncatingIfNeeded: channel >> 8))
        buffer.append(UInt8(truncatingIfNeeded: channel))
    }

    /// Reads a header from exactly ``ProtocolConstants/headerSize`` bytes.
    package init(bytes: ArraySlice<UInt8>) {
        let start = bytes.startIndex
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[start + at]) << 24 | UInt32(bytes[start + at + 1]) << 16
                | UInt32(bytes[start + at + 2]) << 8 | UInt32(bytes[start + at + 3])
        }
        self.length = u32(0)
        self.type = FrameType(rawValue: bytes[start + 4])
        self.flags = Frame.Flags(rawValue: bytes[start + 5])
        self.channel = u32(6)
    }
}
