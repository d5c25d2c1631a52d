/// Turns frames into bytes for one direction of a session.
///
/// Compression is off until both hellos say ``ProtocolConstants/capabilityDeflate``; then payloads of at
/// least ``ProtocolConstants/compressionThreshold`` bytes go through one shared deflate stream, except after
/// one of at least ``judgedSize`` bytes that deflate did not shrink (compressed or random output): the next
/// ``storedRun`` bytes of such payloads go stored, twice as many after each further failed try, up to
/// ``maximumStoredRun``; a payload deflate shrinks starts over at ``storedRun``.
package struct FrameEncoder {
    private var deflater: Deflater?
    /// Payload bytes still to send stored (flag clear, outside the stream, which stays in step with the
    /// receiver's) before deflate is tried again. Deflate at about 30 MB/s would cap incompressible output.
    private var storedLeft = 0
    /// Bytes sent stored after a payload that deflate did not shrink by a tenth.
    package static let storedRun = 1 << 20
    /// The longest run: a long random stream pays for deflate on 1 byte in 128 of it, while output that turns
    /// compressible is compressed again within 8 MiB.
    package static let maximumStoredRun = 8 << 20
    /// The run after the next failed try.
    private var nextStoredRun = FrameEncoder.storedRun
    /// Payloads smaller than this always go through deflate: one line alone may not shrink while the stream
    /// as a whole does (it learns from the lines before), and small frames do not limit throughput.
    package static let judgedSize = 8 * 1024
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
        let judged = payload.count >= Self.judgedSize
        if storedLeft > 0 && judged {
            storedLeft -= payload.count
        } else if let deflater, payload.count >= ProtocolConstants.compressionThreshold {
            let original = payload.count
            payload = try deflater.compress(payload)
            if judged && payload.count * 10 > original * 9 {
                storedLeft = nextStoredRun
                nextStoredRun = min(nextStoredRun * 2, Self.maximumStoredRun)
            } else if judged {
                nextStoredRun = Self.storedRun
            }
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
